// The llama provider against the real tiny model (../shared/models/stories260K.gguf), and its guards when the library or file is missing.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fc, test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FatalError, ModelError } from '../../src/errors.js';
import { callModel } from '../../src/models/call.js';
import { checkLibrary, checkModel, createLlamaModel, defaultThreads, installCommand, isRemoteModel, llamaLoadCount, nodeLlamaCppVersion, resolveModelPath } from '../../src/models/llama.js';
import type * as NodeLlamaCpp from '../../src/models/llamaLibrary.js';
import type { ChatMessage, ChatRequest } from '../../src/chat.js';
import { ROOT } from '../helpers/cli.js';
import { LLAMA_MODEL as MODEL, llamaInstalled, llamaSkipReason as skipReason } from '../helpers/llama.js';

/**
 * The library as these tests use it: the provider's declared API (src/models/llamaLibrary.ts, checked against
 * the real module by llamaLibrary.test.ts) and what the tests call besides. node-llama-cpp is an optional
 * peer dependency, so its own types may be absent where this file is type-checked.
 */
type Library = NodeLlamaCpp.Library & {
  getLlama(options: { build: 'never'; gpu: false; logLevel: unknown }): Promise<{
    loadModel(options: { modelPath: string }): Promise<{ tokenize(text: string): readonly unknown[]; dispose(): Promise<void> }>;
    dispose(): Promise<void>;
  }>;
};
type GenerateArgs = Parameters<NodeLlamaCpp.LlamaChat['generateResponse']>;

const LIBRARY: string = 'node-llama-cpp';
const library = skipReason === undefined ? ((await import(LIBRARY)) as Library) : undefined;
const VERSION = nodeLlamaCppVersion(ROOT);

const ask = (content: string, maxCompletionTokens = 24, temperature = 0): ChatRequest => ({
  module: 'assistant',
  messages: [
    { role: 'system', content: 'You tell short stories.' },
    { role: 'user', content },
  ],
  temperature,
  maxCompletionTokens,
});
const never = (): AbortSignal => new AbortController().signal;

