// The generate job: tasks from the persona stream, through lockModel and converse, into a sink.
import { Observable, filter, mergeMap, pipe, type OperatorFunction } from 'rxjs';
import { converse, type ConverseOptions } from './operators/converse.js';
import { lockModel } from './operators/lockModel.js';
import { supplement, type SupplementOptions } from './operators/supplement.js';
import { pullThrough } from './streams/pull.js';
import type { Outcome, Task } from './types.js';

/** The options of `converse` (models, seed, turn limits, concurrency, retries, hooks) and of supplement rounds. */
export interface GenerateOptions extends ConverseOptions {
  /** Supplement rounds after the main pass; none when absent. */
  readonly supplement?: Omit<SupplementOptions, 'run' | 'seed' | 'minTurns' | 'maxTurns'> | undefined;
  /**
   * Where the conversations happen when not in this process (a queue's workers): `step` turns each task
   * into its outcome, or undefined for a task no one ran (a budget reached); `window` tasks at most are
   * between the input and the output. Default: lockModel → converse here, with a window of 2 × concurrency.
   */
  readonly remote?: { readonly step: OperatorFunction<Task, Outcome | undefined>; readonly window: number } | undefined;
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
  const window = options.remote?.window ?? options.concurrency * 2;
  const step: OperatorFunction<Task, Outcome | undefined> = options.remote?.step ?? pipe(lockModel(options.pool, options.seed), converse(options));
  const pass = (source: AsyncIterable<Task>): Observable<Outcome> =>
    pullThrough(
      source,
      window,
      pipe(
        step,
        mergeMap(async (outcome) => {
          if (outcome !== undefined) await write(outcome);
          return outcome;
        }),
      ),
    ).pipe(filter((outcome): outcome is Outcome => outcome !== undefined));
  if (options.supplement === undefined || options.supplement.rounds === 0) return pass(tasks);
  return pass(tasks).pipe(supplement({ ...options.supplement, run: pass, seed: options.seed, minTurns: options.minTurns, maxTurns: options.maxTurns }));
}
