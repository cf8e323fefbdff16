// retryWithDelay: re-subscribe to a failed cold call after an exponential, jittered delay that honours Retry-After.
import { Observable, asyncScheduler, finalize, retry, throwError, timer, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';
import { ModelError, isTransient } from '../errors.js';
import { LONG_RETRY_AFTER_MS } from '../limits/pause.js';
import type { Stopping } from '../limits/stop.js';

export interface RetryWithDelayOptions {
  /** Retries after the first attempt (PersonaGym's `max_retries`); 0 disables retrying. */
  readonly maxRetries: number;
  /** Base delay in milliseconds (PersonaGym's `retry_delay`, in seconds there); doubles on each retry. */
  readonly delayMs: number;
  /** Upper bound for the computed backoff (not for Retry-After). Default 60 000. */
  readonly maxDelayMs?: number;
  /** Which errors are worth another attempt. Default: transient ModelErrors (429, 5xx, timeouts, resets, malformed bodies). */
  readonly isRetryable?: (error: unknown) => boolean;
  /** Source of jitter in [0, 1). Default Math.random (jitter changes timing only, never results). */
  readonly random?: () => number;
  /** Called before each wait, e.g. to count retries. */
  readonly onRetry?: (error: unknown, retry: number, delayMs: number) => void;
  /** Scheduler for the waits (virtual time in marble tests). */
  readonly scheduler?: SchedulerLike;
  /**
   * Called as each wait starts; what it returns is called when the wait ends or is cancelled. `converse`
   * passes its slot's `lend` (mergeMapLending), so a conversation sitting out a Retry-After or a backoff
   * lets another one use its slot meanwhile.
   */
  readonly lend?: () => () => void;
  /**
   * The run stopping: a wait that would end after its deadline (set when the stop comes, also during
   * the wait) errors at once with an `aborted` ModelError instead of holding the run past its grace.
   */
  readonly stopping?: Stopping;
}

/** `timer(wait)`, ended early with an aborted ModelError when the run stops and the wait would outlast its deadline. */
function stoppableTimer(wait: number, scheduler: SchedulerLike, stopping: Stopping | undefined): Observable<0> {
  if (stopping === undefined) return timer(wait, scheduler);
  const end = scheduler.now() + wait;
  return new Observable<0>((subscriber) => {
    const check = (): boolean => {
      if (stopping.deadline === undefined || end <= stopping.deadline) return false;
      subscriber.error(new ModelError('aborted', `the run is stopping, and this retry would wait ${Math.ceil(wait / 1000)} s, past the grace period`));
      return true;
    };
    if (check()) return undefined;
    const subscription = timer(wait, scheduler).subscribe(subscriber);
    const onStop = (): void => {
      if (check()) subscription.unsubscribe();
    };
    stopping.signal.addEventListener('abort', onStop, { once: true });
    return () => {
      subscription.unsubscribe();
      stopping.signal.removeEventListener('abort', onStop);
    };
  });
}

/**
 * The wait before retry number `retry` (1-based). A Retry-After is taken exactly, as the openai SDK
 * takes it: a lone refused call comes back when it was told to, and while it waits the limiter keeps its
 * slot (a refused call's slot is what spaces the calls a saturated window refused). A hint of
 * LONG_RETRY_AFTER_MS or more pauses the whole model; every caller told that comes back at about the same
 * moment, so it gets up to 10% more (at most 1 s) to spread them. Without a hint, "equal jitter"
 * exponential backoff: half of `delayMs · 2^(retry-1)` fixed, half random, capped at `maxDelayMs`.
 */
export function retryDelay(error: unknown, retry: number, options: Pick<RetryWithDelayOptions, 'delayMs' | 'maxDelayMs'>, random: () => number): number {
  const hinted = error instanceof ModelError ? error.retryAfterMs : undefined;
  if (hinted !== undefined) return hinted < LONG_RETRY_AFTER_MS ? hinted : Math.round(hinted + random() * Math.min(1000, hinted * 0.1));
  const ceiling = Math.min(options.maxDelayMs ?? 60_000, options.delayMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Retries a cold source on transient errors, waiting between attempts; permanent errors and the error of
 * the last attempt pass through unchanged. The source must be cold (`defer`, `callModel`) so that each
 * retry really calls again.
 *
 * ```
 * source:  --#            (429, Retry-After 3)
 *          ---#           (500)
 *          --a|
 * result:  --- wait 3 --- wait ~2·delay --- a|
 * ```
 *
 * @example
 * callModel(model, request).pipe(retryWithDelay({ maxRetries: 3, delayMs: 2000 }))
 * // emits the first successful response, or errors after 4 failed attempts
 *
 * @param options retry budget, base delay and hooks.
 * @returns an operator mirroring the source, with transient failures retried.
 */
export function retryWithDelay<T>(options: RetryWithDelayOptions): MonoTypeOperatorFunction<T> {
  const { maxRetries, delayMs } = options;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new TypeError(`Expected \`maxRetries\` to be a non-negative integer, got \`${String(maxRetries)}\` (${typeof maxRetries})`);
  }
  if (!Number.isFinite(delayMs) || delayMs < 0) {
    throw new TypeError(`Expected \`delayMs\` to be a non-negative number, got \`${String(delayMs)}\` (${typeof delayMs})`);
  }
  const retryable = options.isRetryable ?? isTransient;
  const random = options.random ?? Math.random;
  const scheduler = options.scheduler ?? asyncScheduler;
  return retry<T>({
    count: maxRetries,
    delay: (error: unknown, retryCount: number) => {
      if (!retryable(error)) return throwError(() => error);
      const wait = retryDelay(error, retryCount, options, random);
      options.onRetry?.(error, retryCount, wait);
      const reclaim = options.lend?.();
      const waited = stoppableTimer(wait, scheduler, options.stopping);
      return reclaim === undefined ? waited : waited.pipe(finalize(reclaim));
    },
  });
}
