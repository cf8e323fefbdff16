// The `llama` provider: a GGUF model run in this process by node-llama-cpp (an optional peer dependency, installed on demand and imported on first use).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { FatalError, ModelError, describeError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';
import { shellWord } from '../shell.js';
import { hash128 } from '../rng.js';
import type { ChatMessage, ChatModel, ChatRequest, ChatResponse } from '../chat.js';
import type * as NodeLlamaCpp from './llamaLibrary.js';

/** The package the provider imports. Not installed with personaflow: an optional peer dependency in package.json. */
const LIBRARY = 'node-llama-cpp';
/** Sequences (conversations generating at once) per loaded model, whatever the run's concurrency. */
export const MAX_SEQUENCES = 8;
/** Upper bound of the context per sequence, so a long-context model does not reserve its whole window N times. */
export const MAX_CONTEXT = 8192;

type Library = NodeLlamaCpp.Library;

export interface LlamaModelOptions {
  /** Recorded in `metadata.assistant_model.provider` (default `llama`). */
  readonly provider?: string;
  /** A GGUF file path or a remote reference (`hf:user/repo:quant`, `https://...gguf`), as configured. */
  readonly model: string;
  /** Relative model paths are resolved against it (default: the working directory). */
  readonly baseDir?: string;
  /** Threads that evaluate tokens. Default {@link defaultThreads}. */
  readonly threads?: number;
  /** Conversations generating at once: sequences of the one context (capped at {@link MAX_SEQUENCES}). Default 1. */
  readonly sequences?: number;
  /** Seeds sampling at temperature > 0, together with the request, so a run with the same seed repeats. */
  readonly seed?: number;
  /** Where remote references are downloaded and cached (default node-llama-cpp's `~/.node-llama-cpp/models`). */
  readonly modelsDir?: string;
  /** Imports node-llama-cpp; tests inject a failing one. Default: `import('node-llama-cpp')`. */
  readonly importer?: () => Promise<unknown>;
  /** One-line notices (a download starting), for stderr. */
  readonly log?: (line: string) => void;
}

/** A llama model: a ChatModel that also releases the loaded model when the run ends. */
export interface LlamaChatModel extends ChatModel {
  close(): Promise<void>;
}

/**
 * Half the logical cores, at least 1: llama.cpp runs best on physical cores (hyperthreads share one
 * core's math units), and its threads spin-wait on each other, so a thread that must share a core
 * with the rest of the process stalls them all. On a 2-core machine the tiny test model made ~1,000
 * tokens/s with 1 thread and ~35 with 2.
 */
export const defaultThreads = (cores: number = availableParallelism()): number => Math.max(1, Math.floor(cores / 2));

/** `hf:`, `huggingface:` and URLs are fetched (once, into the models directory); anything else is a file path. */
export const isRemoteModel = (model: string): boolean => /^(hf:|huggingface:|https?:\/\/)/i.test(model);

/** The absolute path of a local model, resolved against `baseDir`; remote references are returned as they are. */
export const resolveModelPath = (model: string, baseDir: string = process.cwd()): string => (isRemoteModel(model) || isAbsolute(model) ? model : resolve(baseDir, model));

/**
 * Checks a configured model before the run starts: a local file must exist. Returns the error text, or
 * undefined when the model is usable.
 */
export function checkModel(model: string, baseDir?: string): string | undefined {
  if (isRemoteModel(model)) return undefined;
  const path = resolveModelPath(model, baseDir);
  if (existsSync(path)) return undefined;
  const hint = /\.gguf$/i.test(model) ? '' : ' (the llama provider takes a .gguf file path or an hf:user/repo:quant reference as its model)';
  return `llama model file not found: ${path}${hint}`;
}

/**
 * The node-llama-cpp version personaflow is tested with: its peer dependency in package.json, the one place
 * it is written (CI installs what it says). Undefined when package.json cannot be read.
 */
