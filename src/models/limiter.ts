// Per-model admission: rate limits (token buckets), adaptive concurrency, a shared Retry-After pause, a circuit breaker.
import { Observable, asyncScheduler, type SchedulerLike, type Subscription } from 'rxjs';
import { FatalError, ModelError } from '../errors.js';
import type { ChatModel, ChatRequest, ChatResponse, RateLimitInfo } from './types.js';

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
  readonly scheduler?: SchedulerLike;
}

/** The share of refused (overloaded) calls in a window above which the adaptive limit halves. */
export const SATURATED = 0.25;
/** The share at or below which it grows. */
export const OVERLOAD_TARGET = 0.02;

/** Share of a configured limit the buckets aim at. */
export const SAFETY = 0.95;

/**
 * A Retry-After at least this long pauses every call to the model (the provider says: back off, e.g. a
 * quota that resets); a shorter one (a window that reopens in a few hundred ms) keeps the refused call's
 * slot until then instead, since pausing everyone for each of those would leave the limit mostly unused
 * when 429s come now and then, while a saturated limit refuses many calls and so holds many slots.
 */
export const SHARED_PAUSE_MIN_MS = 1000;

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
  /** The provider's x-ratelimit-* headers, when it sent them. */
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
  readonly breaker: 'closed' | 'open' | 'half-open';
  readonly throttled: boolean;
}

interface Waiter {
  readonly tokens: number;
  readonly grant: (permit: Permit) => void;
  readonly fail: (error: FatalError) => void;
}

/**
 * A token bucket for a per-minute limit, refilled continuously at `perMinute / 60` a second and holding
 * at most one second's worth: providers enforce per-minute limits over short windows (60,000 a minute
 * as 1,000 a second), so a full minute's burst would earn 429s. `take` may drive it below zero (a call
 * bigger than a second's worth, or one that used more than estimated); the next call waits for the refill.
 */
export class TokenBucket {
  readonly capacity: number;
  #level: number;
  #at: number;
  constructor(
    readonly perMinute: number,
    now: number,
  ) {
    this.capacity = perMinute / 60;
    // One call may go at once; no burst beyond that, or the first second would go over the limit.
    this.#level = Math.min(1, this.capacity);
    this.#at = now;
  }

  #refill(now: number): void {
    this.#level = Math.min(this.capacity, this.#level + ((now - this.#at) * this.perMinute) / 60_000);
    this.#at = now;
  }

  /** Milliseconds until `amount` is available (0: now). */
  waitFor(amount: number, now: number): number {
    this.#refill(now);
    const need = Math.min(amount, this.capacity) - this.#level;
    // A rounding crumb left after waiting exactly the time asked for is not a reason to wait again.
    return need <= 1e-6 ? 0 : Math.ceil((need * 60_000) / this.perMinute);
  }

  take(amount: number, now: number): void {
    this.#refill(now);
    this.#level -= amount;
  }

  /** Gives back (or takes more) after the real cost is known. */
  adjust(delta: number, now: number): void {
    this.#refill(now);
    this.#level = Math.min(this.capacity, this.#level - delta);
  }
}

/**
 * Admission control for one model (provider + model + key). A call waits until (1) fewer calls are in
 * flight than the adaptive limit, (2) the request and token buckets allow it, (3) no Retry-After pause
 * is running, and (4) the circuit breaker is not open. The limit starts at `maxConcurrency` and is
 * judged once per window of completions (see `#adapt`): halved when too many calls were refused with a
 * 429 or a 503/529, grown by one (additive increase) when almost none were; other failures (500, timeouts) count only towards the breaker.
 * A long Retry-After (≥ 1 s) from any call pauses new calls for all, so retries do not arrive as a herd. After
 * `breakerThreshold` failures in a row and no success for a cool-down's length the breaker opens: no calls for a cool-down, then one
 * probe; a model that stays down past `breakerGiveUpMs` fails the waiting calls with a FatalError.
 */
