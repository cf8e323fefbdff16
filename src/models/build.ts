// Builds the chat models a command calls from the configuration: providers, keys, base URLs, the assistant pool, the user simulator, the helpers.
import { ConfigError } from '../errors.js';
import { expandEnv, runSeed } from '../config/load.js';
import { type Config } from '../config/schema.js';
import type { OpenAIModelOptions } from './openai.js';
import { stableId } from '../rng.js';
import { ModelLimiter } from '../limits/limiter.js';
import { limited } from '../limits/limited.js';
import type { SharedLimits } from '../limits/shared.js';
import { createPool, type ModelPool, type PoolEntry } from './pool.js';
import { createSimModel, type SimOptions } from './sim.js';
import type { ChatModel } from '../chat.js';
import { checkLibrary, checkModel, createLlamaModel, resolveModelPath, type LlamaChatModel } from './llama.js';
import { PROVIDERS, checkProviderFlag, conversationSpecs, endpointOf, helperSpec, type BatchTarget, type Endpoint, type ModelFlags, type Spec } from './specs.js';


/**
 * An OpenAI-compatible model whose SDK and HTTP client (~170 ms to load) are imported only when such a
 * model is built, so runs and commands that never build one (sim, --help, config errors) start without
 * them. The import starts at once and overlaps the rest of start-up (config, template, first input lines).
 */
function lazyOpenAIModel(options: OpenAIModelOptions): ChatModel {
  const model = import('./openai.js').then((module) => module.createOpenAIModel(options));
  // A failed import surfaces on the first call; do not let it count as unhandled before that.
  model.catch(() => undefined);
  return {
    provider: options.provider,
    model: options.model,
    async complete(request, signal) {
      return (await model).complete(request, signal);
    },
  };
}
export interface ModelSettings {
  readonly model: ChatModel;
  readonly temperature: number | undefined;
  readonly maxCompletionTokens: number | undefined;
}

/** What built models hold beside the models themselves. */
export interface Resources {
  /** Said once on stderr before the run (the sim fallback). */
  readonly notices: string[];
  /** One admission controller per distinct model (provider, model, endpoint, key), shared by all its uses. */
  readonly limiters: ReadonlyMap<string, ModelLimiter>;
  /** Releases what the models hold (a loaded llama model); call once when the run ends. */
  close(): Promise<void>;
}

export interface RunModels extends Resources {
  /** The providers the run's models really use (sim when they fell back), sorted: run.json records them. */
  readonly providers: readonly string[];
  readonly pool: ModelPool;
  readonly user: ModelSettings;
  /** The semantic distractor's model, when `flags.distractor` asked for it. */
  readonly distractor: ModelSettings | undefined;
  /** Style transfer's and query generation's model, when `flags.queries` asked for it. */
  readonly queries: ModelSettings | undefined;
  /** The judge's model, when `flags.judge` asked for it. */
  readonly judge: ModelSettings | undefined;
}

/** The flags of a command that builds one helper model only (`distractor` / `queries` do not apply). */
export type HelperFlags = Omit<ModelFlags, 'distractor' | 'queries' | 'judge'>;

/** The model of a command that calls only the semantic distractor (`personaflow noise --semantic`). */
export interface DistractorModel extends Resources {
  readonly distractor: ModelSettings;
}

interface Built {
  /** The model of one of the specs given to {@link buildSpecs}. */
  readonly settings: (spec: Spec) => ModelSettings;
  readonly resources: Resources;
}

/** A model's extra headers with `${VAR}` references resolved (a header often carries a token, like a key). */
function headersOf(spec: Spec, env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(spec.headers ?? {}).map(([name, value]) => [name, expandEnv(value, `${spec.path}.headers.${name}`, env)]));
}

/** Every spec names a provider we have. */
function assertProviders(all: readonly Spec[]): void {
  for (const spec of all) {
    if (!(PROVIDERS as readonly string[]).includes(spec.provider)) {
      throw new ConfigError(`${spec.path}.provider: \`${spec.provider}\` is not supported; use ${PROVIDERS.join(', ')} (OpenRouter serves anthropic/... models; any OpenAI-compatible server works with provider openai and base_url)`);
    }
  }
}

/**
 * Whether every model of a run is sim: `--provider sim`, or, with `simFallback` (nobody named a model),
 * no key for any of the `real` models that need one (`missing` of them have none).
 */