export function nodeLlamaCppVersion(root: string = PACKAGE_ROOT): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { peerDependencies?: Record<string, unknown> };
    const version = pkg.peerDependencies?.[LIBRARY];
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The npm command that installs node-llama-cpp where this copy of personaflow (at `root`) imports it from,
 * run from `cwd`:
 * - a clone (personaflow is the project): `--no-save --save-optional`, because npm 11.5+ skips a project's
 *   own optional peer named on `npm install` (npm/cli#8464), and --no-save leaves package.json and the
 *   lockfile as they are (so the next `npm ci` removes it again);
 * - a dependency of a project (`<project>/node_modules/personaflow`): a plain install in that project;
 * - a global install (no package.json above its node_modules): `npm install -g`.
 * `--prefix DIR` names the directory when it is not the working directory.
 */
export function installCommand(root: string = PACKAGE_ROOT, cwd: string = process.cwd(), version: string | undefined = nodeLlamaCppVersion(root)): string {
  const spec = version === undefined ? LIBRARY : `${LIBRARY}@${version}`;
  const where = (dir: string): string => (resolve(dir) === resolve(cwd) ? '' : ` --prefix ${shellWord(dir)}`);
  const parent = dirname(resolve(root));
  if (basename(parent) !== 'node_modules') return `npm install --no-save --save-optional ${spec}${where(root)}`;
  const project = dirname(parent);
  if (!existsSync(join(project, 'package.json'))) return `npm install -g ${spec}`;
  return `npm install ${spec}${where(project)}`;
}

/** The one line for a machine without node-llama-cpp. */
export const notInstalled = (): string => `the llama provider needs ${LIBRARY}, which is not installed: ${installCommand()}`;

/**
 * Checks, before a run starts, that node-llama-cpp can be found from where the provider imports it (the
 * package is located, not loaded). Returns the error line, or undefined when it is there; a package that
 * is there but fails to load is reported by the first call.
 */
export function checkLibrary(from: string | URL = import.meta.url): string | undefined {
  try {
    createRequire(from).resolve(LIBRARY);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' ? notInstalled() : undefined;
  }
}

// One import, one Llama instance and one load per model file for the whole process.
let library: Promise<Library> | undefined;
let runtime: Promise<NodeLlamaCpp.Llama> | undefined;
const loaded = new Map<string, { model: Promise<NodeLlamaCpp.LlamaModel>; users: number }>();
let loads = 0;

/** How many times a model file was loaded in this process (tests check that concurrency does not load twice). */
export const llamaLoadCount = (): number => loads;

function importLibrary(importer: (() => Promise<unknown>) | undefined): Promise<Library> {
  if (importer !== undefined) return importer().then((module) => module as Library, (error: unknown) => Promise.reject(missing(error)));
  library ??= import(LIBRARY).then(
    (module) => module as Library,
    (error: unknown) => {
      library = undefined; // installing it mid-process (tests, a REPL) works on the next try
      throw missing(error);
    },
  );
  return library;
}

/** node-llama-cpp itself not found, or found but failing to load (a dependency or its binary missing): one line each. */
function missing(error: unknown): FatalError {
  const absent = (error as NodeJS.ErrnoException | undefined)?.code === 'ERR_MODULE_NOT_FOUND' && describeError(error).includes(`'${LIBRARY}'`);
  const message = absent ? notInstalled() : `${LIBRARY} is installed but failed to load (${describeError(error)}); reinstall it: ${installCommand()}`;
  return new FatalError(message, { cause: error });
}

function getRuntime(lib: Library): Promise<NodeLlamaCpp.Llama> {
  // build: 'never' and skipDownload: use the prebuilt binaries npm installed, never compile llama.cpp here.
  // maxThreads 0: each context's `threads` is then exactly the number used, not a hint under a global cap.
  runtime ??= lib.getLlama({ build: 'never', skipDownload: true, progressLogs: false, logLevel: lib.LlamaLogLevel.error, maxThreads: 0 }).catch((error: unknown) => {
    runtime = undefined;
    throw new FatalError(`llama: node-llama-cpp found no usable llama.cpp binary for this machine (${describeError(error)}); reinstall it: ${installCommand()}`, { cause: error });
  });
  return runtime;
}

async function acquireModel(lib: Library, path: string, options: LlamaModelOptions): Promise<NodeLlamaCpp.LlamaModel> {
  let entry = loaded.get(path);
  if (entry === undefined) {
    const model = (async () => {
      const llama = await getRuntime(lib);
      let file = path;
      if (isRemoteModel(path)) {
        options.log?.(`llama: fetching ${path} (once; cached in ${options.modelsDir ?? join(homedir(), '.node-llama-cpp', 'models')})`);
        file = await lib.resolveModelFile(path, { cli: false, ...(options.modelsDir === undefined ? {} : { directory: options.modelsDir }) });
      }
      loads += 1;
      return llama.loadModel({ modelPath: file });
    })();
    entry = { model, users: 0 };
    loaded.set(path, entry);
    model.catch(() => {
      if (loaded.get(path) === entry) loaded.delete(path);
    });
  }
  entry.users += 1;
  try {
    return await entry.model;
  } catch (error) {
    entry.users -= 1;
    if (error instanceof FatalError) throw error;
    // A file that is not a GGUF model, or a reference that cannot be fetched, fails every call the same way.
    throw new FatalError(`llama: cannot load ${path}: ${describeError(error)}`, { cause: error });
  }
}

async function releaseModel(path: string): Promise<void> {
  const entry = loaded.get(path);
  if (entry === undefined) return;
  entry.users -= 1;
  if (entry.users > 0) return;
  loaded.delete(path);
  await (await entry.model.catch(() => undefined))?.dispose();
  if (loaded.size === 0 && runtime !== undefined) {
    const llama = runtime;
    runtime = undefined;
    await (await llama.catch(() => undefined))?.dispose();
  }
}

/** The request's messages as node-llama-cpp's chat history (the model answers after the last one). */
function toHistory(messages: readonly ChatMessage[]): NodeLlamaCpp.ChatHistoryItem[] {
  return messages.map((message): NodeLlamaCpp.ChatHistoryItem => {
    if (message.role === 'system') return { type: 'system', text: message.content };
    if (message.role === 'user') return { type: 'user', text: message.content };
    return { type: 'model', response: [message.content] };
  });
}

const aborted = (where: string, cause?: unknown): ModelError => new ModelError('aborted', `${where}: generation aborted`, { cause });

/** The loaded model's context and its sequences, handed to one call at a time. */
interface Engine {
  readonly lib: Library;
  readonly model: NodeLlamaCpp.LlamaModel;
  readonly context: NodeLlamaCpp.LlamaContext;
  readonly free: NodeLlamaCpp.LlamaContextSequence[];
  readonly waiting: Array<(sequence: NodeLlamaCpp.LlamaContextSequence) => void>;
  wrapper: NodeLlamaCpp.ChatWrapper | undefined;
}

/**
 * A chat model on node-llama-cpp. The library is imported and the model loaded on the first call
 * (once per process and file, however many models and calls use it); calls run on the sequences of one
 * context, so `sequences` conversations generate at once from one copy of the weights. Each call is
 * stateless: its sequence is cleared and the whole message list evaluated, in the chat template the
 * model file carries (node-llama-cpp picks a general one when it has none). Usage is counted with the
 * model's tokenizer: the rendered prompt and the tokens generated.
 *
 * @example
 * const model = createLlamaModel({ model: 'models/qwen2.5-0.5b-instruct-q4_k_m.gguf', threads: 4, sequences: 4 });
 * const reply = await model.complete({ module: 'assistant', messages: [{ role: 'user', content: 'hi' }], maxCompletionTokens: 64 }, signal);
 * await model.close();
 */
export function createLlamaModel(options: LlamaModelOptions): LlamaChatModel {
  const provider = options.provider ?? 'llama';
  const where = `${provider}/${options.model}`;
  const path = resolveModelPath(options.model, options.baseDir);
  const threads = options.threads ?? defaultThreads();
  const sequences = Math.min(MAX_SEQUENCES, Math.max(1, options.sequences ?? 1));
  if (!Number.isInteger(threads) || threads < 1) throw new TypeError(`Expected \`threads\` to be a positive integer, got \`${String(threads)}\` (${typeof threads})`);
  let engine: Promise<Engine> | undefined;
  let holdsModel = false;
  let closed = false;
  const inFlight = new Set<Promise<unknown>>();

  const start = async (): Promise<Engine> => {
    const lib = await importLibrary(options.importer);
    const model = await acquireModel(lib, path, options);
    holdsModel = true;
    const context = await model.createContext({ sequences, threads, contextSize: { max: MAX_CONTEXT } });
    const free = Array.from({ length: sequences }, () => context.getSequence());
    return { lib, model, context, free, waiting: [], wrapper: undefined };
  };
  const ready = (): Promise<Engine> => {
    engine ??= start();
    return engine;
  };

  const acquire = (state: Engine, signal: AbortSignal): Promise<NodeLlamaCpp.LlamaContextSequence> => {
    const sequence = state.free.pop();
    if (sequence !== undefined) return Promise.resolve(sequence);
    return new Promise((resolveSequence, reject) => {
      const take = (next: NodeLlamaCpp.LlamaContextSequence): void => {
        signal.removeEventListener('abort', onAbort);
        resolveSequence(next);
      };
      const onAbort = (): void => {
        const index = state.waiting.indexOf(take);
        if (index >= 0) state.waiting.splice(index, 1);
        reject(aborted(where));
      };
      state.waiting.push(take);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  };
  const release = (state: Engine, sequence: NodeLlamaCpp.LlamaContextSequence): void => {
    const next = state.waiting.shift();
    if (next === undefined) state.free.push(sequence);
    else next(sequence);
  };

  const generate = async (state: Engine, request: ChatRequest, signal: AbortSignal): Promise<ChatResponse> => {
    const sequence = await acquire(state, signal);
    try {
      if (signal.aborted) throw aborted(where);
      await sequence.clearHistory();
      const chat = new state.lib.LlamaChat({ contextSequence: sequence, chatWrapper: state.wrapper ?? 'auto', autoDisposeSequence: false });
      state.wrapper ??= chat.chatWrapper;
      const history = toHistory(request.messages);
      let output = 0;
      try {
        const { response, metadata } = await chat.generateResponse(history, {
          signal,
          ...(request.maxCompletionTokens === undefined ? {} : { maxTokens: request.maxCompletionTokens }),
          ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
          seed: seedFor(options.seed ?? 0, request),
          onToken: (tokens) => (output += tokens.length),
        });
        const rendered = chat.chatWrapper.generateContextState({ chatHistory: [...history, { type: 'model', response: [] }] }).contextText;
        // Cut at max tokens is OpenAI's `length`: the text is truncated.
        const finishReason = metadata.stopReason === 'maxTokens' ? 'length' : 'stop';
        return { content: response, usage: { input: rendered.tokenize(state.model.tokenizer).length, output }, finishReason };
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    } catch (error) {
      if (signal.aborted) throw error instanceof ModelError && error.kind === 'aborted' ? error : aborted(where, error);
      if (error instanceof ModelError || error instanceof FatalError) throw error;
      // A prompt the context cannot hold fails the same way on every retry, like a 400 context_length_exceeded.
      const kind = /context|too long/i.test(describeError(error)) ? 'bad_request' : 'unknown';
      throw new ModelError(kind, `${where}: ${describeError(error)}`, { cause: error });
    } finally {
      release(state, sequence);
    }
  };

  return {
    provider,
    model: options.model,
    async complete(request: ChatRequest, signal: AbortSignal): Promise<ChatResponse> {
      if (closed) throw new ModelError('unknown', `${where}: model already closed`);
      if (signal.aborted) throw aborted(where);
      const call = (async () => {
        const state = await ready();
        if (signal.aborted) throw aborted(where);
        return generate(state, request, signal);
      })();
      inFlight.add(call);
      try {
        return await call;
      } finally {
        inFlight.delete(call);
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...inFlight]);
      // Releasing memory at the end of a run must not turn a finished run into a failed one.
      const state = await engine?.catch(() => undefined);
      await state?.context.dispose().catch(() => undefined);
      if (holdsModel) await releaseModel(path).catch(() => undefined);
    },
  };
}

/** The sampling seed of one request: the run seed and the request's content, so a rerun draws the same tokens. */
function seedFor(seed: number, request: ChatRequest): number {
  const [a] = hash128(`${seed}\u0000${request.module}\u0000${request.attempt ?? 1}\u0000${JSON.stringify(request.messages)}`);
  return a >>> 0;
}
