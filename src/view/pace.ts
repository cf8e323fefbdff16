// Background work that gives way: the index load and the scan run in short slices and wait while the server answers someone.
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';

/** How often paused work looks again whether it may go on, in ms. */
const LOOK_MS = 10;

/**
 * Paces background work on the server's one thread. Work calls `gate()` between small units: while its
 * time slice lasts that costs nothing (undefined, no promise); once the slice is used up it yields to
 * the event loop, so sockets are served, and then waits while the server is busy: requests in flight,
 * a short grace after the last one (the burst of requests a page makes when it opens), and a quiet
 * start, so the page's first requests meet no competition. Work that a request is waiting for passes
 * `urgent` and only yields. So the first page of a directory of a million interactions comes as quickly
 * as that of ten, whatever the scan behind it is doing.
 */
export class Pacer {
  #busy = 0;
  #quietUntil: number;
  #sliceStart = performance.now();

  constructor(
    /** Longest run of background work between two turns of the event loop, in ms. */
    readonly sliceMs = 10,
    /** How long paused work stays paused after the last request ended, in ms. */
    readonly graceMs = 150,
    /** How long after its creation the pacer holds background work back, for the first requests, in ms. */
    startMs = 500,
  ) {
    this.#quietUntil = performance.now() + startMs;
  }

  /** A request started. */
  begin(): void {
    this.#busy += 1;
  }

  /** A request ended (once per begin). */
  end(): void {
    this.#busy = Math.max(0, this.#busy - 1);
    this.#quietUntil = Math.max(this.#quietUntil, performance.now() + this.graceMs);
  }

  /** Whether background work should hold back now. */
  get busy(): boolean {
    return this.#busy > 0 || performance.now() < this.#quietUntil;
  }

  /** Between two units of background work: undefined while the slice lasts, else a promise to await (see the class). */
  gate(urgent?: () => boolean): Promise<void> | undefined {
    if (performance.now() - this.#sliceStart < this.sliceMs && !this.busy) return undefined;
    return this.#yield(urgent);
  }

  async #yield(urgent: (() => boolean) | undefined): Promise<void> {
    await nextTurn();
    while (this.busy && urgent?.() !== true) await sleep(LOOK_MS);
    this.#sliceStart = performance.now();
  }
}

/** A pacer for work that gives way to nobody (a report, a test): it still lets the event loop turn now and then. */
export const unhurried = (): Pacer => new Pacer(50, 0, 0);
