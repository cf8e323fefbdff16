// ModelLimiter: the line of calls waiting for one model, let through by its buckets, concurrency, pause and breaker.
import { Observable, asyncScheduler, type SchedulerLike, type Subscription } from 'rxjs';
import { FatalError, ModelError } from '../errors.js';
import type { RateLimitInfo } from '../chat.js';
import { CircuitBreaker, type BreakerState } from './breaker.js';
import { RateBucket } from './bucket.js';
import { AdaptiveConcurrency, SATURATED } from './concurrency.js';
import { LONG_RETRY_AFTER_MS, ModelPause, type PauseReason } from './pause.js';

export interface LimiterOptions {
  /** Requests per minute the provider allows this model (unknown: no request bucket). */
  readonly rpm?: number | undefined;
  /** Tokens per minute (input + output) the provider allows (unknown: no token bucket). */
  readonly tpm?: number | undefined;
  /** Calls in flight at most (the run's --concurrency); the adaptive limit never goes above it. */
  readonly maxConcurrency: number;
  /** Failures in a row (429, 5xx, timeouts), with no success for a cool-down's length, that open the breaker. Default 8. */
  readonly breakerThreshold?: number;
  /** First pause when the breaker opens, doubled on each failed probe up to 60 s. Default 5 s. */
  readonly breakerCooldownMs?: number;
  /** The breaker open this long without a successful probe ends the run. Default 120 s. */
  readonly breakerGiveUpMs?: number;
  /**
   * The longest wait a server may ask for (Retry-After, x-ratelimit-reset-*), personaflow.max_wait_s.
   * A refusal asking for more fails its call (see `limited`); a longer reset on an answer is ignored.
   * Default MAX_WAIT_MS.
   */
  readonly maxWaitMs?: number;
  /** Told, in a sentence, when calls wait WAIT_NOTICE_MS or more and until when. */
  readonly onNotice?: (message: string) => void;
  /** Told, in a sentence, when a header is not believed and ignored (default: onNotice). */
  readonly onWarning?: (message: string) => void;
  /** Learn from x-ratelimit-* headers: buckets for the limits they announce, a pause at `remaining: 0` (default true; false when SharedLimits learn them for every process). */
  readonly learnLimits?: boolean;
  readonly scheduler?: SchedulerLike;
}

/** Default longest wait honoured: 10 minutes (OpenAI's reset headers for per-day limits say a few minutes). */
export const MAX_WAIT_MS = 600_000;

/** Waits at least this long are said on stderr (a lone `Retry-After: 1` is not worth a line). */
export const WAIT_NOTICE_MS = 5_000;

