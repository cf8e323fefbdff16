// The generate job: tasks from the persona stream, through lockModel and converse, into a sink.
import { Observable, identity, mergeMap, pipe } from 'rxjs';
import { converse, type ConverseOptions } from './operators/converse.js';
import { judge, type JudgeOperatorOptions } from './operators/judge.js';
import { lockModel } from './operators/lockModel.js';
import { supplement, type SupplementOptions } from './operators/supplement.js';
import { pullThrough } from './streams/pull.js';
import type { Outcome, Task } from './types.js';

/** The options of `converse` (models, seed, turn limits, concurrency, retries, hooks) and of supplement rounds. */
export interface GenerateOptions extends ConverseOptions {
  /** Supplement rounds after the main pass; none when absent. */
  readonly supplement?: Omit<SupplementOptions, 'run' | 'seed' | 'minTurns' | 'maxTurns'> | undefined;
  /** Judge each finished conversation (the judge, and near-duplicates per persona); a rejected one is a miss for supplement. */
  readonly judge?: Pick<JudgeOperatorOptions, 'judge' | 'duplicates'> | undefined;
}

/**
 * Runs every task through lockModel, converse and (with `judge`) the judge, and hands each outcome to
 * `write`, then, with `supplement`, tops up the personas that fell short (failed or rejected) through the
 * same pipeline; the observable emits
 * each outcome once `write` has accepted it. Tasks are pulled from `tasks` only as outcomes are written,
 * so at most `concurrency` conversations plus `concurrency` finished-but-unwritten outcomes exist at any
 * time, whatever the input size.
 *
 * @example
 * generate(readTasks(stream, opts), options, (outcome) => sink.write(outcome)).subscribe({ complete: done })
 */
export function generate(tasks: AsyncIterable<Task>, options: GenerateOptions, write: (outcome: Outcome) => Promise<void>): Observable<Outcome> {
  const window = options.concurrency * 2;
  const pass = (source: AsyncIterable<Task>): Observable<Outcome> =>
    pullThrough(
      source,
      window,
      pipe(
        lockModel(options.pool, options.seed),
        converse(options),
        options.judge === undefined
          ? identity
          : judge({ ...options.judge, concurrency: options.concurrency, maxRetries: options.maxRetries, retryDelayMs: options.retryDelayMs, onRetry: options.onRetry, onUsage: options.onUsage, scheduler: options.scheduler }),
        mergeMap(async (outcome) => {
          await write(outcome);
          return outcome;
        }),
      ),
    );
  if (options.supplement === undefined) return pass(tasks);
  return pass(tasks).pipe(supplement({ ...options.supplement, run: pass, seed: options.seed, minTurns: options.minTurns, maxTurns: options.maxTurns }));
}
