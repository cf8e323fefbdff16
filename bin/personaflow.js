#!/usr/bin/env node
// Thin entry point: everything lives in src/cli.ts (built to dist/cli.js, bundled into dist/bundle/ by
// scripts/bundle.js so that the CLI starts in one module load instead of ~450).
import module from 'node:module';

// Node 22.1+ can keep compiled code on disk between runs (a shorter start); Node 20 has no such cache.
module.enableCompileCache?.();

const { main } = await import('../dist/bundle/cli.js');
await main(process.argv);
