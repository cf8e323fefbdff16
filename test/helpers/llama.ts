// What the llama tests need: node-llama-cpp (an optional peer dependency, installed on demand) and the tiny model.
// Locally they skip, saying why, where either is absent; CI installs node-llama-cpp (.ci/run), and there its absence fails them.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { installCommand } from '../../src/models/llama.js';
import { ROOT } from './cli.js';

/** The tiny test model (260K parameters), beside the repository. */
export const LLAMA_MODEL = resolve(ROOT, '../shared/models/stories260K.gguf');

/** Whether node-llama-cpp can be found from the repository, as the provider would find it (located, not loaded). */
export const llamaInstalled: boolean = (() => {
  try {
    createRequire(join(ROOT, 'package.json')).resolve('node-llama-cpp');
    return true;
  } catch {
    return false;
  }
})();

if (!llamaInstalled && process.env.CI === 'true') {
  throw new Error(`node-llama-cpp is not installed, and CI must run the llama tests: ${installCommand(ROOT, ROOT)} (.ci/run does)`);
}

/** Why the tests that run the real library skip here, or undefined when they run. */
export const llamaSkipReason: string | undefined = !existsSync(LLAMA_MODEL)
  ? `${LLAMA_MODEL} is absent`
  : !llamaInstalled
    ? `node-llama-cpp is not installed: ${installCommand(ROOT, ROOT)}`
    : undefined;
