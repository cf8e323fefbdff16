// converse: run each locked task's conversation turn by turn, with bounded concurrency and one outcome per task.
import type { OperatorFunction, SchedulerLike } from 'rxjs';
import { conversation } from '../conversation/conversation.js';
import type { ConversationSettings } from '../conversation/state.js';
import type { LockedTask, Outcome } from '../types.js';
import { mergeMapLending } from './mergeMapLending.js';
import type { Stopping } from '../limits/stop.js';
import { retryingCall } from './retryingCall.js';

export type { UserSimulatorOptions } from '../conversation/state.js';

export interface ConverseOptions extends ConversationSettings {
  /**
   * Conversations working at once (PersonaGym's `max_workers`). One sitting out a Retry-After or a backoff
   * lends its slot meanwhile, so this many are calling or computing while others wait.
   */
  readonly concurrency: number;
  /** Retries per model call and base delay (PersonaGym's `max_retries`, `retry_delay`). */
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  readonly scheduler?: SchedulerLike;
  /** The run stopping: waits past its deadline end at once, their conversations with an `aborted` failure. */
  readonly stopping?: Stopping;
}

const validate = (options: ConverseOptions): void => {
  const { minTurns, maxTurns, concurrency } = options;
  if (!Number.isInteger(minTurns) || minTurns < 1) throw new TypeError(`Expected \`minTurns\` to be a positive integer, got \`${String(minTurns)}\``);
  if (!Number.isInteger(maxTurns) || maxTurns < minTurns) throw new TypeError(`Expected \`maxTurns\` to be an integer ≥ minTurns (${minTurns}), got \`${String(maxTurns)}\``);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be a positive integer, got \`${String(concurrency)}\``);
  const p = options.user.feedbackProbability;
  if (p !== undefined && !(p >= 0 && p <= 1)) throw new TypeError(`Expected \`feedbackProbability\` to be a number in [0, 1], got \`${String(p)}\``);
};

/**
 * Simulates one conversation per task and emits exactly one outcome per task: the Interaction, or a
 * failure record when a call still fails after its retries or the simulator guards give up. Turn 1 is the
 * task's initial query; then the locked assistant answers and the user simulator follows up or stops.
 * Before `minTurns` the user always continues (a stop is regenerated); at the target or `maxTurns` the
 * conversation ends; in between the user answers with `feedbackProbability` and may still stop.
 * Retries happen per call, so a retry never re-bills turns that already succeeded. An authentication
 * error, or an endpoint still unreachable after its retries, is not a task failure: it errors the stream
 * with a FatalError so the run stops at once.
 *
 * ```
 * tasks:    --a--b--c----------|       (concurrency 2)
 * outcomes: ---------B----A--C-|       (completion order)
 * ```
 *
 * @example
 * tasks$.pipe(lockModel(pool, seed), converse({ pool, user, seed, minTurns: 2, maxTurns: 5, concurrency: 16, maxRetries: 3, retryDelayMs: 2000 }))
 *
 * @param options models, turn limits, concurrency and retry budget.
 * @returns an operator from locked tasks to outcomes, in completion order.
 */
export function converse(options: ConverseOptions): OperatorFunction<LockedTask, Outcome> {
  validate(options);
  return mergeMapLending(
    (task: LockedTask, lend) =>
      conversation(task, options, (hooks) => retryingCall({ maxRetries: options.maxRetries, retryDelayMs: options.retryDelayMs, scheduler: options.scheduler, stopping: options.stopping, lend, ...hooks })),
    options.concurrency,
  );
}