export const runsOnSim = (flags: Pick<ModelFlags, 'provider' | 'simFallback'>, real: number, missing: number): boolean =>
  flags.provider === 'sim' || (flags.provider === undefined && flags.simFallback === true && real > 0 && missing === real);

/**
 * Which of `all` run on sim: all of them under `--provider sim`, or, with `simFallback` (nobody named a
 * model) and no key for any model that needs one, all of them with a notice. A key missing otherwise is
 * an error: a named hosted model never runs on sim quietly.
 */
function chooseProviders(config: Config, flags: ModelFlags, all: readonly Spec[], env: NodeJS.ProcessEnv): { simulated: boolean; endpoints: ReadonlyMap<Spec, Endpoint>; notices: string[] } {
  assertProviders(all);
  const notices: string[] = [];
  // Models that need a key: sim and llama run here.
  const real = all.filter((spec) => spec.provider !== 'sim' && spec.provider !== 'llama');
  const endpoints = new Map(real.map((spec) => [spec, endpointOf(spec, config, env)]));
  const missing = real.filter((spec) => {
    const endpoint = endpoints.get(spec) as Endpoint;
    return endpoint.apiKey === undefined && !endpoint.custom;
  });
  const simulated = runsOnSim(flags, real.length, missing.length);
  if (simulated && flags.provider === undefined) {
    const wanted = [...new Set(missing.map((spec) => (endpoints.get(spec) as Endpoint).wanted))].join(' or ');
    notices.push(`no API key found (${wanted} not set): using the built-in sim provider; replies are simulated, offline`);
  } else if (!simulated && missing.length > 0) {
    const first = missing[0] as Spec;
    const orSim = missing.length === real.length && flags.provider === undefined ? ', or add --provider sim for a dry run on simulated replies' : '';
    throw new ConfigError(`${first.path}: no API key for ${first.provider}/${first.model}: set ${(endpoints.get(first) as Endpoint).wanted} (or api_key / api_key_env in the config)${orSim}`);
  }
  return { simulated, endpoints, notices };
}

/** A model's admission: its in-process limiter, and the limits it shares with other processes when there are any. */
interface Admission {
  readonly limiter: ModelLimiter;
  readonly shared: SharedLimits | undefined;
}

/** One limiter per provider quota: the same model at the same endpoint with the same key shares one. */
function limitersFor(config: Config, flags: ModelFlags): { readonly limiters: Map<string, ModelLimiter>; readonly admissionFor: (provider: string, model: string, endpoint: Endpoint | undefined) => Admission } {
  const limiters = new Map<string, ModelLimiter>();
  const admissions = new Map<string, Admission>();
  const limits = config.personaflow.limits;
  const breaker = config.personaflow.breaker;
  const admissionFor = (provider: string, model: string, endpoint: Endpoint | undefined): Admission => {
    const key = `${provider}/${model}@${endpoint?.baseURL ?? ''}#${stableId(endpoint?.apiKey ?? '', 8)}`;
    let admission = admissions.get(key);
    if (admission === undefined) {
      const configured = limits[`${provider}/${model}`] ?? limits[model] ?? {};
      const waits = { maxWaitMs: config.personaflow.max_wait_s * 1000, onNotice: flags.onNotice, onWarning: flags.onWarning };
      const breakerOptions = { breakerThreshold: breaker.threshold, breakerCooldownMs: breaker.cooldown_s * 1000, breakerGiveUpMs: breaker.give_up_s * 1000 };
      const name = `${provider}/${model}`;
      const maxConcurrency = flags.concurrency ?? config.interaction_generation.max_workers;
      // Shared: the buckets, the breaker and the pauses are every process's; this one keeps its own concurrency.
      const limiter =
        flags.shared === undefined
          ? new ModelLimiter(name, { rpm: configured.rpm, tpm: configured.tpm, maxConcurrency, ...breakerOptions, ...waits })
          : new ModelLimiter(name, { maxConcurrency, breakerThreshold: Number.POSITIVE_INFINITY, learnLimits: false, ...waits });
      const shared = flags.shared?.(key, name, { rpm: configured.rpm, tpm: configured.tpm, ...breakerOptions });
      admission = { limiter, shared };
      admissions.set(key, admission);
      limiters.set(key, limiter);
    }
    return admission;
  };
  return { limiters, admissionFor };
}

/**
 * Creates the models of `all`, the models a command calls, and nothing else: keys are looked up, and
 * llama files checked, only for them. With no `--provider` and no key for any of them, every one becomes
 * `sim` (model names kept) and a notice says so; a key missing for some only is an error.
 */