describe('llama helpers', () => {
  it('defaults threads to half the cores, at least one', () => {
    expect([1, 2, 3, 4, 8, 16].map((cores) => defaultThreads(cores))).toEqual([1, 1, 1, 2, 4, 8]);
  });

  it('tells remote references from paths, and resolves paths against the base directory', () => {
    expect(['hf:user/repo:Q4_K_M', 'huggingface:user/repo/file.gguf', 'https://example.com/m.gguf'].map(isRemoteModel)).toEqual([true, true, true]);
    expect(isRemoteModel('models/m.gguf')).toBe(false);
    expect(resolveModelPath('models/m.gguf', '/etc/personaflow')).toBe('/etc/personaflow/models/m.gguf');
    expect(resolveModelPath('/abs/m.gguf', '/etc')).toBe('/abs/m.gguf');
    expect(resolveModelPath('hf:user/repo:Q4_K_M', '/etc')).toBe('hf:user/repo:Q4_K_M');
  });

  it('names a missing model file before the run starts', () => {
    expect(checkModel('missing.gguf', '/nowhere')).toMatchInlineSnapshot(`"llama model file not found: /nowhere/missing.gguf"`);
    expect(checkModel('gpt-4o-mini', '/nowhere')).toMatchInlineSnapshot(
      `"llama model file not found: /nowhere/gpt-4o-mini (the llama provider takes a .gguf file path or an hf:user/repo:quant reference as its model)"`,
    );
    expect(checkModel('hf:user/repo:Q4_K_M')).toBeUndefined();
  });

  it('fails with one line saying how to install node-llama-cpp when it cannot be imported', async () => {
    // The importer stands in for `import('node-llama-cpp')` on a machine without it (Node's own error).
    const notFound = Object.assign(new Error("Cannot find package 'node-llama-cpp' imported from /x/llama.js"), { code: 'ERR_MODULE_NOT_FOUND' });
    const model = createLlamaModel({ model: MODEL, importer: () => Promise.reject(notFound) });
    const error: unknown = await model.complete(ask('hi'), never()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toBe(`the llama provider needs node-llama-cpp, which is not installed: ${installCommand()}`);
    expect((error as Error).message).not.toContain('\n');
    await model.close();
  });

  it('tells a library that is there but fails to load (one of its own imports missing) from one that is absent', async () => {
    const broken = Object.assign(new Error("Cannot find package 'lifecycle-utils' imported from /x/node_modules/node-llama-cpp/dist/index.js"), { code: 'ERR_MODULE_NOT_FOUND' });
    const model = createLlamaModel({ model: MODEL, importer: () => Promise.reject(broken) });
    const error: unknown = await model.complete(ask('hi'), never()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toBe(`node-llama-cpp is installed but failed to load (${broken.message}); reinstall it: ${installCommand()}`);
    await model.close();
  });
});

describe('installing node-llama-cpp on demand', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'personaflow-llama-install-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the version from the peer dependency in package.json, the one place it is written', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, unknown> | undefined>;
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pkg.peerDependencies?.['node-llama-cpp']).toBe(VERSION);
    expect(pkg.peerDependenciesMeta?.['node-llama-cpp']).toEqual({ optional: true });
    // Installed on demand only: neither npm ci nor `npm install personaflow` brings it.
    for (const field of ['dependencies', 'devDependencies', 'optionalDependencies']) expect(pkg[field]?.['node-llama-cpp'], field).toBeUndefined();
    const other = join(dir, 'versioned');
    await mkdir(other, { recursive: true });
    await writeFile(join(other, 'package.json'), JSON.stringify({ peerDependencies: { 'node-llama-cpp': '9.8.7' } }));
    expect(nodeLlamaCppVersion(other)).toBe('9.8.7');
    expect(nodeLlamaCppVersion(join(dir, 'nowhere'))).toBeUndefined();
    expect(installCommand(join(dir, 'nowhere'), join(dir, 'nowhere'))).toBe('npm install --no-save --save-optional node-llama-cpp');
  });

  it('names the command for where this copy of personaflow is: a clone, a dependency of a project, a global install', async () => {
    // A clone: its own optional peer, which a plain `npm install node-llama-cpp` leaves out (npm 11.5+).
    expect(installCommand('/src/personaflow', '/src/personaflow', '3.21.1')).toBe('npm install --no-save --save-optional node-llama-cpp@3.21.1');
    expect(installCommand('/src/personaflow', '/data', '3.21.1')).toBe('npm install --no-save --save-optional node-llama-cpp@3.21.1 --prefix /src/personaflow');
    // A dependency of a project: installed in that project (its package.json says so).
    const project = join(dir, 'app');
    await mkdir(join(project, 'node_modules', 'personaflow'), { recursive: true });
    await writeFile(join(project, 'package.json'), '{}');
    expect(installCommand(join(project, 'node_modules', 'personaflow'), project, '3.21.1')).toBe('npm install node-llama-cpp@3.21.1');
    expect(installCommand(join(project, 'node_modules', 'personaflow'), '/', '3.21.1')).toBe(`npm install node-llama-cpp@3.21.1 --prefix ${project}`);
    // A global install: <prefix>/lib/node_modules/personaflow, with no package.json in <prefix>/lib.
    await mkdir(join(dir, 'usr', 'lib', 'node_modules', 'personaflow'), { recursive: true });
    expect(installCommand(join(dir, 'usr', 'lib', 'node_modules', 'personaflow'), '/', '3.21.1')).toBe('npm install -g node-llama-cpp@3.21.1');
  });

  test.prop([fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom('a', 'Z', '0', '/', '.', '-', ' ', "'", '"', '$', '`', '\\', '*', ';', '&', '(', '\u00e9') })], { numRuns: 40 })(
    'a --prefix directory survives the shell whatever its characters',
    (name) => {
      const cwd = `/tmp/${name}`;
      const command = installCommand(cwd, '/elsewhere', '1.2.3');
      const word = command.slice(command.indexOf(' --prefix ') + ' --prefix '.length);
      const echoed = spawnSync('sh', ['-c', `printf %s ${word}`], { encoding: 'utf8' });
      expect(echoed.stdout).toBe(cwd);
    },
  );

  it('looks node-llama-cpp up from where the provider imports it, and names the command where it is absent', () => {
    // A module in a directory with no node_modules above it: what a machine without node-llama-cpp sees.
    const elsewhere = join(dir, 'no-modules', 'dist', 'x.js');
    expect(checkLibrary(pathToFileURL(elsewhere))).toBe(`the llama provider needs node-llama-cpp, which is not installed: ${installCommand()}`);
    // From src/models/llama.ts itself: found exactly when the repository has it installed.
    expect(checkLibrary() === undefined).toBe(llamaInstalled);
  });
});

