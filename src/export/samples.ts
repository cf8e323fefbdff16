// Interactions to training samples: PersonaGym's TrainingSample, OpenAI chat fine-tuning and ShareGPT lines, each with its zod schema.
import * as z from 'zod';
import type { TrainingFormat } from '../config/schema.js';
import { formatPersona } from '../prompts/template.js';
import { pairKey, type Features } from '../types.js';

const record = z.record(z.string(), z.unknown());

/** One message of an input interaction: what export reads of it (anything else is passed over). */
const inputMessage = z.looseObject({
  role: z.enum(['user', 'assistant', 'system']),
  content: z.string(),
  metadata: record.nullish(),
});

/**
 * An interaction line as export accepts it: personaflow's Interaction, or PersonaGym's own (which may
 * lack `original_query`, `num_turns` or metadata fields). Only what a sample needs is required.
 */
export const interactionInputSchema = z.looseObject({
  interaction_id: z.string().min(1),
  persona_id: z.string().min(1),
  persona_features: record.optional(),
  features: record.optional(),
  original_query: z.string().optional(),
  initial_query: z.string().optional(),
  messages: z.array(inputMessage).refine((messages) => messages.some((m) => m.role === 'user'), 'needs at least one user message'),
  num_turns: z.number().int().min(0).optional(),
  metadata: record.nullish(),
});
export type InteractionInput = z.infer<typeof interactionInputSchema>;

export type Format = 'personagym' | 'openai' | 'sharegpt';
export const FORMATS: readonly Format[] = ['personagym', 'openai', 'sharegpt'];
export type SplitName = 'train' | 'validation' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'validation', 'test'];

/** PersonaGym's `training_data.format` switches; every one defaults to true, as PersonaGym's collector has it. */
export type IncludeFlags = Readonly<TrainingFormat>;

export interface SampleOptions {
  /** Use each noised user message's `metadata.clean_version` instead of the text the assistant saw. */
  readonly clean?: boolean;
  /**
   * openai and sharegpt only: no system message (`none`, the default), the persona's (`persona`: the
   * interaction's `metadata.system_prompt` when recorded, else one built from `persona_features`), or
   * this text.
   */
  readonly system?: string;
  /** personagym only: PersonaGym's `training_data.format` switches. */
  readonly include?: IncludeFlags;
}

export interface ChatTurn {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** PersonaGym's TrainingSample, in its field order. */
export const personaGymSampleSchema = z.strictObject({
  sample_id: z.string().min(1),
  persona_id: z.string().min(1),
  persona_features: record,
  original_query: z.string(),
  initial_query: z.string(),
  prompt_trajectory: z.array(z.string()),
  full_conversation: z.array(z.strictObject({ role: z.enum(['user', 'assistant']), content: z.string() })),
  num_turns: z.number().int().min(0),
  noisy_initial_queries: z.array(z.unknown()),
  noisy_trajectories: z.array(z.unknown()),
  metadata: record,
});
export type PersonaGymSample = z.infer<typeof personaGymSampleSchema>;

const chatMessage = z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string().min(1, 'is empty') });

type Role = ChatTurn['role'];

/**
 * Where a chat breaks what trainers expect (an optional system message first, then user and assistant
 * strictly alternating, the user first and the assistant last), or undefined when it does not.
 * LLaMA-Factory's ShareGPT converter, for one, drops a record that does not alternate this way.
 */
export function alternationIssue(roles: readonly Role[], names: Readonly<Record<Role, string>> = { system: 'system', user: 'user', assistant: 'assistant' }): string | undefined {
  const start = roles[0] === 'system' ? 1 : 0;
  if (roles.length - start === 0) return `needs ${names.user} and ${names.assistant} turns`;
  for (let i = start; i < roles.length; i += 1) {
    const role = roles[i] as Role;
    const expected: Role = (i - start) % 2 === 0 ? 'user' : 'assistant';
    if (role === 'system') return `${names.system} may only come first`;
    if (role !== expected) return `turn ${i} is ${names[role]}, expected ${names[expected]} (${names.user} and ${names.assistant} alternate, ${names.user} first)`;
  }
  if (roles.at(-1) !== 'assistant') return `the last turn is ${names.user}, must be ${names.assistant} (nothing answers it)`;
  return undefined;
}

/** A zod check that runs `alternationIssue` on the roles `roleOf` reads. */
const alternates =
  <T>(roleOf: (item: T) => Role, names?: Readonly<Record<Role, string>>) =>
  (items: T[], context: z.core.$RefinementCtx<T[]>): void => {
    const issue = alternationIssue(items.map(roleOf), names);
    if (issue !== undefined) context.addIssue({ code: 'custom', message: issue });
  };

