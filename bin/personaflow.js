#!/usr/bin/env node
// Thin entry point: everything lives in src/cli.ts (built to dist/cli.js).
import module from 'node:module';

// Node 22.1+ can keep compiled code on disk between runs (a shorter start); Node 20 has no such cache.
module.enableCompileCache?.();

const { main } = await import('../dist/cli.js');
await main(process.argv);
