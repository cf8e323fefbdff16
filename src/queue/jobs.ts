// The producer's side of the queue: each task a BullMQ job (its id from the interaction id), its outcome awaited, the job removed once written.
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import { stableId } from '../rng.js';
import { interactionId, type Failure, type Outcome, type Task } from '../types.js';

/** What a worker returns for a job: the outcome, or that it did not run the task (the budget was reached). */
export type JobResult = { readonly outcome: Outcome } | { readonly skipped: 'budget' };

/** BullMQ's key prefix for personaflow's queues. */
export const PREFIX = 'personaflow';

/** A run's name as the queue's: letters, digits, `-` and `_`. */
export function checkName(name: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new ConfigError(`--name: expected letters, digits, - or _ (at most 64), got \`${name}\``);
  return name;
}

/**
 * The job of a task: its id is a digest of the interaction id (BullMQ ids may not contain `:`, which query
 * ids may), so a task added twice is one job, and an outcome comes back once whatever happens to workers.
 */
export const jobIdOf = (id: string): string => stableId(id, 32);

/** How a job is retried when the worker's code fails outright (a model failure is an outcome, not this). */
export const JOB_OPTIONS = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: false, removeOnFail: false } as const;

/** How often outstanding jobs are looked at for a missed event (a reconnect, a trimmed stream)... */
const SWEEP_MS = 5000;
/** ...and how long since its last look a job must be to be looked up again: a missed outcome waits this long at most. */
const STALE_MS = 10_000;

interface Waiter {
  readonly task: Task;
  /** When its job was last looked up. */
  checkedAt: number;
  readonly resolve: (result: Outcome | undefined) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The queue a producer feeds. `run(task)` adds the task's job (or finds the one already there, from an
 * earlier producer of the same run) and resolves with its outcome once a worker has finished it, or
 * undefined when no worker ran it (the budget was reached, or `drain` removed it). `written` removes the
 * job once its outcome is in the output, so Redis holds at most the jobs in flight.
 *
 * Completions arrive as QueueEvents; every SWEEP_MS the jobs still outstanding are also looked up, so
 * a missed event delays an outcome by seconds at most instead of losing it.
 */
export class TaskQueue {
  readonly #queue: Queue;
  readonly #events: QueueEvents;
  readonly #waiting = new Map<string, Waiter>();
  readonly #started = Date.now();
  readonly #sweep: NodeJS.Timeout;
  /** No job of this run existed before (a new run): adding a task needs no look for an earlier one. */
  #fresh = false;