/** One line of OpenAI's chat fine-tuning JSONL: an optional system message, then user/assistant turns alternating, user first, assistant last. */
export const openAISampleSchema = z.strictObject({
  messages: z.array(chatMessage).superRefine(alternates((m) => m.role)),
});
export type OpenAISample = z.infer<typeof openAISampleSchema>;

const shareGPTTurn = z.strictObject({ from: z.enum(['system', 'human', 'gpt']), value: z.string().min(1, 'is empty') });
const SHAREGPT_FROM = { system: 'system', human: 'user', gpt: 'assistant' } as const;

/** One ShareGPT record: `conversations` of human/gpt turns alternating, human first and gpt last, an optional system turn first. */
export const shareGPTSampleSchema = z.strictObject({
  conversations: z.array(shareGPTTurn).superRefine(alternates((t) => SHAREGPT_FROM[t.from], { system: 'system', user: 'human', assistant: 'gpt' })),
});
export type ShareGPTSample = z.infer<typeof shareGPTSampleSchema>;

export const SAMPLE_SCHEMAS = { personagym: personaGymSampleSchema, openai: openAISampleSchema, sharegpt: shareGPTSampleSchema } as const;
export type Sample = PersonaGymSample | OpenAISample | ShareGPTSample;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The persona features, under either spelling. */
export const featuresOf = (interaction: InteractionInput): Features => interaction.persona_features ?? interaction.features ?? {};

/**
 * The user and assistant turns as a trainer sees them: the text the assistant was answering (noisy, when
 * the distractor noised it), or with `clean` the user's clean text (`metadata.clean_version`).
 * System messages in the input are left out (the system message is export's choice, `--system`).
 */
export function conversationOf(interaction: InteractionInput, clean = false): ChatTurn[] {
  const turns: ChatTurn[] = [];
  for (const message of interaction.messages) {
    if (message.role === 'system') continue;
    const cleanVersion = message.metadata?.clean_version;
    const content = clean && message.role === 'user' && typeof cleanVersion === 'string' ? cleanVersion : message.content;
    turns.push({ role: message.role, content });
  }
  return turns;
}

/** The user turns in order, the initial query first: PersonaGym's `prompt_trajectory`. */
export const userTurns = (turns: readonly ChatTurn[]): string[] => turns.filter((t) => t.role === 'user').map((t) => t.content);

/** `num_turns` as written, else the user→assistant exchanges counted. */
export const turnsOf = (interaction: InteractionInput): number => interaction.num_turns ?? interaction.messages.filter((m) => m.role === 'assistant').length;

/** PersonaGym's `noisy_initial_queries`: the versions of the initial query (our `{clean_query, noisy_versions}` or PersonaGym's list). */
export function noisyInitialQueries(metadata: Record<string, unknown>): unknown[] {
  const versions = metadata.noisy_versions;
  if (!isRecord(versions)) return [];
  const initial = versions.initial_query;
  if (Array.isArray(initial)) return initial;
  if (isRecord(initial) && Array.isArray(initial.noisy_versions)) return initial.noisy_versions;
  return [];
}

/** PersonaGym's `noisy_trajectories`: the noised follow-ups as the interaction recorded them. */
export function noisyTrajectories(metadata: Record<string, unknown>): unknown[] {
  const versions = metadata.noisy_versions;
  return isRecord(versions) && Array.isArray(versions.followups) ? versions.followups : [];
}

/** Whether the user-simulator guards rejected any reply of this conversation (each was regenerated with a nudge). */
export function hadGuardRejections(interaction: InteractionInput): boolean {
  const guard = interaction.metadata?.guard;
  return isRecord(guard) && Object.values(guard).some((count) => typeof count === 'number' && count > 0);
}

/** Assistant answers that were cut at the token limit, or refusals (`metadata.truncated` / `refused` of each answer). */
export function assistantIssues(interaction: InteractionInput): { readonly truncated: number; readonly refused: number } {
  const answers = interaction.messages.filter((m) => m.role === 'assistant');
  const flagged = (key: string): number => answers.filter((m) => (m.metadata as Record<string, unknown> | undefined)?.[key] === true).length;
  return { truncated: flagged('truncated'), refused: flagged('refused') };
}

/** `sample_<persona_id>_<query_id>`, injective like interaction ids (see pairKey), or from the interaction id when the query id is unknown. */
export function sampleId(interaction: InteractionInput): string {
  const queryId = interaction.metadata?.query_id;
  if (typeof queryId === 'string' && queryId !== '') return `sample_${pairKey(interaction.persona_id, queryId)}`;
  return interaction.interaction_id.startsWith('interaction_') ? `sample_${interaction.interaction_id.slice('interaction_'.length)}` : `sample_${interaction.interaction_id}`;
}