/** `45 s`, `6 min 0 s`, `2 h 5 min`: a wait as a person reads it. */
export function waitText(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A moment as `2026-05-01T14:03:12Z` (UTC, to the second). */
const clock = (at: number): string => `${new Date(at).toISOString().slice(0, 19)}Z`;

/** Share of a configured limit the buckets aim at. */
export const SAFETY = 0.95;

/** What a finished call tells the limiter. */
export interface CallResult {
  readonly ok: boolean;
  /** A 429, or a 503/529 "overloaded": the concurrency limit shrinks (and the breaker counts it). */
  readonly overloaded?: boolean;
  /** Any other sign of a failing model (500, 502, 504, timeouts): the breaker counts it, the limit stays. */
  readonly failing?: boolean;
  readonly retryAfterMs?: number | undefined;
  /** Tokens the call really used, to correct the estimate taken from the bucket. */
  readonly tokens?: number | undefined;
  /** The provider's x-ratelimit-* headers (on an answer or a refusal), when it sent them. */
  readonly rateLimit?: RateLimitInfo | undefined;
}

export interface Permit {
  release(result: CallResult): void;
}

/** A snapshot for progress displays and tests. */
export interface LimiterState {
  readonly limit: number;
  readonly inFlight: number;
  readonly waiting: number;
  readonly pausedForMs: number;
  /** What paused every call, while it lasts (the breaker's pause is `breaker: 'open'`). */
  readonly pausedBy: PauseReason | undefined;
  readonly breaker: BreakerState;
  readonly throttled: boolean;
}

interface Waiter {
  readonly tokens: number;
  readonly grant: (permit: Permit) => void;
  readonly fail: (error: FatalError | ModelError) => void;
}

/**
 * Admission control for one model (provider + model + key). A call waits in line until (1) fewer calls
 * are in flight than the adaptive limit (`AdaptiveConcurrency`), (2) the request and token buckets allow
 * it (`RateBucket`, for limits configured or learnt from x-ratelimit headers), (3) the model is not
 * paused (`ModelPause`: only on evidence that the whole model is limited), and (4) the circuit breaker is
 * not open (`CircuitBreaker`); a model that stays down past its give-up time fails the waiting calls with
 * a FatalError. A lone refused call is not a reason to stop the others: it comes back after its
 * Retry-After, and meanwhile its slot serves another call.
 */
export class ModelLimiter {
  readonly #scheduler: SchedulerLike;
  #requests: RateBucket | undefined;
  #tokens: RateBucket | undefined;
  readonly #concurrency: AdaptiveConcurrency;
  readonly #pause = new ModelPause();
  readonly #breaker: CircuitBreaker;
  readonly #waiters: Waiter[] = [];
  #timer: Subscription | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #dead: FatalError | undefined;
  /** Once the run is stopping: waits that would end after this fail at once (`stop`). */
  #deadline: number | undefined;
  /** Until when the calls' waiting has been said on stderr: a wait is said once, not per call. */
  #saidUntil = 0;
  readonly #onNotice: ((message: string) => void) | undefined;
  readonly #onWarning: ((message: string) => void) | undefined;
  /** The longest wait honoured (personaflow.max_wait_s). */
  readonly maxWaitMs: number;
  readonly #learnLimits: boolean;

  constructor(
    readonly name: string,
    options: LimiterOptions,
  ) {
    this.#concurrency = new AdaptiveConcurrency(options.maxConcurrency);
    this.#scheduler = options.scheduler ?? asyncScheduler;
    this.#learnLimits = options.learnLimits ?? true;
    const now = this.#scheduler.now();
    // 95% of a configured limit: the provider counts arrivals, and sends that leave exactly on the limit
    // arrive with jitter, which earns 429s at the edge of its window.
    this.#requests = options.rpm === undefined ? undefined : new RateBucket(options.rpm * SAFETY, now);
    this.#tokens = options.tpm === undefined ? undefined : new RateBucket(options.tpm * SAFETY, now);
    this.#breaker = new CircuitBreaker({ threshold: options.breakerThreshold, cooldownMs: options.breakerCooldownMs, giveUpMs: options.breakerGiveUpMs }, now);
    this.maxWaitMs = options.maxWaitMs ?? MAX_WAIT_MS;
    this.#onNotice = options.onNotice;
    this.#onWarning = options.onWarning ?? options.onNotice;
  }

  /** Says once that calls wait for `what` until `until`, when that is WAIT_NOTICE_MS or more from now and later than already said. */
  #say(what: string, until: number, now: number): void {
    if (until - now < WAIT_NOTICE_MS || until <= this.#saidUntil) return;
    this.#saidUntil = until;
    this.#onNotice?.(`${this.name}: waiting ${waitText(until - now)}, until ${clock(until)}: ${what}`);
  }

  get state(): LimiterState {
    const now = this.#scheduler.now();
    const paused = Math.max(this.#pause.until, this.#breaker.openUntil);
    return {
      limit: this.#concurrency.limit,
      inFlight: this.#concurrency.inFlight,
      waiting: this.#waiters.length,
      pausedForMs: Math.max(0, paused - now),
      pausedBy: this.#pause.reason(now),
      breaker: this.#breaker.state,
      throttled: this.#waiters.length > 0 && (this.#concurrency.busy(now) >= this.#concurrency.limit || paused > now || this.#breaker.state !== 'closed'),
    };
  }

  /**
   * A permit at once when the call may go now and nobody is waiting (the common case, without the
   * allocation of an Observable), else undefined: then wait in line with `acquire`.
   */
  tryAcquire(estimatedTokens: number): Permit | undefined {
    if (this.#waiters.length > 0 || this.#dead !== undefined || this.#breaker.state !== 'closed') return undefined;
    const now = this.#scheduler.now();
    if (this.#concurrency.busy(now) >= this.#concurrency.limit || now < this.#pause.until) return undefined;
    if ((this.#requests?.waitFor(1, now) ?? 0) > 0 || (this.#tokens?.waitFor(estimatedTokens, now) ?? 0) > 0) return undefined;
    return this.#grant(estimatedTokens, now);
  }

  /** A permit for one call, when the call may go; unsubscribing before then gives up the place in line. */
  acquire(estimatedTokens: number): Observable<Permit> {
    return new Observable<Permit>((subscriber) => {
      if (this.#dead !== undefined) {
        subscriber.error(this.#dead);
        return undefined;
      }
      const waiter: Waiter = {
        tokens: estimatedTokens,
        grant: (permit) => {
          subscriber.next(permit);
          subscriber.complete();
        },
        fail: (error) => subscriber.error(error),
      };
      this.#waiters.push(waiter);
      this.#pump();
      return () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        this.#idle();
      };
    });
  }

  /**
   * The run is stopping and must be done by `deadline`: calls waiting for a pause, a reset, the breaker
   * or the buckets past it fail now with an `aborted` ModelError, and so do later calls that would.
   */
  stop(deadline: number): void {
    this.#deadline = deadline;
    this.#pump();
  }

  /** With nobody waiting, no timer is left to hold the process open (a pause of minutes, say). */
  #idle(): void {
    if (this.#waiters.length > 0 || this.#timer === undefined) return;
    this.#timer.unsubscribe();
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #grant(tokens: number, now: number): Permit {
    this.#requests?.take(1, now);
    this.#tokens?.take(tokens, now);
    this.#concurrency.start();
    return this.#permit(tokens);
  }

  /** Lets waiters through, in order, while everything allows; otherwise wakes up when it will. */
  #pump(): void {
    const now = this.#scheduler.now();
    while (this.#waiters.length > 0) {
      const dead = this.#breaker.dead(now);
      if (dead !== undefined) {
        this.#dead = new FatalError(`${this.name}: every call failed for ${Math.round(dead / 1000)} s (429s, 5xx or timeouts) and probes did not get through; stopping`);
        for (const waiter of this.#waiters.splice(0)) waiter.fail(this.#dead);
        return;
      }
      const allowed = this.#breaker.allowed(now);
      if (allowed === 0) {
        this.#say('calls keep failing (429s, 5xx or timeouts), so the circuit breaker is open; then one probe', this.#breaker.openUntil, now);
        return this.#wake(this.#breaker.openUntil);
      }
      if (now < this.#pause.until) return this.#wake(this.#pause.until);
      // Half-open: one probe at a time.
      const limit = allowed ?? this.#concurrency.limit;
      if (this.#concurrency.busy(now) >= limit) {
        // Only kept slots stand in the way: come back when the first of them frees.
        if (this.#concurrency.inFlight < limit) this.#wake(this.#concurrency.nextFree);
        return;
      }
      const next = this.#waiters[0] as Waiter;
      const wait = Math.max(this.#requests?.waitFor(1, now) ?? 0, this.#tokens?.waitFor(next.tokens, now) ?? 0);
      if (wait > 0) return this.#wake(now + wait);
      this.#waiters.shift();
      next.grant(this.#grant(next.tokens, now));
    }
    this.#idle();
  }

  #permit(estimated: number): Permit {
    let released = false;
    return {
      release: (result) => {
        if (released) return;
        released = true;
        const now = this.#scheduler.now();
        const refused = result.overloaded === true;
        const hint = result.retryAfterMs;
        this.#pause.completed(now, refused, hint);
        if (refused && hint !== undefined) {
          const reason = this.#pause.reason(now);
          if (reason !== undefined) this.#say(reason === 'retry_after' ? `a refusal's Retry-After, which pauses every call to this model` : `most recent calls were refused; every call pauses for the last Retry-After`, this.#pause.until, now);
          else this.#say(`a refused call sits out its Retry-After (the others go on)`, now + hint, now);
        }
        // While refusals are many, a refused call keeps its slot until its Retry-After (see
        // AdaptiveConcurrency). A sparse one does not: its caller lends its conversation slot while it
        // waits, and the call of the conversation that takes that slot needs this one.
        const saturated = this.#pause.refusedShare > SATURATED;
        const hold = refused && saturated && hint !== undefined && hint > 0 && hint < LONG_RETRY_AFTER_MS ? now + hint : undefined;
        this.#concurrency.finish(hold);
        if (result.rateLimit !== undefined) this.#learn(result.rateLimit, now);
        if (result.tokens !== undefined) this.#tokens?.adjust(result.tokens - estimated, now);
        if (result.ok) {
          this.#breaker.success(now);
          this.#concurrency.record(false);
        } else if (refused || result.failing === true) {
          if (refused) this.#concurrency.record(true);
          this.#breaker.failure(now);
        }
        this.#pump();
      },
    };
  }

  /**
   * x-ratelimit-* headers: a limit not configured becomes a bucket (aimed at 95% like a configured one);
   * nothing remaining pauses until the reset. A reset over maxWaitMs is not believed (a week, `100h`): it is
   * ignored, and said once.
   */
  #learn(info: RateLimitInfo, now: number): void {
    if (!this.#learnLimits) return;
    if (this.#requests === undefined && info.limitRequests !== undefined && info.limitRequests > 0) this.#requests = new RateBucket(info.limitRequests * SAFETY, now);
    if (this.#tokens === undefined && info.limitTokens !== undefined && info.limitTokens > 0) this.#tokens = new RateBucket(info.limitTokens * SAFETY, now);
    const absurd = (ms: number | undefined): boolean => ms !== undefined && ms > this.maxWaitMs;
    if (absurd(info.resetRequestsMs) || absurd(info.resetTokensMs)) {
      if (!this.#saidAbsurd) this.#onWarning?.(`${this.name}: ignoring an x-ratelimit-reset header of ${waitText(Math.max(info.resetRequestsMs ?? 0, info.resetTokensMs ?? 0))}, over personaflow.max_wait_s (${waitText(this.maxWaitMs)})`);
      this.#saidAbsurd = true;
    }
    const before = this.#pause.until;
    this.#pause.learn({ ...info, resetRequestsMs: absurd(info.resetRequestsMs) ? undefined : info.resetRequestsMs, resetTokensMs: absurd(info.resetTokensMs) ? undefined : info.resetTokensMs }, now);
    if (this.#pause.until > before) this.#say('x-ratelimit-remaining is 0, so every call to this model waits for the reset the headers name', this.#pause.until, now);
  }

  #saidAbsurd = false;

  /** Runs `#pump` at `at` (one timer, the earliest needed); past a stopping run's deadline, fails the waiters instead. */
  #wake(at: number): void {
    if (this.#deadline !== undefined && at > this.#deadline) {
      const error = new ModelError('aborted', `${this.name}: the run is stopping, and this call would wait until ${clock(at)}, past the grace period`);
      for (const waiter of this.#waiters.splice(0)) waiter.fail(error);
      this.#idle();
      return;
    }
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#timer?.unsubscribe();
    this.#timerAt = at;
    this.#timer = this.#scheduler.schedule(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#pump();
    }, Math.max(0, at - this.#scheduler.now()));
  }
}
