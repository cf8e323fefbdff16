// The sample an estimate renders: a seeded, uniform choice of the input's tasks, read in one pass that also counts them all.
import type { Rng } from '../rng.js';
import type { Task } from '../types.js';

/** The tasks an estimate renders, and how many the whole input holds. */
export interface Sampled {
  /** At most `size` tasks, in input order; every task when the input holds no more than `size`. */
  readonly sample: readonly Task[];
  /** Tasks in the whole input. */
  readonly tasks: number;
  /** Persona lines that gave tasks (those of one line come one after the other). */
  readonly personas: number;
}

/**
 * Reads every task of `tasks` and keeps a uniform sample of `size` of them (reservoir sampling, drawn
 * from `rng`, so the same seed picks the same tasks), in input order: memory holds the sample only,
 * however long the input.
 *
 * @example
 * await sampleTasks(readTasks(stream, options), 20, rngFor(seed, 'estimate', 'sample')) // { sample: [20 tasks], tasks: 3200, personas: 800 }
 */
export async function sampleTasks(tasks: AsyncIterable<Task>, size: number, rng: Rng): Promise<Sampled> {
  if (!Number.isSafeInteger(size) || size < 1) throw new TypeError(`Expected \`size\` to be a positive integer, got \`${String(size)}\``);
  const kept: { index: number; task: Task }[] = [];
  let count = 0;
  let personas = 0;
  let last: string | undefined;
  for await (const task of tasks) {
    if (task.source !== last) {
      personas += 1;
      last = task.source;
    }
    if (kept.length < size) kept.push({ index: count, task });
    else {
      const slot = rng.int(0, count);
      if (slot < size) kept[slot] = { index: count, task };
    }
    count += 1;
  }
  return { sample: kept.sort((a, b) => a.index - b.index).map(({ task }) => task), tasks: count, personas };
}
