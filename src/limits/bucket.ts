// RateBucket: spaces calls so that no window of time, short or long, sees more than a per-minute rate allows.

/**
 * A per-minute limit as a virtual clock (the generic cell rate algorithm, GCRA): `#clearAt` is when
 * everything taken so far has been paid back at `perMinute / 60,000` units a millisecond. A call may go
 * once the bucket is clear, and then owes its size. Nothing is saved up while calls are idle, so there is
 * no burst: in any half-open window of T ms the units let out stay under `perMinute · T / 60,000` plus
 * the one call that went last (for a request limit: at most ⌈rate · T⌉ calls). Providers count
 * per-minute limits over short windows (60,000 a minute enforced as 1,000 a second), which a bucket that
 * holds a second's worth breaks: a full bucket plus a second's refill lets out twice the rate in one
 * second.
 *
 * @example
 * const bucket = new RateBucket(600, 0); // 10 a second
 * bucket.take(1, 0);
 * bucket.waitFor(1, 0); // 100: the next call goes 100 ms later
 */
export class RateBucket {
  /** Milliseconds one unit takes to pay back. */
  readonly #msPerUnit: number;
  #clearAt: number;

  constructor(
    readonly perMinute: number,
    now: number,
  ) {
    if (!(perMinute > 0) || !Number.isFinite(perMinute)) throw new TypeError(`Expected \`perMinute\` to be a positive number, got \`${String(perMinute)}\``);
    this.#msPerUnit = 60_000 / perMinute;
    this.#clearAt = now;
  }

  /** Milliseconds until a call may go (0: now). Its size does not matter: it goes once the bucket is clear. */
  waitFor(_amount: number, now: number): number {
    // A rounding crumb is not a reason to wait again.
    const wait = this.#clearAt - now;
    return wait <= 1e-6 ? 0 : Math.ceil(wait);
  }

  /** A call of `amount` goes now: it is owed from now, or from when the bucket clears if that is later. */
  take(amount: number, now: number): void {
    this.#clearAt = Math.max(this.#clearAt, now) + amount * this.#msPerUnit;
  }

  /**
   * Corrects what a call owes once its real cost is known: more (`delta` > 0) moves the clear time on,
   * less gives the difference back, though never as credit for a burst later (not before `now`).
   */
  adjust(delta: number, now: number): void {
    this.#clearAt = Math.max(now, this.#clearAt + delta * this.#msPerUnit);
  }
}
