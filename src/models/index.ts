// Builds the chat models a command calls from the configuration: providers, keys, base URLs, the assistant pool, the user simulator, the helpers.
import { ConfigError } from '../errors.js';
import { expandEnv, runSeed, type Config } from '../config.js';
import type { OpenAIModelOptions } from './openai.js';
import { stableId } from '../rng.js';
import { ModelLimiter } from '../limits/limiter.js';
import { limited } from '../limits/limited.js';
import { createPool, type ModelPool, type PoolEntry } from './pool.js';
import { createSimModel, type SimOptions } from './sim.js';
import type { ChatModel } from './types.js';
import { checkModel, createLlamaModel, resolveModelPath, type LlamaChatModel } from './llama.js';

export const PROVIDERS = ['sim', 'openai', 'openrouter', 'llama'] as const;
export const OPENROUTER_BASE_URL = 'https://openrouter.ai/api/v1';

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
export type Provider = (typeof PROVIDERS)[number];

export interface ModelFlags {
  /** `--provider`: every model of the run uses it (`sim` keeps the configured model names). */
  readonly provider?: string | undefined;
  /** `--model`: one model for the assistant (replacing the pool), the user simulator and the helpers. */
  readonly model?: string | undefined;
  /** `--base-url`: endpoint for every OpenAI-compatible model; a key becomes optional. */
  readonly baseUrl?: string | undefined;
  /** The run seed (seeds sim's faults and jitter). */
  readonly seed?: number | undefined;
  /** Build the semantic distractor's model too (`distractor.llm`, falling back to `api`). */
  readonly distractor?: boolean | undefined;
  /** Build the model of style transfer and query generation too (`query_generation.llm`, falling back to `api`). */
  readonly queries?: boolean | undefined;
  /** The run's concurrency: each model's adaptive limit stays at or below it. Default 16. */
  readonly concurrency?: number | undefined;
  /** `--threads`: threads of every llama model (default: its `threads`, then `api.threads`, then half the cores). */
  readonly threads?: number | undefined;
  /** Relative llama model paths from the config file are resolved against it (the config file's directory); `--model` against the working directory. */
  readonly baseDir?: string | undefined;
}

interface Spec {
  readonly path: string;
  readonly provider: string;
  readonly model: string;
  readonly weight: number;
  readonly temperature: number | undefined;
  readonly maxCompletionTokens: number | undefined;
  readonly apiKey: string | null | undefined;
  readonly apiKeyEnv: string | undefined;
  readonly baseUrl: string | undefined;
  /** Where `baseUrl` came from, for messages. */
  readonly baseUrlPath: string;
  readonly headers: Record<string, string> | undefined;
  /** llama: threads that evaluate tokens. */
  readonly threads: number | undefined;
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
  readonly pool: ModelPool;
  readonly user: ModelSettings;
  /** The semantic distractor's model, when `flags.distractor` asked for it. */
  readonly distractor: ModelSettings | undefined;
  /** Style transfer's and query generation's model, when `flags.queries` asked for it. */
  readonly queries: ModelSettings | undefined;
}

/** The flags of a command that builds one helper model only (`distractor` / `queries` do not apply). */
export type HelperFlags = Omit<ModelFlags, 'distractor' | 'queries'>;

/** The model of a command that calls only the semantic distractor (`personaflow noise --semantic`). */
export interface DistractorModel extends Resources {
  readonly distractor: ModelSettings;
}

const PLACEHOLDER = /^(|xxx|YOUR_[A-Z_]*HERE)$/;

/** `https://openrouter.ai/api/v1/chat/completions` (PersonaGym's `endpoint`) → base URL. */
const baseOf = (url: string | undefined): string | undefined => url?.replace(/\/chat\/completions\/?$/, '');

interface EndpointFields {
  api_key?: string | null | undefined;
  api_key_env?: string | undefined;
  base_url?: string | undefined;
  endpoint?: string | undefined;
  headers?: Record<string, string> | undefined;
  default_headers?: Record<string, string> | undefined;
  threads?: number | undefined;
}

