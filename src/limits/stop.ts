// Stopping: once a run is told to stop, no wait may outlast the grace it was given.

/** What a wait needs to know about the run stopping: the moment it must be over by, once there is one. */
export interface Stopping {
  /** Scheduler time (epoch ms) by which every wait must be over, once the run is stopping. */
  readonly deadline: number | undefined;
  /** Aborted when the run starts stopping. */
  readonly signal: AbortSignal;
}

/**
 * The run's stop, as waits see it. `stop(deadline)` (the first Ctrl-C or SIGTERM) sets the deadline and
 * aborts `signal`: a wait that would end after the deadline (a Retry-After, a backoff, a pause on reset
 * headers) gives up at once instead of holding the run past its grace, and its conversation ends
 * unwritten, for a resume to do. Shorter waits go on, so conversations that are nearly done still finish.
 */
export class Drain implements Stopping {
  #deadline: number | undefined;
  readonly #controller = new AbortController();

  get deadline(): number | undefined {
    return this.#deadline;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  stop(deadline: number): void {
    if (this.#deadline !== undefined) return;
    this.#deadline = deadline;
    this.#controller.abort();
  }
}
