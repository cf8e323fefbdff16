// Data contracts: the task that flows through the pipeline and PersonaGym's Interaction JSON that comes out.
import type { ModelRef, TokenUsage } from './chat.js';

export type Features = Readonly<Record<string, unknown>>;

/** One persona × query: the unit of work. Everything a conversation needs is here, so tasks are independent. */
export interface Task {
  readonly personaId: string;
  readonly personaFeatures: Features;
  readonly systemPrompt: string | undefined;
  readonly queryId: string;
  readonly originalQuery: string;
  /** The first user message before noise (PersonaGym's `initial_query`). */
  readonly initialQuery: string;
  readonly targetTurns: number;
  /** Key for every seeded draw of this task: `<persona_id>/<query_id>`. */
  readonly key: string;
  /** Where the task came from, for messages: `personas.ndjson:12`. */
  readonly source: string;
  /** The input gave `adapted_query`: style transfer leaves the query as it is. */
  readonly adapted?: boolean;
  /** Set on tasks a supplement round generated (1, 2, ...). */
  readonly supplementRound?: number;
  /** What the user knows and may reveal when it matters or when asked (the persona's `facts`, then the query's). */
  readonly facts?: readonly string[];
}

/** A task after `lockModel`: the assistant model it talks to for its whole conversation. */
export interface LockedTask extends Task {
  /** Index of the drawn entry in the pool. */
  readonly poolIndex: number;
  /** Its provider and model, as `metadata.assistant_model` records them. */
  readonly assistant: ModelRef;
}

export interface MessageMetadata {
  readonly turn: number;
  readonly [key: string]: unknown;
}

export interface InteractionMessage {
  readonly role: 'user' | 'assistant';
  readonly content: string;
  readonly timestamp: string;
  readonly metadata: MessageMetadata;
}

export interface UsageEntry {
  readonly calls: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
}

/** PersonaGym's Interaction, as written one per line. */
export interface Interaction {
  readonly interaction_id: string;
  readonly persona_id: string;
  readonly persona_features: Features;
  readonly original_query: string;
  readonly initial_query: string;
  readonly messages: readonly InteractionMessage[];
  readonly num_turns: number;
  readonly metadata: {
    readonly created_at: string;
    readonly query_id: string;
    readonly system_prompt_used: boolean;
    readonly total_messages: number;
    /** The simulated user ended it (`end_reason: user_stop`). */
    readonly conversation_ended: boolean;
    /** What ended it: `user_stop`, `max_turns`, or with `stop_policy: personagym` `target_turns` / `feedback_draw`. */
    readonly end_reason: string;
    readonly distractor_applied: boolean;
    readonly distractor_type: string | null;
    readonly noisy_versions: unknown;
    readonly assistant_model: ModelRef;
    readonly user_model: ModelRef;
    /** With `stop_policy: personagym` only: the hidden target the dice used. */
    readonly target_turns?: number;
    /** Simulator replies the guards rejected, by reason. */
    readonly guard: Readonly<Record<string, number>>;
    readonly usage: Readonly<Record<string, UsageEntry>>;
    readonly [key: string]: unknown;
  };
}

/** A task that did not become an interaction, as written to failures.ndjson. */
export interface Failure {
  readonly persona_id: string;
  readonly query_id: string;
  readonly interaction_id: string;
  readonly attempts: number;
  readonly error: { readonly kind: string; readonly message: string };
  readonly assistant_model: ModelRef;
  readonly user_model: ModelRef;
  readonly time: string;
  readonly usage: Readonly<Record<string, UsageEntry>>;
  /** The supplement round that generated the task, when one did. */
  readonly supplement_round?: number;
}

/** A simulator reply the guards rejected, as written to guard-rejections.ndjson. */
export interface Rejection {
  readonly interaction_id: string;
  readonly persona_id: string;
  readonly query_id: string;
  /** Assistant answers before the reply (the turn it would have followed). */
  readonly turn: number;
  /** 0 for the first reply of that turn, 1 for its first re-ask, ... */
  readonly attempt: number;
  readonly reason: string;
  /** The reply as the model wrote it. */
  readonly text: string;
  readonly time: string;
}