function buildSpecs(config: Config, given: ModelFlags, all: readonly Spec[], env: NodeJS.ProcessEnv): Built {
  const { standIn } = given;
  if (standIn !== undefined) {
    assertProviders(all);
    return { settings: (spec) => ({ model: standIn(spec), temperature: spec.temperature, maxCompletionTokens: spec.maxCompletionTokens }), resources: { notices: [], limiters: new Map(), close: () => Promise.resolve() } };
  }
  // The assistant and the simulator on one model are two clients: what they notice is said once.
  const said = new Set<string>();
  const once =
    (tell: ((message: string) => void) | undefined) =>
    (message: string): void => {
      if (said.has(message)) return;
      said.add(message);
      tell?.(message);
    };
  const flags: ModelFlags = { ...given, onNotice: once(given.onNotice), onWarning: once(given.onWarning ?? given.onNotice) };
  const { simulated, endpoints, notices } = chooseProviders(config, flags, all, env);
  const simOptions: SimOptions = {
    latencyMs: config.personaflow.sim.latency_ms,
    jitterMs: config.personaflow.sim.jitter_ms,
    faults: config.personaflow.sim.faults,
    seed: runSeed(config, flags.seed),
    ...(config.personaflow.sim.retry_after_ms === undefined ? {} : { retryAfterMs: config.personaflow.sim.retry_after_ms }),
  };
  const timeoutMs = (config.api.timeout ?? 120) * 1000;
  const { limiters, admissionFor } = limitersFor(config, flags);
  const limitedBy = (model: ChatModel, admission: Admission): ChatModel => limited(model, admission.limiter, admission.shared, flags.onCall);
  const llamas = new Map<string, LlamaChatModel>();
  const make = (spec: Spec): ChatModel => {
    if (flags.batch !== undefined) return batchOf(spec, flags.batch);
    // A local model needs no key, so it is only simulated when asked (--provider sim).
    if (spec.provider === 'llama' && flags.provider !== 'sim') return limitedBy(llamaModel(spec), admissionFor('llama', spec.model, undefined));
    if (simulated || spec.provider === 'sim') {
      const model = createSimModel({ provider: 'sim', model: spec.model }, simOptions);
      return limitedBy(model, admissionFor('sim', spec.model, undefined));
    }
    const endpoint = endpoints.get(spec) as Endpoint;
    return limitedBy(lazyModel(spec, endpoint), admissionFor(spec.provider, spec.model, endpoint));
  };
  /** In batch mode: the model's calls go into rounds (sim answers them here), never through a limiter. */
  const batchOf = (spec: Spec, batch: (target: BatchTarget) => ChatModel): ChatModel => {
    if (spec.provider === 'llama' && flags.provider !== 'sim') throw new ConfigError(`--batch: ${spec.path === '--model' ? '--model' : spec.path} is a local llama model, which has no batch API; use it without --batch`);
    if (simulated || spec.provider === 'sim') return batch({ kind: 'sim', model: createSimModel({ provider: 'sim', model: spec.model }, simOptions) });
    if (spec.provider === 'openrouter') throw new ConfigError(`--batch: ${spec.path === '--model' ? '--model' : spec.path} is on OpenRouter, which has no Batch API; use provider openai (OpenAI, or a server with /v1/batches) or run without --batch`);
    const endpoint = endpoints.get(spec) as Endpoint;
    return batch({ kind: 'openai', provider: spec.provider, model: spec.model, apiKey: endpoint.apiKey ?? 'not-needed', baseURL: endpoint.baseURL, headers: spec.headers, timeoutMs, topP: config.api.inference?.top_p });
  };
  const lazyModel = (spec: Spec, endpoint: Endpoint): ChatModel =>
    lazyOpenAIModel({
      provider: spec.provider,
      model: spec.model,
      apiKey: endpoint.apiKey ?? 'not-needed',
      baseURL: endpoint.baseURL,
      timeoutMs,
      topP: config.api.inference?.top_p,
      onWarning: flags.onWarning,
      keyFrom: endpoint.keyFrom,
      ...(spec.headers === undefined ? {} : { headers: headersOf(spec, env) }),
    });
  /** One llama model per file and thread count, shared by the assistant, the simulator and the helpers that use it. */
  const llamaModel = (spec: Spec): ChatModel => {
    const baseDir = spec.path === '--model' ? process.cwd() : (flags.baseDir ?? process.cwd());
    const threads = flags.threads ?? spec.threads ?? config.api.threads;
    const key = `${resolveModelPath(spec.model, baseDir)}#${threads ?? ''}`;
    let model = llamas.get(key);
    if (model === undefined) {
      const problem = checkModel(spec.model, baseDir);
      if (problem !== undefined) throw new ConfigError(`${spec.path === '--model' ? '--model' : `${spec.path}.model`}: ${problem}`);
      // node-llama-cpp is installed on demand: without it, stop before the run starts, with the command that installs it.
      const absent = checkLibrary();
      if (absent !== undefined) throw new ConfigError(absent);
      model = createLlamaModel({
        model: spec.model,
        baseDir,
        threads,
        sequences: flags.concurrency ?? config.interaction_generation.max_workers,
        seed: runSeed(config, flags.seed),
        log: (line) => process.stderr.write(`personaflow: ${line}\n`),
      });
      llamas.set(key, model);
    }
    return model;
  };
  const settings = (spec: Spec): ModelSettings => ({ model: make(spec), temperature: spec.temperature, maxCompletionTokens: spec.maxCompletionTokens });
  const close = async (): Promise<void> => {
    await Promise.all([...llamas.values()].map((model) => model.close()));
  };
  return { settings, resources: { notices, limiters, close } };
}

