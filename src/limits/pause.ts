// ModelPause: stops every call to a model, but only on evidence that the model as a whole is limited.
import type { RateLimitInfo } from '../chat.js';

/**
 * A Retry-After at least this long pauses every call to the model. A per-minute window, the kind most
 * providers count, reopens within a minute, so a longer hint means an hourly or daily quota that refuses
 * every call under the key. A shorter one is often about that one call (a big request against a token
 * window that smaller ones still fit, or a provider's random refusal): the caller waits it out alone, and
 * if the whole model is limited, the refusals of the others soon show it (below).
 */
export const LONG_RETRY_AFTER_MS = 60_000;

/** The last completions looked at for a dense run of refusals... */
export const DENSE_WINDOW = 16;
/**
 * ...and how many of them refused (429, 503/529) that show the model as a whole is limited. Random
 * refusals rarely get there: a window reaches 12 of 16 with odds of 1 in 800 million at 10% refused,
 * 1 in 8 million at 15%, 1 in 4,000 at 30%; a limit that is really reached refuses nearly everything
 * sent past it.
 */
export const DENSE_REFUSALS = 12;

/** Why the model is paused: what the limiter saw. */
export type PauseReason = 'retry_after' | 'rate_limit_headers' | 'dense_refusals';

/**
 * When every call to one model must wait, and why. Three kinds of evidence pause the whole model:
 * x-ratelimit-remaining-* at 0 (until the reset the headers name), a Retry-After of LONG_RETRY_AFTER_MS
 * or more, and DENSE_REFUSALS refused calls among the last DENSE_WINDOW (for the hint of the refusal that
 * made it dense). Anything else, a lone 429 with `Retry-After: 1` above all, delays only its own call.
 */
export class ModelPause {
  #until = 0;
  #reason: PauseReason | undefined;
  /** The last DENSE_WINDOW completions, refused or not, as a ring. */
  readonly #recent: boolean[] = [];
  #next = 0;
  #refusals = 0;

  /** Until when every call waits (in the past: no pause). */
  get until(): number {
    return this.#until;
  }

  /** Why, while paused at `now`. */
  reason(now: number): PauseReason | undefined {
    return now < this.#until ? this.#reason : undefined;
  }

  /** The share of the last DENSE_WINDOW completions that were refused (of those so far, before there are that many). */
  get refusedShare(): number {
    return this.#recent.length === 0 ? 0 : this.#refusals / this.#recent.length;
  }

  /** Counts one completion; `retryAfterMs` is the hint of a refused one. */
  completed(now: number, refused: boolean, retryAfterMs: number | undefined): void {
    if (this.#recent.length < DENSE_WINDOW) this.#recent.push(refused);
    else {
      if (this.#recent[this.#next] === true) this.#refusals -= 1;
      this.#recent[this.#next] = refused;
      this.#next = (this.#next + 1) % DENSE_WINDOW;
    }
    if (refused) this.#refusals += 1;
    if (!refused || retryAfterMs === undefined || retryAfterMs <= 0) return;
    if (retryAfterMs >= LONG_RETRY_AFTER_MS) this.#pause(now + retryAfterMs, 'retry_after');
    else if (this.#refusals >= DENSE_REFUSALS) this.#pause(now + retryAfterMs, 'dense_refusals');
  }

  /** What the provider's x-ratelimit-* headers say: nothing remaining pauses every call until the reset. */
  learn(info: RateLimitInfo, now: number): void {
    if (info.remainingRequests !== undefined && info.remainingRequests <= 0 && info.resetRequestsMs !== undefined) this.#pause(now + info.resetRequestsMs, 'rate_limit_headers');
    if (info.remainingTokens !== undefined && info.remainingTokens <= 0 && info.resetTokensMs !== undefined) this.#pause(now + info.resetTokensMs, 'rate_limit_headers');
  }

  #pause(until: number, reason: PauseReason): void {
    if (until <= this.#until) return;
    this.#until = until;
    this.#reason = reason;
  }
}