/** What comes out of the pipeline: exactly one per task, with the simulator replies its guards rejected. */
export type Outcome =
  /** `task` is what ran, for supplement rounds (a conversation the judge rejects is a miss, as a failure is). */
  | { readonly ok: true; readonly interaction: Interaction; readonly rejections?: readonly Rejection[]; readonly task?: Task }
  /** `task` is what failed, for supplement rounds; sinks write `failure` only. */
  | { readonly ok: false; readonly failure: Failure; readonly task?: Task; readonly rejections?: readonly Rejection[] };

/**
 * The part of an id after its prefix (`interaction_`, `sample_`) for a persona × query: `<persona_id>_<query_id>`
 * when that reads back one way only, which is when the query id holds no `_` and neither id holds `%`
 * (the last `_` is then the separator). Otherwise both are percent-escaped (`%` → `%25`, and in the query id
 * `_` → `%5F`), so the query part still holds no `_` and the whole holds a `%`, which a readable id never
 * does: `p_1` × `q` is `p_1_q`, `p` × `1_q` is `p_1%5Fq`. Injective over (persona_id, query_id).
 */
export function pairKey(personaId: string, queryId: string): string {
  if (!queryId.includes('_') && !queryId.includes('%') && !personaId.includes('%')) return `${personaId}_${queryId}`;
  return `${personaId.replaceAll('%', '%25')}_${queryId.replaceAll('%', '%25').replaceAll('_', '%5F')}`;
}

/**
 * `interaction_<persona_id>_<query_id>`, PersonaGym's shape, where unambiguous (see {@link pairKey}):
 * deterministic and injective, so resume and dedupe never take one task for another.
 *
 * @example
 * interactionId('persona_001', 'q1') // 'interaction_persona_001_q1'
 * interactionId('p', '1_q')          // 'interaction_p_1%5Fq' (not the id of persona p_1, query q)
 */
export const interactionId = (personaId: string, queryId: string): string => `interaction_${pairKey(personaId, queryId)}`;

/**
 * An outcome the run's stop cut short (its call aborted): neither an interaction nor a failure. Sinks
 * write nothing for it, so a resume does the task.
 */
export const unfinished = (outcome: Outcome): boolean => !outcome.ok && outcome.failure.error.kind === 'aborted';

/** What the judge decided of an interaction (`metadata.quality`), as far as routing and counting need it. */
export interface Verdict {
  readonly verdict: 'accept' | 'reject';
  readonly reasons: readonly string[];
}

/** The judge's verdict on an interaction; undefined when it was not judged. */
export const verdictOf = (interaction: Interaction): Verdict | undefined => {
  const quality = interaction.metadata.quality as Partial<Verdict> | undefined;
  return quality?.verdict === 'accept' || quality?.verdict === 'reject' ? { verdict: quality.verdict, reasons: quality.reasons ?? [] } : undefined;
};

/** A conversation the judge rejected: written to rejected.ndjson, a miss for its persona as a failure is (supplement tops it up). */
export const judgedRejected = (outcome: Outcome): boolean => outcome.ok && verdictOf(outcome.interaction)?.verdict === 'reject';

/** Adds a call's tokens to a per-module usage record (mutates `into`). */
export function addUsage(into: Record<string, UsageEntry>, module: string, usage: TokenUsage): void {
  const previous = into[module] ?? { calls: 0, input_tokens: 0, output_tokens: 0 };
  into[module] = {
    calls: previous.calls + 1,
    input_tokens: previous.input_tokens + usage.input,
    output_tokens: previous.output_tokens + usage.output,
  };
}

/** A text to noise (`personaflow noise`): a text line, or a {"text": ...} line with its persona. */
export interface TextItem {
  readonly text: string;
  readonly persona: Features;
  /** `id` when the line has one, else the text itself: the same text gets the same noise for a seed. */
  readonly key: string;
  /** `file:LINE`, for messages. */
  readonly source: string;
}
