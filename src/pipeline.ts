// The generate job: tasks from the persona stream, through lockModel and converse, into a sink.
import { Observable, mergeMap, pipe } from 'rxjs';
import { converse, type ConverseOptions } from './operators/converse.js';
import { lockModel } from './operators/lockModel.js';
import { supplement, type SupplementOptions } from './operators/supplement.js';
import { pullThrough } from './streams/pull.js';
import { admitted } from './streams/tasks.js';
import type { Outcome, Task } from './types.js';

/** The options of `converse` (models, seed, turn limits, concurrency, retries, hooks) and of supplement rounds. */
export interface GenerateOptions extends ConverseOptions {
  /** Supplement rounds after the main pass; none when absent. */
  readonly supplement?: Omit<SupplementOptions, 'run' | 'seed' | 'minTurns' | 'maxTurns'> | undefined;
  /**
   * Asked for each task, of the main pass and of supplement rounds alike, as its conversation is about to
   * start, and may make it wait; the first refusal ends that pass's tasks (--max-cost reserves a conversation's
   * worst case here).
   */
  readonly admit?: ((task: Task) => boolean | Promise<boolean>) | undefined;
}

/**
 * Runs every task through lockModel and converse and hands each outcome to `write`, then, with
 * `supplement`, tops up the personas that fell short through the same pipeline; the observable emits
 * each outcome once `write` has accepted it. Tasks are pulled from `tasks` only as outcomes are written,
 * so at most `concurrency` conversations plus `concurrency` finished-but-unwritten outcomes exist at any
 * time, whatever the input size.
 *
 * @example
 * generate(readTasks(stream, opts), options, (outcome) => sink.write(outcome)).subscribe({ complete: done })
 */
export function generate(tasks: AsyncIterable<Task>, options: GenerateOptions, write: (outcome: Outcome) => Promise<void>): Observable<Outcome> {
  const window = options.concurrency * 2;
  const { admit } = options;
  const pass = (source: AsyncIterable<Task>): Observable<Outcome> =>
    pullThrough(
      admit === undefined ? source : admitted(source, admit),
      window,
      pipe(
        lockModel(options.pool, options.seed),
        converse(options),
        mergeMap(async (outcome) => {
          await write(outcome);
          return outcome;
        }),
      ),
    );
  if (options.supplement === undefined || options.supplement.rounds === 0) return pass(tasks);
  return pass(tasks).pipe(supplement({ ...options.supplement, run: pass, seed: options.seed, minTurns: options.minTurns, maxTurns: options.maxTurns }));
}
