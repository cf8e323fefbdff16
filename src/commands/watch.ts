// What generate watches as a run goes, beside the sink: the input's tasks counted ahead, the conversations' times, the failures' reasons, the early stop.
import { describeError } from '../errors.js';
import { Timings } from '../sinks/progress.js';
import { countTasks, type CountOptions } from '../streams/count.js';
import { interactionId, unfinished, type Outcome, type Task } from '../types.js';
import { EarlyStop, FailureTally, earlyStopAfter } from './failures.js';

/**
 * The input file's tasks, counted in a second pass that runs alongside the run (it does not wait for the
 * count): `planned()` is undefined until the count is done; a count that fails (the file changed, a
 * read error) leaves it undefined, and the run goes on without a total. `stop()` ends a count still under
 * way (the run ended first).
 */
export function countAhead(path: string, options: Omit<CountOptions, 'signal'>, onError: (message: string) => void): { planned(): number | undefined; counting(): boolean; stop(): void } {
  const controller = new AbortController();
  let planned: number | undefined;
  let counting = true;
  countTasks(path, { ...options, signal: controller.signal }).then(
    (count) => {
      planned = count;
      counting = false;
    },
    (error: unknown) => {
      counting = false;
      if (!controller.signal.aborted) onError(`the progress total is unknown: counting the tasks of ${path} failed (${describeError(error)})`);
    },
  );
  return { planned: () => planned, counting: () => counting, stop: () => controller.abort() };
}

/** The interaction id an outcome settles (the key its conversation began under). */
const idOf = (outcome: Outcome): string =>
  outcome.task !== undefined ? interactionId(outcome.task.personaId, outcome.task.queryId) : outcome.ok ? interactionId(outcome.interaction.persona_id, outcome.interaction.metadata.query_id) : outcome.failure.interaction_id;

/**
 * The run's outcomes as progress and the early stop see them: when each conversation began and ended
 * (Timings), the failures by reason (FailureTally), and whether the first ones all failed alike (EarlyStop,
 * after max(8, min(concurrency, 32)) of them).
 */
export class RunWatch {
  readonly timings = new Timings();
  readonly failures = new FailureTally();
  readonly early: EarlyStop;

  constructor(concurrency: number) {
    this.early = new EarlyStop(earlyStopAfter(concurrency));
  }

  /** A conversation was taken into the pipeline. */
  began(task: Task, now = Date.now()): void {
    this.timings.begin(interactionId(task.personaId, task.queryId), now);
  }

  /** An outcome was written (or cut short); returns the early stop's line when the run must stop. */
  settled(outcome: Outcome, now = Date.now()): string | undefined {
    const cut = unfinished(outcome);
    this.timings.end(idOf(outcome), now, !cut);
    if (cut) return undefined;
    if (!outcome.ok) this.failures.add(outcome.failure);
    return this.early.observe(outcome);
  }
}
