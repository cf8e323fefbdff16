// From configuration to model specs: which provider and model each part of a run calls, with its key and endpoint.
import type { CallListener, ChatModel } from '../chat.js';
import type { SharedLimitsFactory } from '../limits/shared.js';
import type { Config } from '../config/schema.js';
import { expandEnv } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { safeUrl } from '../redact.js';

export const PROVIDERS = ['sim', 'openai', 'openrouter', 'llama'] as const;
export const OPENROUTER_BASE_URL = 'https://openrouter.ai/api/v1';

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
  /** Build the judge's model too (`judge.llm`, falling back to `api`). */
  readonly judge?: boolean | undefined;
  /** The run's concurrency: each model's adaptive limit stays at or below it. Default 16. */
  readonly concurrency?: number | undefined;
  /** `--threads`: threads of every llama model (default: its `threads`, then `api.threads`, then half the cores). */
  readonly threads?: number | undefined;
  /** Relative llama model paths from the config file are resolved against it (the config file's directory); `--model` against the working directory. */
  readonly baseDir?: string | undefined;
  /**
   * With no `--provider` and no key for any model that needs one, run every model on sim (a notice says
   * so). Only when nobody named a model: a run whose `--model` or config names hosted models needs their
   * keys, or `--provider sim` said out loud. Default false.
   */
  readonly simFallback?: boolean | undefined;
  /** Told what the run waits for and until when (long Retry-After, reset headers, an open breaker), and what it does not believe. */
  readonly onNotice?: ((message: string) => void) | undefined;
  /** Told what the models do not believe and work around (a server without usage, an absurd reset header); default: onNotice. */
  readonly onWarning?: ((message: string) => void) | undefined;
  /** Told about every attempt of every call (--verbose): model, module, attempt, waits, latency, tokens or error. */
  readonly onCall?: CallListener | undefined;
  /** Limits shared with other processes (workers on a queue): each model's buckets, breaker and pauses live there. */
  readonly shared?: SharedLimitsFactory | undefined;
  /** `generate --batch`: each model is built as this makes it from its target, its calls gathered into batch rounds (no rate limiter). */
  readonly batch?: ((target: BatchTarget) => ChatModel) | undefined;
  /**
   * `personaflow estimate`: every model is what this makes of its spec (provider and model as configured),
   * and nothing is called: no key is looked up, no limiter is put in front, no llama file is loaded.
   */
  readonly standIn?: ((spec: Spec) => ChatModel) | undefined;
}

/** A model as a batch run needs it: a sim model that answers in this process, or an OpenAI-compatible endpoint. */
export type BatchTarget =
  | { readonly kind: 'sim'; readonly model: ChatModel }
  | { readonly kind: 'openai'; readonly provider: string; readonly model: string; readonly apiKey: string; readonly baseURL: string | undefined; readonly headers: Readonly<Record<string, string>> | undefined; readonly timeoutMs: number; readonly topP: number | undefined };

