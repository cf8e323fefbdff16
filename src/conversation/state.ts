// What every conversation of a run shares, and what one conversation holds as it goes.
import type { ChatModel, RetryListener, UsageListener } from '../chat.js';
import type { Distractor, NoisedText } from '../distractor/distractor.js';
import type { ModelPool } from '../models/pool.js';
import type { PromptCall } from '../prompts/ask.js';
import type { StyleTransfer, StyleTransferResult } from '../queries/styleTransfer.js';
import type { StopPolicy } from '../config/schema.js';
import type { InteractionMessage, LockedTask, Rejection, UsageEntry } from '../types.js';

export interface UserSimulatorOptions {
  readonly model: ChatModel;
  readonly template: string;
  readonly temperature?: number | undefined;
  readonly maxCompletionTokens?: number | undefined;
  /** Who ends a conversation: the simulated user (`user`), or PersonaGym's dice as well (`personagym`). Default `user`. */
  readonly stopPolicy?: StopPolicy;
  /** With `personagym`: between min_turns and the target, the chance that the user answers at all. Default 0.85. */
  readonly feedbackProbability?: number | undefined;
}

/** Why a conversation ended, as `metadata.end_reason` records it. */
export type EndReason =
  /** The simulated user said it was done. */
  | 'user_stop'
  /** It reached max_turns. */
  | 'max_turns'
  /** `stop_policy: personagym`: it reached the task's hidden target turn count. */
  | 'target_turns'
  /** `stop_policy: personagym`: the feedback_probability draw said the user would not answer. */
  | 'feedback_draw';

/** What every conversation of a run shares: models, turn limits, retry budget, helpers and hooks. */
export interface ConversationSettings {
  /** Assistant models; each task talks to the one `lockModel` drew. */
  readonly pool: ModelPool;
  /** The assistant's system prompt, by pool entry (default: config/prompts/assistant.txt for all). */
  readonly assistantPrompts?: readonly string[];
  readonly user: UserSimulatorOptions;
  readonly seed: number;
  readonly minTurns: number;
  readonly maxTurns: number;
  /** Simulator replies the guards may reject in one turn before the task fails. Default 3. */
  readonly maxGuardRetries?: number;
  readonly stopToken?: string;
  /** Rewrites dataset queries in the persona's voice before the conversation (tasks without `adapted_query`). */
  readonly styleTransfer?: StyleTransfer | undefined;
  /** Noise for user turns (the initial query and follow-ups, as its `applyTo` says); none when absent. */
  readonly distractor?: Distractor | undefined;
  /** Called on every retried call (for statistics, and --verbose). */
  readonly onRetry?: RetryListener;
  /**
   * Called with the tokens of every billed call: answered calls (including those of tasks that later fail
   * or are cancelled) and failed attempts whose response carried usage.
   */
  readonly onUsage?: UsageListener;
  readonly now?: () => Date;
}

/** What a conversation's calls report: each retried attempt, each billed call. */
export interface CallHooks {
  readonly onRetry: RetryListener;
  readonly onUsage: UsageListener;
}

/** Makes the conversation's `call`: retried on its own, reporting to `hooks` (converse's retryingCall, lending its slot). */
export type CallMaker = (hooks: CallHooks) => PromptCall;

/** A conversation as it goes: the transcript and what is recorded about it. */
export interface State {
  readonly task: LockedTask;
  readonly messages: InteractionMessage[];
  readonly usage: Record<string, UsageEntry>;
  readonly guard: Record<string, number>;
  /** Assistant answers so far (PersonaGym's `num_turns`). */
  turns: number;
  /** Attempts of the call in progress, for the failure record. */
  attempts: number;
  /** Why it ended, once it has. */
  end: EndReason | undefined;
  /** Simulator replies the guards rejected, with their text, for guard-rejections.ndjson. */
  readonly rejections: Rejection[];
  /** What the distractor did to the initial query and to each follow-up. */
  initialNoise: NoisedText | undefined;
  /** Style transfer's result, when it was attempted. */
  style: StyleTransferResult | undefined;
  /** The persona as the conversation sees it: with style transfer's domain and scenario (PersonaGym's query-adjusted features). */
  features: LockedTask['personaFeatures'];
  /** The clean first message: the input's, or style transfer's. */
  initialQuery: string;
  readonly followupNoise: Array<{ readonly turn: number; readonly noised: NoisedText }>;
}