/** The endpoint fields every model section shares, with `path` for messages. */
const endpointFields = (entry: EndpointFields, path: string) => ({
  path,
  apiKey: entry.api_key,
  apiKeyEnv: entry.api_key_env,
  baseUrl: entry.base_url ?? baseOf(entry.endpoint),
  baseUrlPath: `${path}.${entry.base_url === undefined ? 'endpoint' : 'base_url'}`,
  headers: entry.headers ?? entry.default_headers,
  threads: entry.threads,
});

/** `--provider` for every model; `--base-url` for every OpenAI-compatible one. */
function withFlags(spec: Spec, flags: ModelFlags): Spec {
  const provider = flags.provider ?? spec.provider;
  return flags.baseUrl !== undefined && provider === 'openai' ? { ...spec, provider, baseUrl: flags.baseUrl, baseUrlPath: '--base-url' } : { ...spec, provider };
}

/**
 * The conversation's models, PersonaGym's way: a pool or one assistant model, and the user model; each
 * without its own provider or model falls back to `api.provider` / `api.model`, and a pool entry without
 * `inference` to `api.inference`.
 */
function conversationSpecs(config: Config, flags: ModelFlags): { assistant: Spec[]; user: Spec } {
  const ig = config.interaction_generation;
  const am = ig.assistant_model;
  const fallback = config.api.inference ?? {};
  const defaultProvider = config.api.provider ?? 'openai';
  const assistant: Spec[] = [];
  const single = (path: string, model: string | undefined) => {
    if (model === undefined) throw new ConfigError(`${path}: needs \`model\` (or api.model)`);
    return { provider: am.provider ?? defaultProvider, model, weight: 1, temperature: am.temperature, maxCompletionTokens: am.max_completion_tokens ?? am.max_tokens, ...endpointFields(am, path) };
  };
  if (flags.model !== undefined) assistant.push({ ...single('interaction_generation.assistant_model', flags.model), path: '--model' });
  else if (am.model_pool === undefined) assistant.push(single('interaction_generation.assistant_model', am.model ?? config.api.model));
  else {
    am.model_pool.forEach((entry, index) => {
      assistant.push({
        provider: entry.provider ?? 'openai',
        model: entry.model,
        weight: entry.weight,
        temperature: entry.inference?.temperature ?? fallback.temperature,
        maxCompletionTokens: entry.inference?.max_completion_tokens ?? entry.inference?.max_tokens ?? fallback.max_completion_tokens ?? fallback.max_tokens,
        ...endpointFields(entry, `interaction_generation.assistant_model.model_pool[${index}]`),
      });
    });
  }
  const um = ig.user_model;
  const userModelName = flags.model ?? um.model ?? config.api.model;
  if (userModelName === undefined) throw new ConfigError('interaction_generation.user_model: needs `model` (or api.model)');
  const user: Spec = {
    provider: um.provider ?? defaultProvider,
    model: userModelName,
    weight: 1,
    temperature: um.temperature,
    maxCompletionTokens: um.max_completion_tokens ?? um.max_tokens,
    ...endpointFields(um, 'interaction_generation.user_model'),
    ...(flags.model === undefined ? {} : { path: '--model' }),
  };
  return { assistant: assistant.map((spec) => withFlags(spec, flags)), user: withFlags(user, flags) };
}

/** The models outside the conversation, each in a section of its own. */
const HELPERS = {
  distractor: { path: 'distractor.llm', section: (config: Config) => config.distractor.llm, maxTokens: 512 },
  queries: { path: 'query_generation.llm', section: (config: Config) => config.query_generation.llm, maxTokens: 1024 },
} as const;

/** A helper's model from its own section (`distractor.llm`, `query_generation.llm`), falling back to `api`. */
function helperSpec(config: Config, flags: ModelFlags, helper: keyof typeof HELPERS): Spec {
  const { path, maxTokens } = HELPERS[helper];
  const section = HELPERS[helper].section(config);
  const model = flags.model ?? section.model ?? config.api.model;
  if (model === undefined) throw new ConfigError(`${path}: needs \`model\` (or api.model)`);
  return withFlags(
    {
      provider: section.provider ?? config.api.provider ?? 'openai',
      model,
      weight: 1,
      temperature: section.temperature ?? 0.7,
      maxCompletionTokens: section.max_completion_tokens ?? section.max_tokens ?? maxTokens,
      ...endpointFields(section, path),
      ...(flags.model === undefined ? {} : { path: '--model' }),
    },
    flags,
  );
}