/** PersonaGym's TrainingSample for one interaction, with its `training_data.format` switches. */
export function toPersonaGym(interaction: InteractionInput, options: SampleOptions = {}): PersonaGymSample {
  const include = options.include ?? {};
  const turns = conversationOf(interaction, options.clean);
  const trajectory = userTurns(turns);
  const metadata = interaction.metadata ?? {};
  const withVersions = include.include_distractor_versions !== false;
  // noisy_versions moves to the top-level fields; semantic_noise stays with the metadata unless versions are left out.
  const { noisy_versions: _moved, ...rest } = metadata;
  if (!withVersions) delete rest.semantic_noise;
  const first = turns.find((t) => t.role === 'user')?.content ?? '';
  return {
    sample_id: sampleId(interaction),
    persona_id: interaction.persona_id,
    persona_features: include.include_persona === false ? {} : { ...featuresOf(interaction) },
    original_query: interaction.original_query ?? interaction.initial_query ?? first,
    initial_query: interaction.initial_query ?? first,
    prompt_trajectory: include.include_trajectory === false ? trajectory.slice(0, 1) : trajectory,
    full_conversation: include.include_full_conversation === false ? [] : turns.filter((t): t is ChatTurn & { role: 'user' | 'assistant' } => t.role !== 'system').map((t) => ({ role: t.role, content: t.content })),
    num_turns: turnsOf(interaction),
    noisy_initial_queries: withVersions ? noisyInitialQueries(metadata) : [],
    noisy_trajectories: withVersions ? noisyTrajectories(metadata) : [],
    metadata:
      include.include_metadata === false
        ? { interaction_id: interaction.interaction_id, ...(metadata.query_id === undefined ? {} : { query_id: metadata.query_id }) }
        : { interaction_id: interaction.interaction_id, ...rest },
  };
}

/**
 * The system message `--system` asks for: none, the persona's, or the given text. The persona's is the
 * interaction's `metadata.system_prompt` when it recorded one, else built from its features.
 */
export function systemMessage(interaction: InteractionInput, system: string | undefined): string | undefined {
  if (system === undefined || system === 'none') return undefined;
  if (system !== 'persona') return system;
  const recorded = interaction.metadata?.system_prompt;
  if (typeof recorded === 'string' && recorded.trim() !== '') return recorded;
  return `You are talking with a user who has this profile:\n${formatPersona(featuresOf(interaction))}\nAdapt your answers to this user.`;
}

/**
 * The turns a chat trainer can learn from: assistant turns before the first user turn (a greeting) and
 * user turns after the last assistant turn (a goodbye nobody answered) are dropped, since ShareGPT and
 * OpenAI trainers expect the user first and the assistant last.
 */
export function answeredTurns(turns: readonly ChatTurn[]): ChatTurn[] {
  const first = turns.findIndex((t) => t.role === 'user');
  let last = turns.length - 1;
  while (last >= 0 && turns[last]?.role !== 'assistant') last -= 1;
  return first === -1 || last < first ? [] : turns.slice(first, last + 1);
}

/**
 * The messages of an openai or sharegpt sample, as written: the `--system` message, if any, then the
 * answered user and assistant turns (see `answeredTurns`).
 */
export function chatOf(interaction: InteractionInput, options: SampleOptions = {}): ChatTurn[] {
  const system = systemMessage(interaction, options.system);
  const turns = answeredTurns(conversationOf(interaction, options.clean));
  return system === undefined ? turns : [{ role: 'system', content: system }, ...turns];
}

/** One OpenAI chat fine-tuning line: `{"messages": [...]}`. */
export function toOpenAI(interaction: InteractionInput, options: SampleOptions = {}): OpenAISample {
  return { messages: chatOf(interaction, options).map((t) => ({ role: t.role, content: t.content })) };
}

const SHAREGPT_ROLE = { system: 'system', user: 'human', assistant: 'gpt' } as const;

/** One ShareGPT record: `{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}]}`. */
export function toShareGPT(interaction: InteractionInput, options: SampleOptions = {}): ShareGPTSample {
  return { conversations: chatOf(interaction, options).map((t) => ({ from: SHAREGPT_ROLE[t.role], value: t.content })) };
}

/**
 * The conversation of `interaction` as `format` writes it, roles and texts, system message included: two
 * interactions with the same key give the same conversation in the export (what dedupe compares).
 */
export function conversationKey(format: Format, interaction: InteractionInput, options: SampleOptions = {}): string {
  const turns = format === 'personagym' ? conversationOf(interaction, options.clean) : chatOf(interaction, options);
  return JSON.stringify(turns.map((t) => [t.role, t.content]));
}

/** The sample of `interaction` in `format` (not yet validated; see `SAMPLE_SCHEMAS`). */
export function toSample(format: Format, interaction: InteractionInput, options: SampleOptions = {}): Sample {
  if (format === 'openai') return toOpenAI(interaction, options);
  if (format === 'sharegpt') return toShareGPT(interaction, options);
  return toPersonaGym(interaction, options);
}
