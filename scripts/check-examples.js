#!/usr/bin/env node
// Type-checks TypeScript examples (and the ```ts blocks of Markdown files) the way a user's project sees
// personaflow, and runs one: the honest check that the library's documented code compiles for its users.
//
//   node scripts/check-examples.js [--built|--fresh] [--run FILE.ts] FILE.ts|FILE.md ...
//
// The files go into a temporary project outside this repository, whose node_modules holds personaflow
// (its package.json, so `import ... from 'personaflow'` resolves through its `exports` to dist/*.d.ts) and
// @types (a Node project installs @types/node), and nothing else: rxjs and personaflow's other dependencies
// sit under the package itself, where npm nests them (and pnpm links them) for a project that does not
// depend on them. So an example that imports rxjs fails here as it fails for such a user.
//
// The package's declarations are dist/'s when `npm run build` wrote them after the last change to src/ (as in
// CI, where npm ci builds), else emitted fresh from src/ into the project (never stale, ~1 tsc run more);
// --built takes dist/ as it is, --fresh always emits. --run (after a build) also compiles FILE.ts and runs
// it with node in the project, exiting with its code. Errors name the original file and line
// (README.md:1157:10 for a block). Exit codes: 0 all type-check, 1 they do not, 2 no check was possible.
import { spawnSync } from 'node:child_process';
import { copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** The ```ts (or ```typescript) blocks of a Markdown text, each with the line its code starts on. */
function tsBlocks(markdown) {
  const blocks = [];
  let open;
  markdown.split('\n').forEach((line, index) => {
    if (open === undefined && /^```(?:ts|typescript)\s*$/.test(line)) open = { start: index + 2, lines: [] };
    else if (open !== undefined && /^```\s*$/.test(line)) {
      blocks.push({ start: open.start, code: open.lines.join('\n') });
      open = undefined;
    } else open?.lines.push(line);
  });
  return blocks;
}

function parseArgs(argv) {
  const options = { built: undefined, run: undefined, files: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--built') options.built = true;
    else if (arg === '--fresh') options.built = false;
    else if (arg === '--run') {
      options.run = argv[i + 1];
      i += 1;
    } else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else options.files.push(arg);
  }
  // Running needs the package's JavaScript, which only a build makes.
  if (options.run !== undefined) options.built = true;
  if (options.run !== undefined && !options.files.includes(options.run)) options.files.push(options.run);
  if (options.files.length === 0) throw new Error('usage: node scripts/check-examples.js [--built|--fresh] [--run FILE.ts] FILE.ts|FILE.md ...');
  return options;
}

/** The newest modification time of the files under `dir`. */
function newest(dir) {
  return readdirSync(dir, { withFileTypes: true }).reduce((latest, entry) => {
    const path = join(dir, entry.name);
    return Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }, 0);
}

/** Whether dist/ holds declarations written after the last change to src/. */
function builtIsCurrent() {
  try {
    return statSync(join(ROOT, 'dist', 'index.d.ts')).mtimeMs >= newest(join(ROOT, 'src'));
  } catch {
    return false;
  }
}