interface Endpoint {
  readonly apiKey: string | undefined;
  readonly baseURL: string | undefined;
  /** The variable a user should set when the key is missing. */
  readonly wanted: string;
  /** A base URL other than the provider's own was configured (local servers need no key). */
  readonly custom: boolean;
}

/** Key and base URL for a spec: its own fields, then its provider's section, then `<PROVIDER>_API_KEY`. */
function endpointOf(spec: Spec, config: Config, env: NodeJS.ProcessEnv): Endpoint {
  const section = spec.provider === 'openrouter' ? config.openrouter : config.api;
  const sectionName = spec.provider === 'openrouter' ? 'openrouter' : 'api';
  const wanted = `${spec.provider.toUpperCase()}_API_KEY`;
  const literal = (value: string | null | undefined, path: string): string | undefined => {
    if (value === undefined || value === null) return undefined;
    let expanded: string;
    try {
      expanded = expandEnv(value, path, env).trim();
    } catch {
      return undefined; // `${VAR}` with VAR unset: no key here, try the next source
    }
    return PLACEHOLDER.test(expanded) ? undefined : expanded;
  };
  const fromEnv = (name: string | undefined): string | undefined => (name === undefined ? undefined : literal(env[name], name));
  const sectionApplies = spec.provider === 'openrouter' || (config.api.provider ?? 'openai') === spec.provider;
  const apiKey =
    literal(spec.apiKey, `${spec.path}.api_key`) ??
    fromEnv(spec.apiKeyEnv) ??
    (sectionApplies ? (literal(section.api_key, `${sectionName}.api_key`) ?? fromEnv(section.api_key_env)) : undefined) ??
    fromEnv(wanted);
  const sectionBase = sectionApplies ? (section.base_url ?? baseOf(section.endpoint)) : undefined;
  const rawBase = spec.baseUrl ?? sectionBase;
  const basePath = spec.baseUrl === undefined ? `${sectionName}.${section.base_url === undefined ? 'endpoint' : 'base_url'}` : spec.baseUrlPath;
  const baseURL = rawBase === undefined ? (spec.provider === 'openrouter' ? OPENROUTER_BASE_URL : undefined) : expandEnv(rawBase, basePath, env);
  const custom = baseURL !== undefined && !/^https:\/\/(api\.openai\.com|openrouter\.ai)\b/.test(baseURL);
  return { apiKey, baseURL, wanted, custom };
}

function checkProviderFlag(flags: ModelFlags): void {
  if (flags.provider !== undefined && !(PROVIDERS as readonly string[]).includes(flags.provider)) {
    throw new ConfigError(`--provider: expected one of ${PROVIDERS.join(', ')}, got \`${flags.provider}\``);
  }
}

interface Built {
  /** The model of one of the specs given to {@link buildSpecs}. */
  readonly settings: (spec: Spec) => ModelSettings;
  readonly resources: Resources;
}

/**
 * Creates the models of `all`, the models a command calls, and nothing else: keys are looked up, and
 * llama files checked, only for them. With no `--provider` and no key for any of them, every one becomes
 * `sim` (model names kept) and a notice says so; a key missing for some only is an error.
 */