describe.skipIf(skipReason !== undefined)(`llama provider with the tiny model${skipReason === undefined ? '' : ` (skipped: ${skipReason})`}`, () => {
  it('loads the model and generates text, counting tokens with its tokenizer', async () => {
    const model = createLlamaModel({ model: MODEL, threads: 1 });
    try {
      const reply = await model.complete(ask('Tell me about a cat.'), never());
      expect(reply.content.trim()).not.toBe('');
      expect(model).toMatchObject({ provider: 'llama', model: MODEL });

      // The same counts with the library's own tokenizer: the generated text re-tokenizes to the tokens
      // generated (give or take a merge at the end), and the prompt holds the messages plus the template.
      const llama = await library!.getLlama({ build: 'never', gpu: false, logLevel: library!.LlamaLogLevel.error });
      const loaded = await llama.loadModel({ modelPath: MODEL });
      try {
        expect(reply.usage.output).toBeGreaterThan(0);
        expect(reply.usage.output).toBeLessThanOrEqual(24);
        expect(Math.abs(loaded.tokenize(reply.content).length - reply.usage.output)).toBeLessThanOrEqual(1);
        const messages = ask('Tell me about a cat.').messages.map((m: ChatMessage) => m.content).join('\n');
        const bare = loaded.tokenize(messages).length;
        expect(reply.usage.input).toBeGreaterThan(bare);
        expect(reply.usage.input).toBeLessThan(bare + 64);
      } finally {
        await loaded.dispose();
        await llama.dispose();
      }
    } finally {
      await model.close();
    }
  });

  it('is deterministic at temperature 0, whatever the calls before', async () => {
    const model = createLlamaModel({ model: MODEL, threads: 1 });
    try {
      const first = await model.complete(ask('Once upon a time'), never());
      await model.complete(ask('Something else entirely', 16), never());
      const second = await model.complete(ask('Once upon a time'), never());
      expect(second.content).toBe(first.content);
      expect(second.usage).toEqual(first.usage);
    } finally {
      await model.close();
    }
  });

  it('honours max_completion_tokens', async () => {
    const model = createLlamaModel({ model: MODEL, threads: 1 });
    try {
      const reply = await model.complete(ask('Tell me a long story.', 5), never());
      expect(reply.usage.output).toBeLessThanOrEqual(5);
    } finally {
      await model.close();
    }
  });

  it('serves several conversations at once from one loaded model, each as if it were alone', async () => {
    const prompts = ['A dog', 'A bird', 'The sun', 'A boat', 'Lily', 'Tom'];
    const alone = createLlamaModel({ model: MODEL, threads: 1, sequences: 1 });
    const expected: string[] = [];
    try {
      for (const prompt of prompts) expected.push((await alone.complete(ask(prompt, 16), never())).content);
    } finally {
      await alone.close();
    }

    const before = llamaLoadCount();
    // Two models on the same file (the assistant and the user simulator, say) share one load.
    const assistant = createLlamaModel({ model: MODEL, threads: 1, sequences: 4 });
    const simulator = createLlamaModel({ model: MODEL, threads: 1, sequences: 2 });
    try {
      const replies = await Promise.all(prompts.map((prompt, i) => (i % 2 === 0 ? assistant : simulator).complete(ask(prompt, 16), never())));
      expect(llamaLoadCount() - before).toBe(1);
      // Sampling at temperature 0 from batched sequences can differ in the last bits of the logits, so
      // compare the start of each reply: the sequences must not have seen each other's prompts.
      replies.forEach((reply, i) => expect(reply.content.slice(0, 12)).toBe(expected[i]!.slice(0, 12)));
    } finally {
      await assistant.close();
      await simulator.close();
    }
  });

  it('stops generating when the signal aborts, rejects with an aborted ModelError and frees its sequence', async () => {
    // Count the tokens really generated by wrapping the library's LlamaChat, and abort from the fifth.
    let generated = 0;
    const controller = new AbortController();
    const counting = {
      ...library!,
      LlamaChat: class extends library!.LlamaChat {
        override generateResponse(...[history, options]: GenerateArgs) {
          return super.generateResponse(history, {
            ...options,
            onToken: (tokens) => {
              generated += tokens.length;
              if (generated >= 5) controller.abort();
              options?.onToken?.(tokens);
            },
          });
        }
      },
    };
    const model = createLlamaModel({ model: MODEL, threads: 1, sequences: 1, importer: () => Promise.resolve(counting) });
    try {
      const error: unknown = await model.complete(ask('Tell me a very long story.', 1500), controller.signal).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelError);
      expect((error as ModelError).kind).toBe('aborted');
      expect(generated).toBeLessThan(10);
      // The only sequence is free again: the next call runs.
      const next = await model.complete(ask('A cat', 4), never());
      expect(next.usage.output).toBeGreaterThan(0);
    } finally {
      await model.close();
    }
  });

  it('aborts the call when its observable is unsubscribed', async () => {
    const model = createLlamaModel({ model: MODEL, threads: 1, sequences: 1 });
    try {
      await model.complete(ask('warm up', 1), never()); // loaded, so the unsubscribe lands mid-generation
      let settled: Promise<unknown> | undefined;
      const wrapped = {
        ...model,
        complete: (request: ChatRequest, signal: AbortSignal) => {
          const call = model.complete(request, signal);
          settled = call.catch((e: unknown) => e);
          return call;
        },
      };
      const subscription = callModel(wrapped, ask('Tell me a very long story.', 1500)).subscribe();
      await new Promise((r) => setTimeout(r, 20));
      subscription.unsubscribe();
      const error = await settled;
      expect(error).toBeInstanceOf(ModelError);
      expect((error as ModelError).kind).toBe('aborted');
    } finally {
      await model.close();
    }
  });

  it('loads once per process and releases the model when the last user closes', async () => {
    const before = llamaLoadCount();
    const a = createLlamaModel({ model: MODEL, threads: 1 });
    await a.complete(ask('one', 2), never());
    await a.complete(ask('two', 2), never());
    expect(llamaLoadCount() - before).toBe(1);
    await a.close();
    await expect(a.complete(ask('three', 2), never())).rejects.toThrow(/closed/);
    const b = createLlamaModel({ model: MODEL, threads: 1 });
    await b.complete(ask('four', 2), never());
    expect(llamaLoadCount() - before).toBe(2); // the first was disposed, so this is a fresh load
    await b.close();
  });

  it('reports a file that is not a model as a fatal error', async () => {
    const model = createLlamaModel({ model: join(ROOT, 'package.json'), threads: 1 });
    const error: unknown = await model.complete(ask('hi'), never()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toMatch(/^llama: cannot load .*package\.json: /);
    await model.close();
  });
});
