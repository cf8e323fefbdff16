// Configuration: config/default.yaml + a PersonaGym-compatible config.yaml + flags, validated with zod.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { LineCounter, isNode, parseDocument, type Document } from 'yaml';
import * as z from 'zod';
import { ConfigError } from './errors.js';
import { PACKAGE_CONFIG_DIR } from './models/prompts.js';

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const positiveInt = z.number().int().positive();
const text = z.string().min(1);

const inference = z.looseObject({
  temperature: finite.min(0).max(2).optional(),
  max_completion_tokens: positiveInt.optional(),
  max_tokens: positiveInt.optional(),
  top_p: finite.min(0).max(1).optional(),
});

/** Where a model lives and how to reach it; shared by pool entries, the single assistant model and the user model. */
const endpoint = {
  provider: text.optional(),
  api_key: z.string().nullish(),
  api_key_env: text.optional(),
  base_url: text.optional(),
  endpoint: text.optional(),
  headers: z.record(z.string(), z.string()).optional(),
  default_headers: z.record(z.string(), z.string()).optional(),
  /** llama: threads that evaluate tokens (default half the cores). */
  threads: positiveInt.optional(),
};

const poolEntry = z.looseObject({ ...endpoint, model: text, weight: finite.min(0).default(1), inference: inference.optional() });

const assistantModel = z.looseObject({
  ...endpoint,
  ...inference.shape,
  model: text.optional(),
  model_pool: z.array(poolEntry).min(1, 'needs at least one model').optional(),
});

const userModel = z.looseObject({
  ...endpoint,
  ...inference.shape,
  model: text.optional(),
  system_prompt_template: text.optional(),
  feedback_probability: finite.min(0).max(1).default(0.85),
});

/** Rule-based strategy names (PersonaGym's legacy ones and the layer strategies that need no model). */
const RULE_NAMES = ['typo', 'word_swap', 'word_deletion', 'word_insertion', 'synonym_replacement', 'colloquial_speech', 'punctuation_format', 'word_segmentation', 'incomplete_sentence', 'emotional_attitude', 'typo_misspelling', 'synonym_rewrite', 'negative_expression', 'real_life_fragments', 'missing_slots', 'vague_slot_values', 'context_dependency', 'unclear_priority', 'multi_intent', 'intent_ambiguity', 'self_contradiction', 'mind_changing'] as const;
const rate = finite.min(0).max(1);

/** One entry of PersonaGym's `distractor.noise_strategies`. */
const ruleStrategy = z.looseObject({
  name: z.enum(RULE_NAMES, { error: (issue) => `unknown strategy \`${String(issue.input)}\`; known: ${RULE_NAMES.join(', ')}` }),
  probability: rate.default(1),
  intensity: rate.optional(),
  num_swaps: z.number().int().min(0).optional(),
  deletion_rate: rate.optional(),
  insertion_rate: rate.optional(),
  replacement_rate: rate.optional(),
});

export const LAYERS = ['surface_noise', 'incomplete_info', 'semantic_ambiguity'] as const;
export type Layer = (typeof LAYERS)[number];

/** PersonaGym's `distractor` section, plus `templates` and `validation_retries` of our own. */
const distractor = z.looseObject({
  enabled: z.boolean().default(false),
  use_semantic: z.boolean().default(false),
  activation_probability: rate.default(1),
  strategy_path: text.optional(),
  apply_to: z.looseObject({ initial_query: z.boolean().default(true), follow_up_feedback: z.boolean().default(true) }).default({ initial_query: true, follow_up_feedback: true }),
  noise_strategies: z.array(ruleStrategy).default([]),
  llm: z.looseObject({ ...endpoint, ...inference.shape, model: text.optional(), enabled: z.boolean().optional(), template: text.optional() }).default({}),
  templates: z.partialRecord(z.enum(LAYERS), text).default({}),
  validation_retries: z.number().int().min(0).default(2),
});

