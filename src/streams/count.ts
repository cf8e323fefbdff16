// The tasks of an input file, counted ahead of the run in a second pass over the file, for a progress total that is exact from the start.
import { createReadStream } from 'node:fs';
import type { Task } from '../types.js';
import { readTasks, type TaskOptions } from './personas.js';
import { inShard, type Shard } from './shard.js';
import { firstTasks, skipWritten, type Written } from './tasks.js';

export interface CountOptions {
  /** What the run's readTasks gets (its warnings and --strict are the run's business, not the count's). */
  readonly tasks: Omit<TaskOptions, 'onWarning' | 'strict'>;
  readonly shard?: Shard | undefined;
  /** --limit: the first N tasks (of the shard), counted before what a resume skips, as the run takes them. */
  readonly limit?: number | undefined;
  /** With --resume: what DIR holds, left out as the run leaves it out (the count works on a copy). */
  readonly written?: Written | undefined;
  readonly retryFailed?: boolean;
  /** Ends the count early (the run ended first): the promise then rejects. */
  readonly signal?: AbortSignal;
}

/** Chunks of the counting pass: larger than the run's 64 KiB, it reads ahead of nothing. */
const CHUNK = 1024 * 1024;

/**
 * The tasks the run will take from `path`, counted by running the same expansion over a second read of
 * the file: persona lines × their queries (or the dataset's, with `tasks.queries`: give it a fork of the
 * run's dataset, so a round-robin cursor is not moved under the run), duplicates and bad lines left out,
 * then the shard, then the --limit, then what a resume skips. Streams the file (memory: the task keys readTasks keeps, as
 * the run's own pass keeps them).
 *
 * @example
 * const total = await countTasks('personas.ndjson', { tasks: { name: 'personas.ndjson', seed: 42, minTurns: 2, maxTurns: 5 } });
 */
export async function countTasks(path: string, options: CountOptions): Promise<number> {
  const stream = createReadStream(path, { highWaterMark: CHUNK });
  const abort = (): void => void stream.destroy(new Error('the count was stopped'));
  if (options.signal?.aborted === true) abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    let tasks: AsyncIterable<Task> = readTasks(stream, { ...options.tasks, strict: false });
    if (options.shard !== undefined) tasks = inShard(tasks, options.shard);
    if (options.limit !== undefined) tasks = firstTasks(tasks, options.limit);
    const written = options.written;
    if (written !== undefined) tasks = skipWritten({ done: written.done, failed: written.failed, compensated: new Map(written.compensated) }, options.retryFailed !== false, { skipped: 0, retried: 0, compensated: 0 }, tasks);
    let count = 0;
    for await (const _ of tasks) count += 1;
    return count;
  } finally {
    options.signal?.removeEventListener('abort', abort);
    stream.destroy();
  }
}