function buildSpecs(config: Config, flags: ModelFlags, all: readonly Spec[], env: NodeJS.ProcessEnv): Built {
  for (const spec of all) {
    if (!(PROVIDERS as readonly string[]).includes(spec.provider)) {
      throw new ConfigError(`${spec.path}.provider: \`${spec.provider}\` is not supported; use ${PROVIDERS.join(', ')} (OpenRouter serves anthropic/... models; any OpenAI-compatible server works with provider openai and base_url)`);
    }
  }
  const notices: string[] = [];
  // Models that need a key: sim and llama run here.
  const real = all.filter((spec) => spec.provider !== 'sim' && spec.provider !== 'llama');
  const endpoints = new Map(real.map((spec) => [spec, endpointOf(spec, config, env)]));
  const missing = real.filter((spec) => {
    const endpoint = endpoints.get(spec) as Endpoint;
    return endpoint.apiKey === undefined && !endpoint.custom;
  });
  const simulated = flags.provider === 'sim' || (flags.provider === undefined && real.length > 0 && missing.length === real.length);
  if (simulated && flags.provider === undefined) {
    const wanted = [...new Set(missing.map((spec) => (endpoints.get(spec) as Endpoint).wanted))].join(' or ');
    notices.push(`no API key found (${wanted} not set): using the built-in sim provider; replies are simulated, offline`);
  } else if (!simulated && missing.length > 0) {
    const first = missing[0] as Spec;
    throw new ConfigError(`${first.path}: no API key for ${first.provider}/${first.model}: set ${(endpoints.get(first) as Endpoint).wanted} (or api_key / api_key_env in the config)`);
  }
  const simOptions: SimOptions = {
    latencyMs: config.personaflow.sim.latency_ms,
    jitterMs: config.personaflow.sim.jitter_ms,
    faults: config.personaflow.sim.faults,
    seed: runSeed(config, flags.seed),
    ...(config.personaflow.sim.retry_after_ms === undefined ? {} : { retryAfterMs: config.personaflow.sim.retry_after_ms }),
  };
  const timeoutMs = (config.api.timeout ?? 120) * 1000;
  const limiters = new Map<string, ModelLimiter>();
  const limits = config.personaflow.limits;
  const breaker = config.personaflow.breaker;
  /** The same model at the same endpoint with the same key is one provider quota: one limiter. */
  const limiterFor = (provider: string, model: string, endpoint: Endpoint | undefined): ModelLimiter => {
    const key = `${provider}/${model}@${endpoint?.baseURL ?? ''}#${stableId(endpoint?.apiKey ?? '', 8)}`;
    let limiter = limiters.get(key);
    if (limiter === undefined) {
      const configured = limits[`${provider}/${model}`] ?? limits[model] ?? {};
      limiter = new ModelLimiter(`${provider}/${model}`, {
        rpm: configured.rpm,
        tpm: configured.tpm,
        maxConcurrency: flags.concurrency ?? config.interaction_generation.max_workers,
        breakerThreshold: breaker.threshold,
        breakerCooldownMs: breaker.cooldown_s * 1000,
        breakerGiveUpMs: breaker.give_up_s * 1000,
      });
      limiters.set(key, limiter);
    }
    return limiter;
  };
  const llamas = new Map<string, LlamaChatModel>();
  const make = (spec: Spec): ChatModel => {
    // A local model needs no key, so it is only simulated when asked (--provider sim).
    if (spec.provider === 'llama' && flags.provider !== 'sim') return limited(llamaModel(spec), limiterFor('llama', spec.model, undefined));
    if (simulated || spec.provider === 'sim') {
      const model = createSimModel({ provider: 'sim', model: spec.model }, simOptions);
      return limited(model, limiterFor('sim', spec.model, undefined));
    }
    const endpoint = endpoints.get(spec) as Endpoint;
    return limited(lazyModel(spec, endpoint), limiterFor(spec.provider, spec.model, endpoint));
  };
  const lazyModel = (spec: Spec, endpoint: Endpoint): ChatModel =>
    lazyOpenAIModel({
      provider: spec.provider,
      model: spec.model,
      apiKey: endpoint.apiKey ?? 'not-needed',
      baseURL: endpoint.baseURL,
      timeoutMs,
      topP: config.api.inference?.top_p,
      ...(spec.headers === undefined ? {} : { headers: spec.headers }),
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
  const built = buildSpecs(config, flags, [...assistant, user, ...[distractor, queries].filter((spec): spec is Spec => spec !== undefined)], env);
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
  return {
    pool,
    user: built.settings(user),
    distractor: distractor === undefined ? undefined : built.settings(distractor),
    queries: queries === undefined ? undefined : built.settings(queries),
    ...built.resources,
  };
}

/**
 * Creates only the semantic distractor's model (`distractor.llm`, falling back to `api`), for commands
 * that call nothing else (`personaflow noise`): the assistant's and the user simulator's keys and model
 * files are never looked at. `--provider`, `--model` and `--base-url` apply to it as in a generate run.
 */
export function buildDistractorModel(config: Config, flags: HelperFlags, env: NodeJS.ProcessEnv = process.env): DistractorModel {
  checkProviderFlag(flags);
  const spec = helperSpec(config, flags, 'distractor');
  const built = buildSpecs(config, flags, [spec], env);
  return { distractor: built.settings(spec), ...built.resources };
}
