// --shard i/n: a deterministic partition of the tasks by a hash of their persona, so n machines split one input.
import { hash128 } from '../rng.js';
import type { Task } from '../types.js';

/** Shard `index` (1-based) of `count`. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/**
 * The shard (1..count) a persona's tasks belong to: a hash of its id, the same on every machine, in
 * every version and whatever the input order. The persona, not the task, is what is hashed, so all of
 * a persona's conversations (and its supplement rounds, which count per persona) run in one shard.
 *
 * @example
 * shardOf('persona_001', 4) // the same number in 1..4 on every machine
 */
export function shardOf(personaId: string, count: number): number {
  return ((hash128(personaId)[0] >>> 0) % count) + 1;
}

/** `2/8`. */
export const shardName = (shard: Shard): string => `${shard.index}/${shard.count}`;

/** The tasks of `shard` only; the others are read and passed over (the input is the same on every machine). */
export async function* inShard(tasks: AsyncIterable<Task>, shard: Shard): AsyncGenerator<Task> {
  for await (const task of tasks) {
    if (shardOf(task.personaId, shard.count) === shard.index) yield task;
  }
}
