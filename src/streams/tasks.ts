// Wrappers around the task source: what a resume leaves out, how many personas came, each task counted as it starts.
import { interactionId, type Task } from '../types.js';

/** What an --out directory already holds, as far as choosing tasks goes (resume's OutputState is one). */
export interface Written {
  /** Interaction ids written. */
  readonly done: { has(id: string): boolean };
  /** Interaction ids in failures.ndjson. */
  readonly failed: { has(id: string): boolean };
  /** Supplement interactions per persona: failures they already made up for (decremented as used). */
  readonly compensated: Map<string, number>;
}

/** What `skipWritten` left out and let through again. */
export interface SkipCounts {
  skipped: number;
  retried: number;
  compensated: number;
}

/**
 * On resume, leaves out the tasks whose interaction DIR already holds, and the failed ones unless they
 * are to be retried; a failed task whose persona already got supplement interactions in their place is
 * not retried either (that would take the persona past its target).
 */
export async function* skipWritten(written: Written, retryFailed: boolean, counts: SkipCounts, tasks: AsyncIterable<Task>): AsyncGenerator<Task> {
  for await (const task of tasks) {
    const id = interactionId(task.personaId, task.queryId);
    if (written.done.has(id)) {
      counts.skipped += 1;
      continue;
    }
    if (written.failed.has(id)) {
      const madeUp = written.compensated.get(task.personaId) ?? 0;
      if (!retryFailed || madeUp > 0) {
        if (madeUp > 0) written.compensated.set(task.personaId, madeUp - 1);
        counts.compensated += madeUp > 0 ? 1 : 0;
        counts.skipped += 1;
        continue;
      }
      counts.retried += 1;
    }
    yield task;
  }
}

/**
 * Counts the persona lines that produced tasks (tasks of one line come one after the other) and the
 * tasks, and knows when the source is exhausted (every task has been read: totals are exact from then on).
 */
export function countPersonas(tasks: AsyncIterable<Task>): AsyncIterable<Task> & { readonly personas: number; readonly tasks: number; readonly exhausted: boolean } {
  let personas = 0;
  let count = 0;
  let exhausted = false;
  let last: string | undefined;
  return {
    get personas() {
      return personas;
    },
    get tasks() {
      return count;
    },
    get exhausted() {
      return exhausted;
    },
    async *[Symbol.asyncIterator]() {
      for await (const task of tasks) {
        count += 1;
        if (task.source !== last) {
          personas += 1;
          last = task.source;
        }
        yield task;
      }
      exhausted = true;
    },
  };
}

/** Hands tasks on while `admit` takes them (waiting while it decides); the first it refuses (--max-cost) ends the source there. */
export async function* admitted(source: AsyncIterable<Task>, admit: (task: Task) => boolean | Promise<boolean>): AsyncGenerator<Task> {
  for await (const task of source) {
    if (!(await admit(task))) return;
    yield task;
  }
}

/** Calls `onTask` as each task is handed on (when the pipeline pulls it: when its conversation starts). */
export async function* counted<T>(source: AsyncIterable<T>, onTask: (task: T) => void): AsyncGenerator<T> {
  for await (const task of source) {
    onTask(task);
    yield task;
  }
}

/**
 * The first `limit` items of `source` (`generate --limit N`), then nothing: the item after the last is
 * never asked for, so no input line past the limit is read, parsed or reported.
 *
 * @example
 * firstTasks(readTasks(stream, options), 10) // the first 10 persona × query tasks of the input
 */
export async function* firstTasks<T>(source: AsyncIterable<T>, limit: number): AsyncGenerator<T> {
  if (!Number.isInteger(limit) || limit < 0) throw new TypeError(`Expected \`limit\` to be a non-negative integer, got \`${String(limit)}\``);
  if (limit === 0) return;
  let taken = 0;
  for await (const item of source) {
    yield item;
    taken += 1;
    if (taken >= limit) return;
  }
}
