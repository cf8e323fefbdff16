// CircuitBreaker: stops calling a model that fails every call, probes it one call at a time, and gives up.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Failures in a row (429, 5xx, timeouts), with no success for a cool-down's length, that open it. Default 8. */
  readonly threshold?: number | undefined;
  /** First pause when it opens, doubled on each failed probe up to 60 s. Default 5 s. */
  readonly cooldownMs?: number | undefined;
  /** Open this long without a successful probe: the model is dead. Default 120 s. */
  readonly giveUpMs?: number | undefined;
}

/**
 * Closed: calls go. After `threshold` failures in a row *and* no success for a cool-down's length it
 * opens: no calls until the cool-down ends, then half-open: one probe at a time. A successful probe
 * closes it; a failed one opens it again for twice as long. Open for `giveUpMs` in all: `dead`.
 * Failures in a row alone are not enough: a burst of 429s from calls that were in flight together at the
 * edge of a rate window is not a failing model.
 */
export class CircuitBreaker {
  #state: BreakerState = 'closed';
  #failuresInARow = 0;
  #lastSuccess: number;
  #openSince = 0;
  #openUntil = 0;
  #cooldown: number;
  readonly #threshold: number;
  readonly #firstCooldown: number;
  readonly #giveUp: number;

  constructor(options: BreakerOptions, now: number) {
    this.#threshold = options.threshold ?? 8;
    this.#firstCooldown = options.cooldownMs ?? 5000;
    this.#giveUp = options.giveUpMs ?? 120_000;
    this.#cooldown = this.#firstCooldown;
    this.#lastSuccess = now;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** When calls may go again (in the past while closed or half-open). */
  get openUntil(): number {
    return this.#openUntil;
  }

  /** Open past the give-up time at `now`: milliseconds it has been open, else undefined. */
  dead(now: number): number | undefined {
    return this.#state === 'open' && now - this.#openSince >= this.#giveUp ? now - this.#openSince : undefined;
  }

  /** Calls that may be in flight at `now` (0 while open, 1 while probing), or undefined for no limit of its own. */
  allowed(now: number): number | undefined {
    if (this.#state === 'open') {
      if (now < this.#openUntil) return 0;
      this.#state = 'half-open';
    }
    return this.#state === 'half-open' ? 1 : undefined;
  }

  success(now: number): void {
    this.#failuresInARow = 0;
    this.#lastSuccess = now;
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#cooldown = this.#firstCooldown;
    }
  }

  failure(now: number): void {
    this.#failuresInARow += 1;
    const failing = this.#failuresInARow >= this.#threshold && now - this.#lastSuccess >= this.#firstCooldown;
    if (this.#state === 'half-open' || failing) this.#open(now);
  }

  #open(now: number): void {
    // Calls that were in flight when it opened and fail now say nothing new: no longer pause.
    if (this.#state === 'open') return;
    if (this.#state === 'closed') this.#openSince = now;
    this.#state = 'open';
    this.#openUntil = Math.max(this.#openUntil, now + this.#cooldown);
    this.#cooldown = Math.min(60_000, this.#cooldown * 2);
  }
}