/** PersonaGym's `query_generation`: the query dataset, style transfer, selection; plus our supplement generator. */
const queryGeneration = z.looseObject({
  max_queries: z.number().int().min(0).nullish(),
  dataset: z.looseObject({ max_queries: z.number().int().min(0).nullish() }).optional(),
  style_transfer: z
    .looseObject({
      enabled: z.boolean().default(false),
      template: text.optional(),
      partial_template: text.optional(),
      transfer_probability: rate.default(1),
    })
    .default({ enabled: false, transfer_probability: 1 }),
  selection: z
    .looseObject({
      strategy: z.enum(['random', 'round_robin'], { error: (issue) => `expected random or round_robin, got ${JSON.stringify(issue.input)}` }).default('random'),
      queries_per_persona: positiveInt.default(5),
    })
    .default({ strategy: 'random', queries_per_persona: 5 }),
  /** The model of style transfer and of supplement query generation (provider and model default to api.*). */
  llm: z.looseObject({ ...endpoint, ...inference.shape, model: text.optional() }).default({}),
  /** The supplement rounds' query-generation prompt. */
  generation_template: text.optional(),
});

const trainingFormat = z.looseObject({
  include_persona: z.boolean().optional(),
  include_trajectory: z.boolean().optional(),
  include_full_conversation: z.boolean().optional(),
  include_distractor_versions: z.boolean().optional(),
  include_metadata: z.boolean().optional(),
});

/** PersonaGym's `training_data.format` switches, as the config schema reads them. */
export type TrainingFormat = z.infer<typeof trainingFormat>;

/**
 * PersonaGym's `training_data` (read by `personaflow export`). No defaults here: export applies them, so
 * a config file's fingerprint (and `--resume` of runs made before this schema) does not change.
 */
const trainingData = z.looseObject({
  format: trainingFormat.optional(),
  split: z
    .looseObject({ train: rate.optional(), validation: rate.optional(), test: rate.optional() })
    .refine((split) => Math.abs((split.train ?? 0) + (split.validation ?? 0) + (split.test ?? 0) - 1) <= 1e-6, { message: 'train + validation + test must add up to 1' })
    .optional(),
});

/** PersonaGym's distractor_strategy.yaml. */
export const strategyFileSchema = z.looseObject({
  layer_weights: z.partialRecord(z.enum(LAYERS), finite.min(0)).default({ surface_noise: 0.5, incomplete_info: 0.3, semantic_ambiguity: 0.2 }),
  strategies: z.partialRecord(
    z.enum(LAYERS),
    z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'strategy names are snake_case'), z.looseObject({ probability: rate.default(0.5), mandatory: z.boolean().default(false), description: z.string().optional(), examples: z.array(z.unknown()).optional() })),
  ),
});
export type StrategyFile = z.infer<typeof strategyFileSchema>;

const sim = z.strictObject({
  latency_ms: finite.min(0).default(0),
  jitter_ms: finite.min(0).default(0),
  retry_after_ms: finite.min(0).optional(),
  faults: z
    .strictObject({
      rate_limit: finite.min(0).max(1).optional(),
      server: finite.min(0).max(1).optional(),
      timeout: finite.min(0).max(1).optional(),
      malformed: finite.min(0).max(1).optional(),
    })
    .default({}),
});

export const configSchema = z.looseObject({
  api: z.looseObject({ ...endpoint, model: text.optional(), timeout: finite.positive().optional(), inference: inference.optional() }).default({}),
  openrouter: z.looseObject({ ...endpoint }).default({}),
  interaction_generation: z
    .looseObject({
      min_turns: positiveInt.default(2),
      max_turns: positiveInt.default(5),
      max_workers: positiveInt.default(16),
      max_retries: z.number().int().min(0).default(3),
      retry_delay: finite.min(0).default(2),
      max_supplement_rounds: z.number().int().min(0).default(3),
      assistant_model: assistantModel.default({}),
      user_model: userModel.default({ feedback_probability: 0.85 }),
    })
    .refine((section) => section.max_turns >= section.min_turns, { message: 'must be ≥ min_turns', path: ['max_turns'] })
    .default(() => ({}) as never),
  distractor: distractor.default(() => distractor.parse({})),
  query_generation: queryGeneration.default(() => queryGeneration.parse({})),
  paths: z.looseObject({ query_datasets: z.array(text).optional() }).optional(),
  training_data: trainingData.optional(),
  experiment: z.looseObject({ seed: z.number().int().optional() }).optional(),
  personaflow: z
    .strictObject({
      seed: z.number().int().optional(),
      stop_token: text.optional(),
      sim: sim.default(() => sim.parse({})),
      /** USD per million input/output tokens, by `model` or `provider/model`; merged over default.yaml's. */
      prices: z.record(z.string(), z.strictObject({ input: finite.min(0), output: finite.min(0) })).default({}),
      /** Provider limits per model (`model` or `provider/model`): requests and tokens per minute. */
      limits: z.record(z.string(), z.strictObject({ rpm: finite.positive().optional(), tpm: finite.positive().optional() })).default({}),
      /** The circuit breaker: failures in a row that open it, first cool-down, and when to give up. */
      breaker: z
        .strictObject({ threshold: positiveInt.default(8), cooldown_s: finite.positive().default(5), give_up_s: finite.positive().default(120) })
        .default({ threshold: 8, cooldown_s: 5, give_up_s: 120 }),
    })
    .default(() => ({}) as never),
});

