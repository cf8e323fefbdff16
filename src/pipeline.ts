// The generate job: tasks from the persona stream, through lockModel and converse, into a sink.
import { Observable, connect, filter, identity, merge, mergeMap, pipe, type OperatorFunction } from 'rxjs';
import { converse, type ConverseOptions } from './operators/converse.js';
import { judge, type JudgeOperatorOptions } from './operators/judge.js';
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
  /** Judge each finished conversation (the judge, and near-duplicates per persona); a rejected one is a miss for supplement. */
  readonly judge?: Pick<JudgeOperatorOptions, 'judge' | 'duplicates'> | undefined;
  /**
   * Where the conversations happen when not in this process (a queue's workers): `step` turns each task
   * into its outcome, or undefined for a task no one ran (a budget reached); `window` tasks at most are
   * between the input and the output. Default: lockModel → converse here, with a window of 2 × concurrency.
   */
  readonly remote?: { readonly step: OperatorFunction<Task, Outcome | undefined>; readonly window: number } | undefined;
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
  const window = options.remote?.window ?? options.concurrency * 2;
  const step: OperatorFunction<Task, Outcome | undefined> = options.remote?.step ?? pipe(lockModel(options.pool, options.seed), converse(options));
  // The judge sees every outcome a conversation left; a task no one ran (undefined) passes by it, still
  // counted by pullThrough as one done.
  const judgeOf = options.judge;
  const judged: OperatorFunction<Outcome | undefined, Outcome | undefined> =
    judgeOf === undefined
      ? identity
      : connect((outcomes) =>
          merge(
            outcomes.pipe(filter((outcome) => outcome === undefined)),
            outcomes.pipe(
              filter((outcome): outcome is Outcome => outcome !== undefined),
              judge({ ...judgeOf, concurrency: options.concurrency, maxRetries: options.maxRetries, retryDelayMs: options.retryDelayMs, onRetry: options.onRetry, onUsage: options.onUsage, scheduler: options.scheduler }),
            ),
          ),
        );
  const { admit } = options;
  const pass = (source: AsyncIterable<Task>): Observable<Outcome> =>
    pullThrough(
      admit === undefined ? source : admitted(source, admit),
      window,
      pipe(
        step,
        judged,
        mergeMap(async (outcome) => {
          if (outcome !== undefined) await write(outcome);
          return outcome;
        }),
      ),
    ).pipe(filter((outcome): outcome is Outcome => outcome !== undefined));
  if (options.supplement === undefined) return pass(tasks);
  return pass(tasks).pipe(supplement({ ...options.supplement, run: pass, seed: options.seed, minTurns: options.minTurns, maxTurns: options.maxTurns }));
}