  private constructor(queue: Queue, events: QueueEvents) {
    this.#queue = queue;
    this.#events = events;
    events.on('completed', ({ jobId, returnvalue }) => this.#completed(jobId, returnvalue));
    events.on('failed', ({ jobId }) => void this.#check(jobId));
    events.on('removed', ({ jobId }) => void this.#check(jobId));
    this.#sweep = setInterval(() => {
      const stale = Date.now() - STALE_MS;
      for (const [id, waiter] of this.#waiting) if (waiter.checkedAt < stale) void this.#check(id);
    }, SWEEP_MS);
    this.#sweep.unref();
  }

  /** Opens the queue of the run `name` on two connections (commands, and the blocking event reader). */
  static async open(connection: Redis, blocking: Redis, name: string): Promise<TaskQueue> {
    const queue = new Queue(checkName(name), { connection, prefix: PREFIX });
    const events = new QueueEvents(name, { connection: blocking, prefix: PREFIX, autorun: true });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return new TaskQueue(queue, events);
  }

  /**
   * Clears every job of an earlier run of this name (a new run, or one started over): no outcome of
   * another configuration may be taken for this one. Adding tasks then needs no look for earlier jobs.
   */
  async clear(): Promise<void> {
    await this.#queue.obliterate({ force: true });
    this.#fresh = true;
  }

  /** Adds the task (unless its job is there already) and resolves with its outcome, or undefined if it was not run. */
  run(task: Task): Promise<Outcome | undefined> {
    const id = jobIdOf(interactionId(task.personaId, task.queryId));
    return new Promise<Outcome | undefined>((resolve, reject) => {
      this.#waiting.set(id, { task, resolve, reject, checkedAt: Date.now() });
      this.#add(id, task).then(
        () => this.#check(id),
        (error: unknown) => {
          this.#waiting.delete(id);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  async #add(id: string, task: Task): Promise<void> {
    if (this.#fresh) {
      await this.#queue.add('task', task, { jobId: id, ...JOB_OPTIONS });
      return;
    }
    const existing = await this.#queue.getJob(id);
    if (existing !== undefined) {
      const state = await existing.getState();
      const result = existing.returnvalue as JobResult | null | undefined;
      // An earlier producer's job: an interaction it left is taken (it was paid for); a failure, a skip or
      // a job BullMQ gave up on is run again, as a resume retries failures.
      const reuse = state === 'completed' ? result !== null && result !== undefined && 'outcome' in result && result.outcome.ok : state !== 'failed' && state !== 'unknown';
      if (reuse || existing.timestamp >= this.#started) return;
      await existing.remove().catch(() => undefined);
    }
    await this.#queue.add('task', task, { jobId: id, ...JOB_OPTIONS });
  }

  /** A completion event: its return value settles the waiter at once (a value not understood is looked up). */
  #completed(id: string, returnvalue: unknown): void {
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return;
    let result: unknown = returnvalue;
    try {
      if (typeof result === 'string') result = JSON.parse(result);
    } catch {
      result = undefined;
    }
    if (typeof result !== 'object' || result === null || !('outcome' in result || 'skipped' in result)) {
      void this.#check(id);
      return;
    }
    this.#waiting.delete(id);
    waiter.resolve('outcome' in result ? (result as { outcome: Outcome }).outcome : undefined);
  }

  /** Looks the job up and settles its waiter if it has finished (or vanished); never throws (the next sweep asks again). */
  async #check(id: string): Promise<void> {
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return;
    waiter.checkedAt = Date.now();
    let state: string;
    let job: Job | undefined;
    try {
      // The state first: a job read before it completes has no return value yet, one read after always has.
      state = await this.#queue.getJobState(id);
      if (state === 'completed' || state === 'failed') job = await this.#queue.getJob(id);
    } catch {
      return;
    }
    if (this.#waiting.get(id) !== waiter) return;
    const result = job?.returnvalue as JobResult | null | undefined;
    if (state === 'completed' && job !== undefined && result !== null && result !== undefined) {
      this.#waiting.delete(id);
      waiter.resolve('outcome' in result ? result.outcome : undefined);
    } else if (state === 'failed' && job !== undefined) {
      this.#waiting.delete(id);
      waiter.resolve({ ok: false, failure: workerFailure(waiter.task, job.failedReason, job.attemptsMade), task: waiter.task });
    } else if (state === 'unknown') {
      // Removed (drained after a stop) before a worker took it: not run.
      this.#waiting.delete(id);
      waiter.resolve(undefined);
    }
  }

  /** Removes the job of an outcome now written (by its interaction id), so Redis holds only the jobs in flight. */
  async written(id: string): Promise<void> {
    await this.#queue.remove(jobIdOf(id)).catch(() => undefined);
  }

  /** Removes the jobs no worker has taken yet (a stop): their `run` resolves undefined. */
  async drain(): Promise<void> {
    await this.#queue.drain();
    for (const id of this.#waiting.keys()) void this.#check(id);
  }

  /** Outstanding jobs: waiting for a worker, or being worked on. */
  async counts(): Promise<{ waiting: number; active: number }> {
    const counts = await this.#queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return { waiting: (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0), active: counts.active ?? 0 };
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    for (const waiter of this.#waiting.values()) waiter.reject(new Error('the queue was closed'));
    this.#waiting.clear();
    await Promise.all([this.#events.close(), this.#queue.close()]);
  }
}

/** The failure of a task whose job BullMQ gave up on (the worker's code failed on every attempt). */
function workerFailure(task: Task, reason: string | undefined, attempts: number): Failure {
  const unknown = { provider: 'unknown', model: 'unknown' };
  return {
    persona_id: task.personaId,
    query_id: task.queryId,
    interaction_id: interactionId(task.personaId, task.queryId),
    attempts,
    error: { kind: 'worker', message: reason ?? 'the worker failed' },
    assistant_model: unknown,
    user_model: unknown,
    time: new Date().toISOString(),
    usage: {},
    ...(task.supplementRound === undefined ? {} : { supplement_round: task.supplementRound }),
  };
}