/** Runs tsc in `cwd`; its output as one text. */
function tsc(args, cwd) {
  const result = spawnSync(process.execPath, [TSC, ...args], { cwd, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** The user's project: src/ with the sources, node_modules/ with personaflow and @types only. */
function makeProject(dir, options) {
  const pkg = join(dir, 'node_modules', 'personaflow');
  mkdirSync(join(dir, 'src'), { recursive: true });
  mkdirSync(pkg, { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  // personaflow's own dependencies, reachable from its files only.
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
  symlinkSync(join(ROOT, 'config'), join(pkg, 'config'), 'dir');
  symlinkSync(join(ROOT, 'node_modules', '@types'), join(dir, 'node_modules', '@types'), 'dir');
  if (options.built) {
    try {
      lstatSync(join(ROOT, 'dist', 'index.d.ts'));
    } catch {
      throw new Error('dist/index.d.ts is missing: run `npm run build` first (or leave out --built and --run)');
    }
    symlinkSync(join(ROOT, 'dist'), join(pkg, 'dist'), 'dir');
    if (!builtIsCurrent()) process.stderr.write('check-examples: dist/ is older than src/: checking against the last build\n');
  } else {
    const emitted = tsc(['-p', join(ROOT, 'tsconfig.build.json'), '--emitDeclarationOnly', '--declaration', '--declarationMap', 'false', '--sourceMap', 'false', '--outDir', join(pkg, 'dist'), '--pretty', 'false'], ROOT);
    if (emitted.status !== 0) throw new Error(`emitting personaflow's declarations failed:\n${emitted.output}`);
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'user-project', private: true, type: 'module' }, null, 2)}\n`);
  // What a Node user's tsconfig says; skipLibCheck as most have it (see the rxjs check in main).
  const compilerOptions = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, types: ['node'], rootDir: 'src', outDir: 'out', noEmit: options.run === undefined, noEmitOnError: true };
  writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions, include: ['src'] }, null, 2)}\n`);
}

/** Writes each file (each ts block of a Markdown file) into src/; returns where each came from. */
function addSources(dir, files) {
  const origins = new Map();
  const add = (name, code, origin, offset) => {
    let unique = name;
    for (let n = 2; origins.has(`src/${unique}`); n += 1) unique = name.replace(/\.ts$/, `-${n}.ts`);
    writeFileSync(join(dir, 'src', unique), code);
    origins.set(`src/${unique}`, { origin, offset });
    return unique;
  };
  const compiled = new Map();
  for (const file of files) {
    const shown = relative(process.cwd(), resolve(file)) || file;
    const text = readFileSync(file, 'utf8');
    if (extname(file) === '.md') {
      const blocks = tsBlocks(text);
      if (blocks.length === 0) throw new Error(`${shown}: no \`\`\`ts block`);
      // Each block a module of its own (a block without import or export would otherwise be a script).
      for (const block of blocks) add(`${basename(file, '.md')}-${block.start}.ts`, `${block.code}\nexport {};\n`, shown, block.start - 1);
    } else compiled.set(file, add(basename(file), text, shown, 0));
  }
  return { origins, compiled };
}

/** tsc's `src/x.ts(3,10): error ...` as `ORIGINAL:LINE:COL: error ...`. */
function mapErrors(output, origins) {
  return output.replace(/^(src\/[^(\s]+)\((\d+),(\d+)\)/gm, (match, file, line, column) => {
    const at = origins.get(file);
    return at === undefined ? match : `${at.origin}:${Number(line) + at.offset}:${column}`;
  });
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  options.built ??= builtIsCurrent();
  const dir = mkdtempSync(join(tmpdir(), 'personaflow-user-'));
  try {
    makeProject(dir, options);
    // The honest part: rxjs (a dependency of personaflow) is not resolvable from the user's sources.
    const fromSources = createRequire(join(dir, 'src', 'index.js'));
    let leaked;
    try {
      leaked = fromSources.resolve('rxjs');
    } catch {
      leaked = undefined;
    }
    if (leaked !== undefined) throw new Error(`rxjs resolves from the example project (${leaked}): the check would not show what a user without rxjs sees`);
    const { origins, compiled } = addSources(dir, options.files);
    const checked = tsc(['-p', dir, '--pretty', 'false', '--listFiles'], dir);
    const listed = checked.output.split('\n').filter((line) => line.startsWith('/'));
    const errors = checked.output.split('\n').filter((line) => !line.startsWith('/') && line.trim() !== '').join('\n');
    if (checked.status !== 0) {
      process.stderr.write(`${mapErrors(errors, origins)}\n`);
      process.stderr.write(`check-examples: ${[...new Set([...origins.values()].map((at) => at.origin))].join(', ')} do not type-check in a project that has only personaflow installed\n`);
      return 1;
    }
    // With skipLibCheck a declaration whose import does not resolve turns into `any` without a word: make
    // sure personaflow's declarations did find rxjs, so its Observable types were really checked.
    const entry = realpathSync(join(dir, 'node_modules', 'personaflow', 'dist', 'index.d.ts'));
    if (listed.includes(entry) && !listed.some((file) => file.includes('/node_modules/rxjs/'))) {
      process.stderr.write("check-examples: personaflow's declarations did not resolve rxjs: its types were not checked\n");
      return 1;
    }
    process.stderr.write(`check-examples: ${origins.size} file(s) type-check as a user's project (personaflow only, no rxjs; its declarations ${options.built ? 'from dist/' : 'emitted from src/'})\n`);
    if (options.run === undefined) return 0;
    const out = join(dir, 'out', compiled.get(options.run).replace(/\.ts$/, '.js'));
    const ran = spawnSync(process.execPath, [out], { cwd: dir, stdio: 'inherit' });
    return ran.status ?? 1;
  } finally {
    // The links first, so nothing is removed through them.
    for (const link of [join(dir, 'node_modules', 'personaflow', 'node_modules'), join(dir, 'node_modules', 'personaflow', 'config'), join(dir, 'node_modules', 'personaflow', 'dist'), join(dir, 'node_modules', '@types')]) {
      try {
        if (lstatSync(link).isSymbolicLink()) unlinkSync(link);
      } catch {
        // not made
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  process.exitCode = main();
} catch (error) {
  process.stderr.write(`check-examples: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