export type Config = z.infer<typeof configSchema>;
export type PoolEntryConfig = z.infer<typeof poolEntry>;
export type UserModelConfig = z.infer<typeof userModel>;
export type DistractorConfig = z.infer<typeof distractor>;
export type RuleStrategyConfig = z.infer<typeof ruleStrategy>;
export type QueryGenerationConfig = z.infer<typeof queryGeneration>;

/** Sections of a PersonaGym config that belong to other stages; accepted and ignored. */
export const IGNORED_SECTIONS = ['persona_generation', 'formulation'] as const;

export interface LoadedConfig {
  readonly config: Config;
  /** The file the user gave (for messages and relative paths), or undefined for the defaults alone. */
  readonly file: string | undefined;
  readonly baseDir: string;
  readonly notices: string[];
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Deep merge where `over` wins; arrays and scalars are replaced, not merged. */
export function merge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = merge(base[key], value);
  return out;
}

const SECRET_PATH = /key|token|secret|password|header|authorization/i;

/**
 * The bad value as an error message may show it: scalars only, and never anything under a key-like
 * path or that looks like a key (a key in the wrong place is still a key), so no secret reaches a terminal.
 */
export function describeValue(value: unknown, path: readonly PropertyKey[] = []): string {
  if (value === undefined) return 'nothing';
  const type = Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value === 'object' ? 'a mapping' : typeof value;
  if (value === null || typeof value === 'object') return type;
  const shown = JSON.stringify(value);
  const secretish = path.some((part) => SECRET_PATH.test(String(part))) || (typeof value === 'string' && (/^(sk|pk|rk)-/.test(value) || /^[A-Za-z0-9_\-.]{24,}$/.test(value)));
  if (secretish || shown === undefined || shown.length > 60) return `a ${typeof value} (value not shown)`;
  return `\`${shown}\` (${type})`;
}

function parseYaml(source: string, name: string): { doc: Document; lines: LineCounter } {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  const [first] = doc.errors;
  if (first !== undefined) {
    const line = lines.linePos(first.pos[0]).line;
    // yaml's messages describe the problem, not the text around it, so no value is echoed here.
    throw new ConfigError(`${name}:${line}: invalid YAML: ${first.message.split('\n')[0] ?? ''}`);
  }
  return { doc, lines };
}

/** `file:LINE: path: message, got value` for the first zod issues, with the YAML line when the node exists. */
function explain(error: z.ZodError, name: string, doc: Document | undefined, lines: LineCounter | undefined): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '');
      let where = name;
      for (let depth = issue.path.length; depth > 0 && doc !== undefined && lines !== undefined; depth -= 1) {
        const node: unknown = doc.getIn(issue.path.slice(0, depth) as (string | number)[], true);
        if (isNode(node) && node.range !== undefined && node.range !== null) {
          where = `${name}:${lines.linePos(node.range[0]).line}`;
          break;
        }
      }
      const got = 'input' in issue ? `, got ${describeValue(issue.input, issue.path)}` : '';
      return `${where}: ${path === '' ? '(top level)' : path}: ${issue.message}${got}`;
    })
    .join('\n');
}

