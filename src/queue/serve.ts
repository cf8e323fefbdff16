// The worker's side of the queue: jobs taken from BullMQ, each task's conversation run through lockModel and converse, its outcome returned.
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Subject, type Subscription } from 'rxjs';
import { FatalError, describeError } from '../errors.js';
import { converse, type ConverseOptions } from '../operators/converse.js';
import { lockModel } from '../operators/lockModel.js';
import { interactionId, type Outcome, type Task } from '../types.js';
import { PREFIX, checkName, type JobResult } from './jobs.js';

/**
 * One long-lived lockModel → converse pipeline that tasks are pushed into one at a time (as jobs
 * arrive) and whose outcomes come back to the caller of `run`: the same operators as a single-process
 * run, so a conversation sitting out a Retry-After lends its slot here too. A run-ending error
 * (FatalError: a bad key, a dead model) rejects every open `run` and every later one.
 */
export class ConversationRunner {
  readonly #input = new Subject<Task>();
  readonly #open = new Map<string, { resolve: (outcome: Outcome) => void; reject: (error: unknown) => void }>();
  readonly #subscription: Subscription;
  #error: unknown;

  constructor(options: ConverseOptions & { readonly seed: number }) {
    this.#subscription = this.#input.pipe(lockModel(options.pool, options.seed), converse(options)).subscribe({
      next: (outcome) => {
        const id = outcome.ok ? outcome.interaction.interaction_id : outcome.failure.interaction_id;
        const open = this.#open.get(id);
        this.#open.delete(id);
        open?.resolve(outcome);
      },
      error: (error: unknown) => {
        this.#error = error;
        for (const open of this.#open.values()) open.reject(error);
        this.#open.clear();
      },
    });
  }

  /** The error that stopped the pipeline, if one did. */
  get error(): unknown {
    return this.#error;
  }

  /** Runs one task's conversation; resolves with its outcome (an interaction or a failure record). */
  run(task: Task): Promise<Outcome> {
    if (this.#error !== undefined) return Promise.reject(this.#error instanceof Error ? this.#error : new Error(describeError(this.#error)));
    return new Promise<Outcome>((resolve, reject) => {
      this.#open.set(interactionId(task.personaId, task.queryId), { resolve, reject });
      this.#input.next(task);
    });
  }

  /** Aborts what is in flight (the model calls' requests). */
  close(): void {
    this.#subscription.unsubscribe();
    for (const open of this.#open.values()) open.reject(new Error('the worker stopped'));
    this.#open.clear();
  }
}

export interface ServeOptions {
  /** Jobs worked on at once (twice the conversations' concurrency: those sitting out a retry lend their slot). */
  readonly concurrency: number;
  /** How long a job's lock lasts unrenewed: a worker that died is noticed, and its job given to another, after about this long. */
  readonly lockMs: number;
  /** Runs one task: its outcome, or that it was not run. */
  readonly process: (task: Task) => Promise<JobResult>;
  /** A run-ending error: the job goes back to the queue, and the worker should stop. */
  readonly onFatal: (error: FatalError) => void;
}

/** Times a job may be found stalled (its worker gone) and handed to another before BullMQ fails it. */
export const MAX_STALLED = 10;

/**
 * A BullMQ worker on the run's queue. BullMQ keeps a lock on each job it works on and renews it while
 * this process lives; a process that dies (SIGKILL, a lost machine) stops renewing, and after `lockMs`
 * another worker's stalled-job check puts the job back in line. Only the holder of the lock can complete
 * a job, so a worker that lost it cannot hand in a second outcome: each task is written once.
 */
export function serveTasks(connection: Redis, name: string, options: ServeOptions): Worker<Task, JobResult> {
  const processor = async (job: Job<Task, JobResult>, token?: string): Promise<JobResult> => {
    try {
      return await options.process(job.data);
    } catch (error) {
      if (!(error instanceof FatalError)) throw error;
      // Not the task's fault: back in line for when the cause is fixed, and this worker stops.
      options.onFatal(error);
      await job.moveToDelayed(Date.now() + options.lockMs, token);
      throw new DelayedError();
    }
  };
  return new Worker<Task, JobResult>(checkName(name), processor, {
    connection,
    prefix: PREFIX,
    concurrency: options.concurrency,
    lockDuration: options.lockMs,
    stalledInterval: Math.max(1000, Math.round(options.lockMs / 2)),
    maxStalledCount: MAX_STALLED,
    // An idle worker asks for a job this often (s): it notices the end of the run, or a stop, as soon.
    drainDelay: 1,
    autorun: true,
  });
}