export class ModelLimiter {
  readonly #options: LimiterOptions;
  readonly #scheduler: SchedulerLike;
  #requests: TokenBucket | undefined;
  #tokens: TokenBucket | undefined;
  readonly #waiters: Waiter[] = [];
  #limit: number;
  /** Completions and overloads (429, 503, 529) since the limit last changed. */
  #windowCalls = 0;
  #windowOverloads = 0;

  #inFlight = 0;
  /** When the slots kept by 429s with a short Retry-After come free (see `release`). */
  #held: number[] = [];
  #pausedUntil = 0;
  #timer: Subscription | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #failuresInARow = 0;
  #lastSuccess: number;
  #breaker: 'closed' | 'open' | 'half-open' = 'closed';
  #openSince = 0;
  #cooldown: number;
  #dead: FatalError | undefined;

  constructor(
    readonly name: string,
    options: LimiterOptions,
  ) {
    if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < 1) throw new TypeError(`Expected \`maxConcurrency\` to be a positive integer, got \`${String(options.maxConcurrency)}\``);
    this.#options = options;
    this.#scheduler = options.scheduler ?? asyncScheduler;
    const now = this.#scheduler.now();
    // 95% of a configured limit: the provider counts arrivals, and sends that leave exactly on the limit
    // arrive with jitter, which earns 429s at the edge of its window.
    this.#requests = options.rpm === undefined ? undefined : new TokenBucket(options.rpm * SAFETY, now);
    this.#tokens = options.tpm === undefined ? undefined : new TokenBucket(options.tpm * SAFETY, now);
    this.#limit = options.maxConcurrency;
    this.#cooldown = options.breakerCooldownMs ?? 5000;
    this.#lastSuccess = now;
  }

  /** Calls in flight plus slots still kept by 429s at `now`. */
  #busy(now: number): number {
    if (this.#held.length > 0) this.#held = this.#held.filter((until) => until > now);
    return this.#inFlight + this.#held.length;
  }

  get state(): LimiterState {
    const now = this.#scheduler.now();
    return {
      limit: this.#limit,
      inFlight: this.#inFlight,
      waiting: this.#waiters.length,
      pausedForMs: Math.max(0, this.#pausedUntil - now),
      breaker: this.#breaker,
      throttled: this.#waiters.length > 0 && (this.#busy(now) >= this.#limit || this.#pausedUntil > now || this.#breaker !== 'closed'),
    };
  }

  /**
   * A permit at once when the call may go now and nobody is waiting (the common case, without the
   * allocation of an Observable), else undefined: then wait in line with `acquire`.
   */
  tryAcquire(estimatedTokens: number): Permit | undefined {
    if (this.#waiters.length > 0 || this.#dead !== undefined || this.#breaker !== 'closed') return undefined;
    const now = this.#scheduler.now();
    if (this.#busy(now) >= Math.floor(this.#limit) || now < this.#pausedUntil) return undefined;
    if ((this.#requests?.waitFor(1, now) ?? 0) > 0 || (this.#tokens?.waitFor(estimatedTokens, now) ?? 0) > 0) return undefined;
    this.#requests?.take(1, now);
    this.#tokens?.take(estimatedTokens, now);
    this.#inFlight += 1;
    return this.#permit(estimatedTokens);
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
      };
    });
  }

  #pump(): void {
    const now = this.#scheduler.now();
    while (this.#waiters.length > 0) {
      if (this.#breaker === 'open') {
        const giveUp = this.#options.breakerGiveUpMs ?? 120_000;
        if (now - this.#openSince >= giveUp) {
          this.#dead = new FatalError(`${this.name}: every call failed for ${Math.round((now - this.#openSince) / 1000)} s (429s, 5xx or timeouts) and probes did not get through; stopping`);
          for (const waiter of this.#waiters.splice(0)) waiter.fail(this.#dead);
          return;
        }
        if (now < this.#pausedUntil) break;
        this.#breaker = 'half-open';
      }
      // Half-open: one probe at a time.
      const limit = this.#breaker === 'half-open' ? 1 : Math.floor(this.#limit);
      if (this.#busy(now) >= limit || now < this.#pausedUntil) {
        // Only kept slots stand in the way: come back when the first of them frees.
        if (this.#inFlight < limit && now >= this.#pausedUntil) this.#wake(Math.min(...this.#held));
        break;
      }
      const next = this.#waiters[0] as Waiter;
      const wait = Math.max(this.#requests?.waitFor(1, now) ?? 0, this.#tokens?.waitFor(next.tokens, now) ?? 0);
      if (wait > 0) {
        this.#wake(now + wait);
        return;
      }
      this.#waiters.shift();
      this.#requests?.take(1, now);
      this.#tokens?.take(next.tokens, now);
      this.#inFlight += 1;
      next.grant(this.#permit(next.tokens));
    }
    if (this.#waiters.length > 0 && this.#pausedUntil > now) this.#wake(this.#pausedUntil);
  }

  #permit(estimated: number): Permit {
    let released = false;
    return {
      release: (result) => {
        if (released) return;
        released = true;
        const now = this.#scheduler.now();
        // A 429 with a short Retry-After keeps its slot until then, as if the call were still in flight:
        // the caller comes back after that wait, and in the meantime the slot does not go to the next
        // caller in line, which would only be refused too (an instant 429 would otherwise let a whole
        // queue through to be refused in a few milliseconds and all come back at the same instant).
        const hold = result.overloaded === true && result.retryAfterMs !== undefined && result.retryAfterMs > 0 && result.retryAfterMs < SHARED_PAUSE_MIN_MS ? result.retryAfterMs : 0;
        // A timestamp, not a timer: a run whose last call got a 429 ends without waiting it out.
        this.#inFlight -= 1;
        if (hold > 0) this.#held.push(now + hold);
        if (result.rateLimit !== undefined) this.#learn(result.rateLimit, now);
        if (result.tokens !== undefined) this.#tokens?.adjust(result.tokens - estimated, now);
        if (result.retryAfterMs !== undefined && result.retryAfterMs >= SHARED_PAUSE_MIN_MS) this.#pausedUntil = Math.max(this.#pausedUntil, now + result.retryAfterMs);
        if (result.ok) {
          this.#failuresInARow = 0;
          this.#lastSuccess = now;
          if (this.#breaker !== 'closed') {
            this.#breaker = 'closed';
            this.#cooldown = this.#options.breakerCooldownMs ?? 5000;
          }
          this.#adapt(false);
        } else if (result.overloaded === true || result.failing === true) {
          if (result.overloaded === true) this.#adapt(true);
          this.#failuresInARow += 1;
          // Failures in a row *and* no success for a cool-down's length: a burst of 429s from calls that
          // were in flight together at the edge of a rate window is not a failing model.
          const failing = this.#failuresInARow >= (this.#options.breakerThreshold ?? 8) && now - this.#lastSuccess >= (this.#options.breakerCooldownMs ?? 5000);
          if (this.#breaker === 'half-open' || failing) this.#open(now);
        }
        this.#pump();
      },
    };
  }

  /**
   * What the provider's x-ratelimit-* headers say: a limit not configured becomes a bucket (aimed at 95%
   * like a configured one), and nothing remaining pauses new calls until the reset it names.
   */
  #learn(info: RateLimitInfo, now: number): void {
    if (this.#requests === undefined && info.limitRequests !== undefined && info.limitRequests > 0) this.#requests = new TokenBucket(info.limitRequests * SAFETY, now);
    if (this.#tokens === undefined && info.limitTokens !== undefined && info.limitTokens > 0) this.#tokens = new TokenBucket(info.limitTokens * SAFETY, now);
    if (info.remainingRequests !== undefined && info.remainingRequests <= 0 && info.resetRequestsMs !== undefined) this.#pausedUntil = Math.max(this.#pausedUntil, now + info.resetRequestsMs);
    if (info.remainingTokens !== undefined && info.remainingTokens <= 0 && info.resetTokensMs !== undefined) this.#pausedUntil = Math.max(this.#pausedUntil, now + info.resetTokensMs);
  }

  /**
   * The adaptive limit, judged once per window (as many completions as the limit, at least 8). More than
   * SATURATED of the window refused as overloaded (429, 503, 529): halve. At most OVERLOAD_TARGET refused:
   * grow by one: additive increase, one more call in flight per window, as TCP grows by one segment a
   * round trip. In between: hold. A real limit refuses most of what goes past it, so
   * the limit is followed down; a provider that refuses a steady one call in ten whatever the load (noise,
   * a shared quota) never halves it, so random 429s cannot shrink a run to a crawl; they are retried.
   */
  #adapt(overloaded: boolean): void {
    this.#windowCalls += 1;
    if (overloaded) this.#windowOverloads += 1;
    if (this.#windowCalls < Math.max(8, Math.floor(this.#limit))) return;
    const share = this.#windowOverloads / this.#windowCalls;
    this.#windowCalls = 0;
    this.#windowOverloads = 0;
    if (share > SATURATED) this.#limit = Math.max(1, Math.floor(this.#limit / 2));
    else if (share <= OVERLOAD_TARGET) this.#limit = Math.min(this.#options.maxConcurrency, this.#limit + 1);
  }

  #open(now: number): void {
    // Calls that were in flight when it opened and fail now say nothing new: no longer pause.
    if (this.#breaker === 'open') return;
    if (this.#breaker === 'closed') this.#openSince = now;
    this.#breaker = 'open';
    this.#pausedUntil = Math.max(this.#pausedUntil, now + this.#cooldown);
    this.#cooldown = Math.min(60_000, this.#cooldown * 2);
  }

  /** Runs `#pump` at `at` (one timer, the earliest needed). */
  #wake(at: number): void {
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

/** Prompt tokens estimated from characters (~4 a token) plus the completion budget. */
export function estimateTokens(request: ChatRequest): number {
  let chars = 0;
  for (const message of request.messages) chars += message.content.length;
  return Math.ceil(chars / 4) + (request.maxCompletionTokens ?? 256);
}

/** A failed call that says the provider is over capacity: a 429, or a 503/529 "overloaded". The limit shrinks. */
export const isOverload = (error: unknown): boolean => error instanceof ModelError && (error.kind === 'rate_limit' || (error.kind === 'server' && (error.status === 503 || error.status === 529)));

/** A failed call that says the model is failing (5xx, timeouts, 429s): the breaker counts it. */
export const isFailing = (error: unknown): boolean => error instanceof ModelError && (error.kind === 'rate_limit' || error.kind === 'server' || error.kind === 'timeout');

/**
 * A ChatModel whose every call first takes a permit from `limiter` and gives it back with what happened,
 * so rate limits, the adaptive limit, Retry-After pauses and the breaker apply to all of its callers.
 */
export function limited(model: ChatModel, limiter: ModelLimiter): ChatModel {
  const call = async (request: ChatRequest, signal: AbortSignal, permit: Permit): Promise<ChatResponse> => {
    try {
      const response = await model.complete(request, signal);
      permit.release({ ok: true, tokens: response.usage.input + response.usage.output, rateLimit: response.rateLimit });
      return response;
    } catch (error) {
      permit.release({ ok: false, overloaded: isOverload(error), failing: isFailing(error), retryAfterMs: error instanceof ModelError ? error.retryAfterMs : undefined });
      throw error;
    }
  };
  const wait = (tokens: number, signal: AbortSignal): Promise<Permit> =>
    new Promise<Permit>((resolve, reject) => {
      if (signal.aborted) {
        reject(new ModelError('aborted', 'request aborted'));
        return;
      }
      const subscription: Subscription = limiter.acquire(tokens).subscribe({
        next: (permit) => {
          signal.removeEventListener('abort', onAbort);
          resolve(permit);
        },
        error: (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      });
      // Still in line: an abort gives up the place (a permit granted meanwhile never reaches the model).
      function onAbort(): void {
        subscription.unsubscribe();
        reject(new ModelError('aborted', 'request aborted'));
      }
      if (!subscription.closed) signal.addEventListener('abort', onAbort, { once: true });
    });
  return {
    provider: model.provider,
    model: model.model,
    complete: async (request, signal) => {
      const tokens = estimateTokens(request);
      return call(request, signal, limiter.tryAcquire(tokens) ?? (await wait(tokens, signal)));
    },
  };
}
