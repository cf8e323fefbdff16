// generate --queue: the producer's side of a queue run (tasks in as jobs, outcomes back to be written, the run's shared state read).
import type { Redis } from 'ioredis';
import { defer, mergeMap } from 'rxjs';
import { ConfigError, FatalError } from '../errors.js';
import type { SharedLimitsFactory } from '../limits/shared.js';
import type { GenerateOptions } from '../pipeline.js';
import { TaskQueue, checkName } from '../queue/jobs.js';
import { redisLimits } from '../queue/limits.js';
import { connect, queueAddress, reachable, type QueueAddress } from '../queue/redis.js';
import { QueueRun, UsageRecorder, type QueueRecord, type RunCounters } from '../queue/run.js';
import type { PriceTable, UsageTotals } from '../sinks/usage.js';
import type { Sink } from '../sinks/sink.js';
import { KeySet } from '../streams/seen.js';
import type { Outcome } from '../types.js';
import { explainChange } from './summary.js';

/** How often the producer reads the run's counters (progress, budget, a worker's fatal error). */
const POLL_MS = 500;

const EMPTY: RunCounters = { begun: 0, settled: 0, cost: 0, tokens: 0, calls: 0, retries: 0, reached: false, fatal: undefined, done: false };

/**
 * The producer of a queue run: it publishes the run's record (settings, fingerprint, budget) for the
 * workers, turns each task into a job and each job's outcome back into a line the run's sink writes,
 * once (a KeySet of the ids written guards it), and reads the run's counters for progress, the budget
 * and the workers' fatal errors. The model calls the producer makes itself (supplement's query
 * generator) share the workers' limits and count in the run's usage.
 */
export class QueueProducer {
  readonly #redis: Redis;
  readonly #blocking: Redis;
  readonly #jobs: TaskQueue;
  readonly #written = new KeySet();
  readonly #poll: NodeJS.Timeout;
  #counters: RunCounters = EMPTY;
  #created = true;
  #onFatal: (error: FatalError) => void = () => undefined;
  /** Outcomes that came back twice (never written twice). */
  duplicates = 0;

  private constructor(
    readonly address: QueueAddress,
    readonly run: QueueRun,
    readonly recorder: UsageRecorder,
    readonly shared: SharedLimitsFactory,
    connections: { redis: Redis; blocking: Redis },
    jobs: TaskQueue,
  ) {
    this.#redis = connections.redis;
    this.#blocking = connections.blocking;
    this.#jobs = jobs;
    this.#poll = setInterval(() => void this.refresh().catch(() => undefined), POLL_MS);
    this.#poll.unref();
  }

  /** Connects to the queue's Redis (`--queue URL`) and opens the run `name` there. */
  static async connect(url: string, name: string, prices: PriceTable): Promise<QueueProducer> {
    const address = queueAddress(url);
    const redis = connect(address);
    try {
      await reachable(redis, address);
      const blocking = connect(address, { blocking: true });
      const run = new QueueRun(redis, checkName(name));
      const jobs = await TaskQueue.open(redis, blocking, name);
      return new QueueProducer(address, run, new UsageRecorder(run, prices), redisLimits(redis), { redis, blocking }, jobs);
    } catch (error) {
      redis.disconnect();
      throw error;
    }
  }

  /**
   * Publishes the run's record. A run of this name made with another configuration is refused unless
   * `force` (which starts it over); one made with the same configuration is continued (its finished
   * jobs are outcomes of these very settings).
   */
  async publish(record: QueueRecord, force: boolean): Promise<void> {
    const existing = await this.run.record();
    if (existing !== undefined && existing.config_fingerprint !== record.config_fingerprint && !force) {
      throw new ConfigError(`--queue ${this.address.shown}: the run named ${this.run.name} there ${explainChange(existing, record).replace(/^it /, '')}; use --name for another run, or --force to start this one over`);
    }
    // A new run (or one started over) takes no job an earlier run of this name left behind: cleared
    // before the record appears, so no worker waiting for it sees the old jobs.
    const continued = existing !== undefined && existing.config_fingerprint === record.config_fingerprint;
    if (!continued) await this.#jobs.clear();
    this.#created = (await this.run.publish(record, !continued)).created;
    await this.refresh();
  }

  /** Whether this producer started the run (else it continues one an earlier producer started). */
  get created(): boolean {
    return this.#created;
  }

  /** The run's counters, as last read. */
  get counters(): RunCounters {
    return this.#counters;
  }

  /** Called once when a worker reports an error that ends the run. */
  set onFatal(handler: (error: FatalError) => void) {
    this.#onFatal = handler;
  }

  async refresh(): Promise<void> {
    this.#counters = await this.run.counters();
    if (this.#counters.fatal !== undefined) {
      const handler = this.#onFatal;
      this.#onFatal = () => undefined;
      handler(new FatalError(this.#counters.fatal));
    }
  }

  /** True once the run's budget is reached or a worker failed for good: read no more input. */
  stopped(): boolean {
    return this.#counters.reached || this.#counters.fatal !== undefined;
  }

  /** The pipeline's remote step: each task a job, `backlog` tasks at most queued or in progress. */
  remote(backlog: number): NonNullable<GenerateOptions['remote']> {
    return { window: backlog, step: mergeMap((task) => defer(() => this.#jobs.run(task))) };
  }

  /** Writes an outcome (once per interaction id) and removes its job. */
  async write(outcome: Outcome, sink: Sink): Promise<void> {
    const id = outcome.ok ? outcome.interaction.interaction_id : outcome.failure.interaction_id;
    if (this.#written.add(id)) await sink.write(outcome);
    else this.duplicates += 1;
    await this.#jobs.written(id);
  }

  /** Removes the tasks no worker has started (a stop). */
  async drain(): Promise<void> {
    await this.#jobs.drain();
  }

  /**
   * After the last outcome: this run's usage (summed over every process, from Redis) into `totals`, so
   * usage.json and the summary hold it; with `completed`, tells the workers the run is done.
   */
  async end(totals: UsageTotals, completed: boolean): Promise<void> {
    clearInterval(this.#poll);
    await this.recorder.close().catch(() => undefined);
    totals.merge(await this.run.usage(), { counts: false, thisRun: true });
    await this.refresh().catch(() => undefined);
    if (completed) await this.run.finish();
  }

  async close(): Promise<void> {
    clearInterval(this.#poll);
    await this.#jobs.close().catch(() => undefined);
    await Promise.all([this.#redis.quit().catch(() => undefined), this.#blocking.quit().catch(() => undefined)]);
  }
}
