// Ctrl-C and SIGTERM during a run: the first stops it gently, a second one (or the grace running out) at once.

export interface StopOptions {
  /** The first signal: stop reading input; what is in flight goes on. */
  readonly onStop: () => void;
  /** A second signal, or the grace period over: abort what is in flight. */
  readonly onAbort: () => void;
  readonly graceSeconds: number;
}

/**
 * Listens for SIGINT and SIGTERM while a run lasts. The first calls `onStop` and starts the grace timer
 * (unref'd: it never holds the process open); a second signal, or the timer, calls `onAbort`. `close`
 * removes only these handlers: a program embedding the CLI may have its own.
 */
export class StopSignals {
  #stopping = false;
  #grace: NodeJS.Timeout | undefined;
  readonly #handler: () => void;

  constructor(options: StopOptions) {
    this.#handler = () => {
      if (this.#stopping) {
        options.onAbort();
        return;
      }
      this.#stopping = true;
      options.onStop();
      this.#grace = setTimeout(options.onAbort, options.graceSeconds * 1000);
      this.#grace.unref();
    };
    process.on('SIGINT', this.#handler);
    process.on('SIGTERM', this.#handler);
  }

  /** A signal came. */
  get stopping(): boolean {
    return this.#stopping;
  }

  close(): void {
    clearTimeout(this.#grace);
    process.off('SIGINT', this.#handler);
    process.off('SIGTERM', this.#handler);
  }
}
