// RateBucket: spaces calls so that no window of time, short or long, sees more than a per-minute rate allows.

/**
 * How late a call may be let out and still count as on time (a timer fires late, a wait is rounded up to
 * the millisecond): the bucket catches up on at most this much. It is also its whole burst: after an idle
 * stretch, what the rate allows in 2 × BURST_MS may go at once.
 */
export const BURST_MS = 25;

/**
 * A per-minute limit as a virtual clock (the generic cell rate algorithm, GCRA): `#clearAt` is when
 * everything taken so far has been paid back at `perMinute / 60,000` units a millisecond. A call may go
 * once the bucket is clear (within BURST_MS), and then owes its size. Almost nothing is saved up while
 * calls are idle: in any half-open window of T ms the units let out stay under
 * `perMinute · (T + 2 · BURST_MS) / 60,000` plus the one call that went last (for a request limit: at
 * most ⌈rate · (T + 50 ms)⌉ calls). Providers count per-minute limits over short windows (60,000 a minute
 * enforced as 1,000 a second), which a bucket that holds a second's worth breaks: a full bucket plus a
 * second's refill lets out twice the rate in one second.
 *
 * @example
 * const bucket = new RateBucket(600, 0); // 10 a second
 * bucket.take(1, 0);
 * bucket.waitFor(1, 0); // 75: owed until 100, and 25 ms early (BURST_MS) is on time
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
    const wait = this.#clearAt - BURST_MS - now;
    return wait <= 1e-6 ? 0 : Math.ceil(wait);
  }

  /** A call of `amount` goes now: it is owed from when the bucket clears, or from now less BURST_MS if that is later. */
  take(amount: number, now: number): void {
    this.#clearAt = Math.max(this.#clearAt, now - BURST_MS) + amount * this.#msPerUnit;
  }

  /**
   * Corrects what a call owes once its real cost is known: more (`delta` > 0) moves the clear time on,
   * less gives the difference back, though never as credit beyond BURST_MS.
   */
  adjust(delta: number, now: number): void {
    this.#clearAt = Math.max(now - BURST_MS, this.#clearAt + delta * this.#msPerUnit);
  }
}