/** One model a run calls, as the configuration and the flags describe it. */
export interface Spec {
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
export function conversationSpecs(config: Config, flags: ModelFlags): { assistant: Spec[]; user: Spec } {
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
  distractor: { path: 'distractor.llm', section: (config: Config) => config.distractor.llm, maxTokens: 512, temperature: 0.7 },
  queries: { path: 'query_generation.llm', section: (config: Config) => config.query_generation.llm, maxTokens: 1024, temperature: 0.7 },
  // A judge should score the same conversation the same way: no sampling by default.
  judge: { path: 'judge.llm', section: (config: Config) => config.judge.llm, maxTokens: 1024, temperature: 0 },
} as const;

/** A helper's model from its own section (`distractor.llm`, `query_generation.llm`, `judge.llm`), falling back to `api`. */
export function helperSpec(config: Config, flags: ModelFlags, helper: keyof typeof HELPERS): Spec {
  const { path, maxTokens, temperature } = HELPERS[helper];
  const section = HELPERS[helper].section(config);
  const model = flags.model ?? section.model ?? config.api.model;
  if (model === undefined) throw new ConfigError(`${path}: needs \`model\` (or api.model)`);
  return withFlags(
    {
      provider: section.provider ?? config.api.provider ?? 'openai',
      model,
      weight: 1,
      temperature: section.temperature ?? temperature,
      maxCompletionTokens: section.max_completion_tokens ?? section.max_tokens ?? maxTokens,
      ...endpointFields(section, path),
      ...(flags.model === undefined ? {} : { path: '--model' }),
    },
    flags,
  );
}

export interface Endpoint {
  readonly apiKey: string | undefined;
  readonly baseURL: string | undefined;
  /** The variable a user should set when the key is missing. */
  readonly wanted: string;
  /** Every environment variable looked at for the key, in order (`api_key_env`, `${VAR}` references, `wanted`). */
  readonly variables: readonly string[];
  /** A base URL other than the provider's own was configured (local servers need no key). */
  readonly custom: boolean;
  /** Where the key came from, as a person would fix it: the variable (`OPENAI_API_KEY`) or the config key (`api.api_key`). */
  readonly keyFrom: string | undefined;
}

/** Key and base URL for a spec: its own fields, then its provider's section, then `<PROVIDER>_API_KEY`. */
export function endpointOf(spec: Spec, config: Config, env: NodeJS.ProcessEnv): Endpoint {
  const section = spec.provider === 'openrouter' ? config.openrouter : config.api;
  const sectionName = spec.provider === 'openrouter' ? 'openrouter' : 'api';
  const wanted = `${spec.provider.toUpperCase()}_API_KEY`;
  const variables: string[] = [];
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
  const fromEnv = (name: string | undefined): string | undefined => {
    if (name === undefined) return undefined;
    variables.push(name);
    return literal(env[name], name);
  };
  // A value from the config file: the variables its `${VAR}` references name (a value from the environment is a key, never scanned).
  const configured = (value: string | null | undefined, path: string): string | undefined => {
    for (const [, name] of (value ?? '').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) variables.push(name as string);
    return literal(value, path);
  };
  // A config value that is only `${VAR}` is fixed in VAR.
  const named = (value: string | null | undefined, path: string): string => /^\s*\$\{(\w+)\}\s*$/.exec(value ?? '')?.[1] ?? path;
  const sectionApplies = spec.provider === 'openrouter' || (config.api.provider ?? 'openai') === spec.provider;
  const sources: readonly (readonly [() => string | undefined, string | undefined])[] = [
    [() => configured(spec.apiKey, `${spec.path}.api_key`), named(spec.apiKey, `${spec.path}.api_key`)],
    [() => fromEnv(spec.apiKeyEnv), spec.apiKeyEnv],
    [() => (sectionApplies ? configured(section.api_key, `${sectionName}.api_key`) : undefined), named(section.api_key, `${sectionName}.api_key`)],
    [() => (sectionApplies ? fromEnv(section.api_key_env) : undefined), section.api_key_env ?? undefined],
    [() => fromEnv(wanted), wanted],
  ];
  let apiKey: string | undefined;
  let keyFrom: string | undefined;
  for (const [read, from] of sources) {
    apiKey = read();
    if (apiKey !== undefined) {
      keyFrom = from;
      break;
    }
  }
  const sectionBase = sectionApplies ? (section.base_url ?? baseOf(section.endpoint)) : undefined;
  const rawBase = spec.baseUrl ?? sectionBase;
  const basePath = spec.baseUrl === undefined ? `${sectionName}.${section.base_url === undefined ? 'endpoint' : 'base_url'}` : spec.baseUrlPath;
  const baseURL = rawBase === undefined ? (spec.provider === 'openrouter' ? OPENROUTER_BASE_URL : undefined) : checkBaseUrl(expandEnv(rawBase, basePath, env), basePath);
  const custom = baseURL !== undefined && !/^https:\/\/(api\.openai\.com|openrouter\.ai)\b/.test(baseURL);
  return { apiKey, baseURL, wanted, custom, variables: [...new Set(variables)], keyFrom };
}

/**
 * A base URL must be http:// or https://: `file:`, a path or a typo would fail every call one by one.
 * The message shows the URL without credentials, and text that is not a URL not at all.
 */
export function checkBaseUrl(value: string, path: string): string {
  let protocol: string;
  try {
    protocol = new URL(value).protocol;
  } catch {
    throw new ConfigError(`${path}: expected an http:// or https:// URL, got ${value.trim() === '' ? 'an empty string' : 'text that is not a URL'}`);
  }
  if (protocol !== 'http:' && protocol !== 'https:') throw new ConfigError(`${path}: expected an http:// or https:// URL, got a ${protocol} URL (${safeUrl(value)})`);
  return value;
}

/** `--provider` names a provider we have; `--base-url` is an http(s) URL. */
export function checkProviderFlag(flags: ModelFlags): void {
  if (flags.baseUrl !== undefined) checkBaseUrl(flags.baseUrl, '--base-url');
  if (flags.provider !== undefined && !(PROVIDERS as readonly string[]).includes(flags.provider)) {
    throw new ConfigError(`--provider: expected one of ${PROVIDERS.join(', ')}, got \`${flags.provider}\``);
  }
}

