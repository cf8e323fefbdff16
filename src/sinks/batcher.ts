// Group commit: items queued while a write is in flight go out together in the next one.

/**
 * Queues items and hands them to `write` in batches: while one batch is being written, new items
 * accumulate, and the next call takes them all. One syscall per batch instead of per item, order
 * preserved, and each `push` resolves only once its own item has been written, so callers that wait get
 * backpressure. After a failed write every pending and later push rejects with that error.
 *
 * @example
 * const out = new Batcher<string>((lines) => handle.appendFile(lines.map((l) => `${l}\n`).join('')));
 * await out.push(JSON.stringify(record));
 */
export class Batcher<T> {
  #queue: T[] = [];
  #waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  #flushing: Promise<void> | undefined;
  #failed: Error | undefined;
  readonly #write: (items: T[]) => Promise<void>;

  constructor(write: (items: T[]) => Promise<void>) {
    this.#write = write;
  }

  /** Queues one item; resolves when it has been written. */
  push(item: T): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    this.#queue.push(item);
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#flushing ??= this.#drain();
    return done;
  }

  /** Resolves when everything pushed so far is written; rejects if a write failed. */
  async flush(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
    if (this.#failed !== undefined) throw this.#failed;
  }

  async #drain(): Promise<void> {
    // Let the items produced in the same tick join this batch.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      const items = this.#queue;
      const waiters = this.#waiters;
      this.#queue = [];
      this.#waiters = [];
      try {
        await this.#write(items);
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        this.#failed = error instanceof Error ? error : new Error(String(error));
        for (const waiter of [...waiters, ...this.#waiters]) waiter.reject(this.#failed);
        this.#queue = [];
        this.#waiters = [];
      }
    }
    this.#flushing = undefined;
  }
}

/** A batcher of text lines: each batch is written as one string with a newline after every line. */
export const lineBatcher = (write: (text: string) => Promise<void>): Batcher<string> =>
  new Batcher<string>((lines) => write(`${lines.join('\n')}\n`));
