// lockModel: draw the assistant model of each conversation from the weighted pool, once, with the task's own RNG.
import { map, type OperatorFunction } from 'rxjs';
import type { ModelPool } from '../models/pool.js';
import { rngFor } from '../rng.js';
import type { LockedTask, Task } from '../types.js';

/**
 * Locks each task to one assistant model. The draw uses an RNG seeded by (seed, task key,
 * 'assistant_model'), so a task gets the same model in every run with the same seed, whatever the order
 * or concurrency, and `converse` uses that model for every assistant turn.
 *
 * ```
 * tasks:  --a----b----c--|
 * locked: --a'---b'---c'-|     (a' = a + { poolIndex, assistant: { provider, model } })
 * ```
 *
 * @example
 * tasks$.pipe(lockModel(pool, 42)) // each task gains `assistant: { provider: 'openai', model: 'gpt-4o-mini' }`
 *
 * @param pool the weighted assistant pool (a single model is a pool of one).
 * @param seed the run seed.
 * @returns an operator adding `assistant` to each task.
 */
export function lockModel<T extends Task>(pool: ModelPool, seed: number): OperatorFunction<T, T & LockedTask> {
  return map((task) => {
    const poolIndex = pool.draw(rngFor(seed, task.key, 'assistant_model'));
    const { model } = pool.entries[poolIndex] as (typeof pool.entries)[number];
    return { ...task, poolIndex, assistant: { provider: model.provider, model: model.model } };
  });
}
