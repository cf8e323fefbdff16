// The configuration's schema: PersonaGym's config.yaml keys and ours, as zod reads and checks them.
import * as z from 'zod';
import { BOUNDS } from '../options.js';

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
  threads: positiveInt.max(BOUNDS.threads).optional(),
};

/** The assistant's system prompt: inline text, or a file (relative to the config file). */
const systemPrompt = text.optional();

const poolEntry = z.looseObject({ ...endpoint, model: text, weight: finite.min(0).default(1), inference: inference.optional(), system_prompt: systemPrompt });

const assistantModel = z.looseObject({
  ...endpoint,
  ...inference.shape,
  model: text.optional(),
  model_pool: z.array(poolEntry).min(1, 'needs at least one model').optional(),
  system_prompt: systemPrompt,
});

/**
 * Who ends a conversation. `user` (ours): the simulated user, when it is done, within min and max turns.
 * `personagym`: PersonaGym's dice as well: a hidden target turn count ends it, and between min_turns and
 * the target the user answers at all only with `feedback_probability`.
 */
export const STOP_POLICIES = ['user', 'personagym'] as const;
export type StopPolicy = (typeof STOP_POLICIES)[number];

const userModel = z.looseObject({
  ...endpoint,
  ...inference.shape,
  model: text.optional(),
  system_prompt_template: text.optional(),
  /** Used only with `stop_policy: personagym` (PersonaGym's configs set it; it loads either way). */
  feedback_probability: finite.min(0).max(1).optional(),
  stop_policy: z.enum(STOP_POLICIES).default('user'),
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
  activation_probability: rate.default(0.3),
  strategy_path: text.optional(),
  /** Which turns the heavier layers (incomplete info, ambiguity) may noise: the initial query only, or every turn. */
  heavy_layers: z.enum(['initial_query', 'every_turn'], { error: (issue) => `expected initial_query or every_turn, got ${JSON.stringify(issue.input)}` }).default('initial_query'),
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

/**
 * Ours: the judge. Deterministic checks, then a model's review against a rubric; a rejected conversation is
 * a miss its persona is topped up for. `reject_tags`: the check and review tags that reject (default: every
 * check tag, and the judge's own verdict).
 */
const judge = z.looseObject({
  enabled: z.boolean().default(false),
  /** The judge's model (provider and model default to api.*); best a different model from the assistant's. */
  llm: z.looseObject({ ...endpoint, ...inference.shape, model: text.optional() }).default({}),
  /** Ask a model at all (false: the deterministic checks only). */
  review: z.boolean().default(true),
  template: text.optional(),
  /** A criterion scored below this (0-4) rejects the conversation. */
  min_score: z.number().int().min(0).max(4).default(2),
  reject_tags: z.array(text).optional(),
  validation_retries: z.number().int().min(0).default(2),
});
export type JudgeConfig = z.infer<typeof judge>;

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

/** `generate --batch`: conversations advanced round by round through the provider's Batch API. */
const batch = z.strictObject({
  /** Every generate run in batch mode (as `--batch`). */
  enabled: z.boolean().default(false),
  /** OpenAI's `completion_window` (it offers 24h). */
  completion_window: text.default('24h'),
  /** Per input file (OpenAI: 50 000 requests, 200 MB). */
  max_requests_per_file: positiveInt.default(50_000),
  max_bytes_per_file: positiveInt.default(200_000_000),
  /** Conversations in a round at most (the run's concurrency in batch mode; -j overrides). */
  conversations: positiveInt.default(10_000),
  /** A round is submitted once no conversation has asked for this long. */
  gather_ms: finite.min(0).default(200),
  /** Polling: the first pause, growing ×1.5 up to the longest. */
  poll_initial_s: finite.positive().default(5),
  poll_max_s: finite.positive().default(60),
});

export const configSchema = z.looseObject({
  api: z.looseObject({ ...endpoint, model: text.optional(), timeout: finite.positive().max(BOUNDS.timeoutSeconds).optional(), inference: inference.optional() }).default({}),
  openrouter: z.looseObject({ ...endpoint }).default({}),
  interaction_generation: z
    .looseObject({
      min_turns: positiveInt.max(BOUNDS.turns).default(2),
      max_turns: positiveInt.max(BOUNDS.turns).default(5),
      max_workers: positiveInt.max(BOUNDS.concurrency).default(16),
      max_retries: z.number().int().min(0).max(BOUNDS.retries).default(3),
      retry_delay: finite.min(0).max(BOUNDS.retryDelaySeconds).default(2),
      max_supplement_rounds: z.number().int().min(0).max(BOUNDS.supplementRounds).default(3),
      assistant_model: assistantModel.default({}),
      user_model: userModel.default({ stop_policy: 'user' }),
    })
    .refine((section) => section.max_turns >= section.min_turns, { message: 'must be ≥ min_turns', path: ['max_turns'] })
    .default(() => ({}) as never),
  distractor: distractor.default(() => distractor.parse({})),
  query_generation: queryGeneration.default(() => queryGeneration.parse({})),
  judge: judge.default(() => judge.parse({})),
  batch: batch.default(() => batch.parse({})),
  paths: z.looseObject({ query_datasets: z.array(text).optional() }).optional(),
  training_data: trainingData.optional(),
  experiment: z.looseObject({ seed: z.number().int().optional() }).optional(),
  personaflow: z
    .strictObject({
      seed: z.number().int().optional(),
      stop_token: text.optional(),
      sim: sim.default(() => sim.parse({})),
      /** USD per million input/output tokens, by `model` or `provider/model`; merged over default.yaml's. */
      prices: z.record(z.string(), z.strictObject({ input: finite.min(0), output: finite.min(0), batch: z.strictObject({ input: finite.min(0), output: finite.min(0) }).optional() })).default({}),
      /** Provider limits per model (`model` or `provider/model`): requests and tokens per minute. */
      limits: z.record(z.string(), z.strictObject({ rpm: finite.positive().optional(), tpm: finite.positive().optional() })).default({}),
      /** The longest Retry-After or x-ratelimit-reset honoured, in seconds: a refusal asking for more fails its call. */
      max_wait_s: finite.positive().max(86_400).default(600),
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