/**
 * Creates the models of a generate run: the assistant pool, the user simulator, and the helpers `flags`
 * asks for. Keys are looked up only for those models, so the key of a provider the run never calls is
 * not needed (see {@link buildSpecs} for the sim fallback).
 */
export function buildModels(config: Config, flags: ModelFlags, env: NodeJS.ProcessEnv = process.env): RunModels {
  checkProviderFlag(flags);
  const { assistant, user } = conversationSpecs(config, flags);
  const distractor = flags.distractor === true ? helperSpec(config, flags, 'distractor') : undefined;
  const queries = flags.queries === true ? helperSpec(config, flags, 'queries') : undefined;
  const judge = flags.judge === true ? helperSpec(config, flags, 'judge') : undefined;
  const built = buildSpecs(config, flags, [...assistant, user, ...[distractor, queries, judge].filter((spec): spec is Spec => spec !== undefined)], env);
  const entries: PoolEntry[] = assistant.map((spec) => {
    const { model, temperature, maxCompletionTokens } = built.settings(spec);
    return { model, weight: spec.weight, temperature, maxCompletionTokens };
  });
  let pool: ModelPool;
  try {
    pool = createPool(entries);
  } catch (error) {
    throw new ConfigError(`interaction_generation.assistant_model: ${(error as Error).message}`);
  }
  const userModel = built.settings(user);
  const helpers = [distractor, queries, judge].map((spec) => (spec === undefined ? undefined : built.settings(spec)));
  const providers = [...new Set([...entries.map((entry) => entry.model.provider), userModel.model.provider, ...helpers.flatMap((h) => (h === undefined ? [] : [h.model.provider]))])].sort();
  return { providers, pool, user: userModel, distractor: helpers[0], queries: helpers[1], judge: helpers[2], ...built.resources };
}

/**
 * Creates only the semantic distractor's model (`distractor.llm`, falling back to `api`), for commands
 * that call nothing else (`personaflow noise`): the assistant's and the user simulator's keys and model
 * files are never looked at. `--provider`, `--model` and `--base-url` apply to it as in a generate run.
 */
export function buildDistractorModel(config: Config, flags: HelperFlags, env: NodeJS.ProcessEnv = process.env): DistractorModel {
  const { model, ...resources } = buildHelperModel(config, flags, 'distractor', env);
  return { distractor: model, ...resources };
}

/**
 * Creates one helper's model only (`personaflow noise --semantic`: the distractor; `personaflow judge`:
 * the judge): no other model's key or file is looked at. `--provider`, `--model` and `--base-url` apply
 * to it as in a generate run.
 */
export function buildHelperModel(config: Config, flags: HelperFlags, helper: 'distractor' | 'judge', env: NodeJS.ProcessEnv = process.env): Resources & { readonly model: ModelSettings } {
  checkProviderFlag(flags);
  const spec = helperSpec(config, flags, helper);
  const built = buildSpecs(config, flags, [spec], env);
  return { model: built.settings(spec), ...built.resources };
}