/**
 * Loads config/default.yaml, merges the user's file over it (a PersonaGym config.yaml works as is) and
 * validates the result. Errors name the file, line, YAML path and bad value.
 */
export async function loadConfig(file: string | undefined): Promise<LoadedConfig> {
  const defaultsPath = join(PACKAGE_CONFIG_DIR, 'default.yaml');
  const defaults = parseYaml(await readFile(defaultsPath, 'utf8'), defaultsPath).doc.toJS() as unknown;
  const notices: string[] = [];
  let user: unknown = {};
  let parsed: { doc: Document; lines: LineCounter } | undefined;
  if (file !== undefined) {
    let source: string;
    try {
      source = await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`${file}: cannot read config file (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    parsed = parseYaml(source, file);
    user = parsed.doc.toJS() ?? {};
    if (!isPlainObject(user)) throw new ConfigError(`${file}: expected a YAML mapping at the top level, got ${describeValue(user)}`);
    const ignored = IGNORED_SECTIONS.filter((section) => section in (user as object));
    if (ignored.length > 0) notices.push(`${file}: sections ${ignored.join(', ')} belong to other PersonaGym stages and are ignored`);
  }
  const result = configSchema.safeParse(merge(defaults, user), { reportInput: true });
  if (!result.success) throw new ConfigError(explain(result.error, file ?? defaultsPath, parsed?.doc, parsed?.lines));
  return { config: result.data, file, baseDir: file === undefined ? process.cwd() : dirname(resolve(file)), notices };
}

/** Reads and validates one YAML file of its own (a strategy file, say), with the same file:line messages. */
export async function loadYamlFile<T>(path: string, schema: z.ZodType<T>, what: string): Promise<T> {
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${path}: cannot read ${what} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const { doc, lines } = parseYaml(source, path);
  const result = schema.safeParse(doc.toJS() ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigError(explain(result.error, path, doc, lines));
  return result.data;
}

/** Settings that do not change what a run writes (by YAML path), left out of the fingerprint. */
const NOT_OUTPUT = new Set(['interaction_generation.max_workers', 'api.timeout', 'personaflow.sim.latency_ms', 'personaflow.sim.jitter_ms', 'personaflow.prices', 'personaflow.limits', 'personaflow.breaker']);
/** Keys that hold secrets (or where they travel): left out, so nothing secret feeds even a hash. */
const SECRET_KEY = /^(?:api_key|api_key_env|headers|default_headers|authorization)$|password|secret/i;

/** The configuration without secrets and without settings that do not change the output, keys sorted. */
function canonical(value: unknown, path = ''): unknown {
  const key = path.slice(path.lastIndexOf('.') + 1);
  if (SECRET_KEY.test(key) || NOT_OUTPUT.has(path)) return undefined;
  if (Array.isArray(value)) return value.map((item, i) => canonical(item, `${path}[${i}]`));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(value).sort()) {
      const kept = canonical(value[name], path === '' ? name : `${path}.${name}`);
      if (kept !== undefined) out[name] = kept;
    }
    return out;
  }
  return value;
}

/**
 * A fingerprint of everything that shapes a run's output: the configuration (secrets, concurrency,
 * timeouts and sim latency left out) and the settings given on the command line. A resume with another
 * fingerprint would mix two datasets in one directory.
 */
export function fingerprint(config: Config, settings: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(JSON.stringify({ config: canonical(config), settings: canonical(settings, 'settings') })).digest('hex').slice(0, 16);
}

/** The run seed: `--seed`, else `personaflow.seed`, else PersonaGym's `experiment.seed`, else 42. */
export const runSeed = (config: Config, flag?: number): number => flag ?? config.personaflow.seed ?? config.experiment?.seed ?? 42;

/** Resolves `${VAR}` references at the moment a value is used; a missing variable is an error naming the path. */
export function expandEnv(value: string, yamlPath: string, env: NodeJS.ProcessEnv = process.env): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
    const found = env[name];
    if (found === undefined || found === '') throw new ConfigError(`${yamlPath}: environment variable ${name} is not set`);
    return found;
  });
}
