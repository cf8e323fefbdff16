#!/usr/bin/env node
// Thin entry point: everything lives in src/cli.ts (built to dist/cli.js).
import { main } from '../dist/cli.js';

await main(process.argv);
