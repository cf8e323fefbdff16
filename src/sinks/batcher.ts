// Group commit: items queued while a write is in flight go out together in the next one; lines written that way.

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

/** Text lines to a target, in batches: each batch one `write` with a newline after every line. */
export interface LineWriter {
  /** Queues one line (without its newline). */
  push(line: string): Promise<void>;
  /** Resolves when every line pushed so far is written; rejects if a write failed. */
  flush(): Promise<void>;
}

/**
 * The one line writer. By default a group commit: `push` resolves once its line is written, so
 * concurrent producers that wait get backpressure and one write serves many lines. With `chunkBytes`,
 * for a producer that writes one line after the other (export's loop): `push` resolves at once while
 * less than a chunk is gathered, and waits only when a chunk goes out, so a slow reader slows the
 * producer without one write per line.
 *
 * @example
 * const out = lineWriter(streamTarget(process.stdout));
 * await out.push(JSON.stringify(record));
 */
export function lineWriter(write: (text: string) => Promise<void>, options: { readonly chunkBytes?: number } = {}): LineWriter {
  const chunkBytes = options.chunkBytes ?? 0;
  if (chunkBytes <= 0) {
    const lines = new Batcher<string>((batch) => write(`${batch.join('\n')}\n`));
    return { push: (line) => lines.push(line), flush: () => lines.flush() };
  }
  const chunks = new Batcher<string>((batch) => write(batch.join('')));
  let parts: string[] = [];
  let bytes = 0;
  const cut = (): Promise<void> => {
    const text = parts.join('');
    parts = [];
    bytes = 0;
    return chunks.push(text);
  };
  return {
    push: (line) => {
      parts.push(line, '\n');
      bytes += line.length + 1;
      return bytes >= chunkBytes ? cut() : Promise.resolve();
    },
    flush: async () => {
      if (parts.length > 0) await cut();
      await chunks.flush();
    },
  };
}
