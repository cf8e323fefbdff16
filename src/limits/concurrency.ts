// AdaptiveConcurrency: how many calls to a model may be in flight, learnt from how many it refuses (AIMD).

/** The share of refused (overloaded) calls in a window above which the limit halves. */
export const SATURATED = 0.25;
/** The share at or below which it grows. */
export const OVERLOAD_TARGET = 0.02;

/**
 * Calls in flight, slots kept by refused calls, and the limit on both. The limit starts at `max` and is
 * judged once per window of completions (as many as the limit, at least 8): more than SATURATED of the
 * window refused as overloaded (429, 503, 529): halve; at most OVERLOAD_TARGET: grow by one (additive
 * increase, as TCP grows by one segment a round trip); in between: hold. A real limit refuses most of what
 * goes past it, so the limit is followed down; a provider that refuses a steady one call in ten whatever
 * the load (noise, a shared quota) never halves it, so random 429s cannot shrink a run to a crawl.
 *
 * While the model refuses many calls, a call refused with a Retry-After keeps its slot until then, as if
 * it were still in flight (the limiter decides when): its caller comes back at that moment, and meanwhile
 * the slot does not go to the next caller in line, who would only be refused too. It is a timestamp, not
 * a timer, so a run whose last call got a 429 ends at once.
 */
export class AdaptiveConcurrency {
  #limit: number;
  #inFlight = 0;
  /** When the slots kept by refused calls come free. */
  #held: number[] = [];
  #windowCalls = 0;
  #windowOverloads = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError(`Expected \`maxConcurrency\` to be a positive integer, got \`${String(max)}\``);
    this.#limit = max;
  }

  get limit(): number {
    return this.#limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Calls in flight plus slots still kept at `now`. */
  busy(now: number): number {
    if (this.#held.length > 0) this.#held = this.#held.filter((until) => until > now);
    return this.#inFlight + this.#held.length;
  }

  /** When the first kept slot comes free (Infinity when none is kept). */
  get nextFree(): number {
    return Math.min(...this.#held);
  }

  start(): void {
    this.#inFlight += 1;
  }

  /** A call ended; `holdUntil` keeps its slot until then. */
  finish(holdUntil: number | undefined): void {
    this.#inFlight -= 1;
    if (holdUntil !== undefined) this.#held.push(holdUntil);
  }

  /** Counts a completion towards the window, and judges the window when it is full. */
  record(overloaded: boolean): void {
    this.#windowCalls += 1;
    if (overloaded) this.#windowOverloads += 1;
    if (this.#windowCalls < Math.max(8, this.#limit)) return;
    const share = this.#windowOverloads / this.#windowCalls;
    this.#windowCalls = 0;
    this.#windowOverloads = 0;
    if (share > SATURATED) this.#limit = Math.max(1, Math.floor(this.#limit / 2));
    else if (share <= OVERLOAD_TARGET) this.#limit = Math.min(this.max, this.#limit + 1);
  }
}
