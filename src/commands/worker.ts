// `personaflow worker --queue redis://HOST`: takes a queue run's tasks, holds their conversations, hands the outcomes back to its producer.
import type { Redis } from 'ioredis';
import { loadConfig } from '../config/load.js';
import { ConfigError, FatalError, describeError } from '../errors.js';
import type { JobResult } from '../queue/jobs.js';
import { redisLimits } from '../queue/limits.js';
import { DEFAULT_LOCK_MS, DEFAULT_RUN_NAME } from '../queue/address.js';
import { connect, queueAddress, reachable, type QueueAddress } from '../queue/redis.js';
import { QueueRun, UsageRecorder, type QueueRecord } from '../queue/run.js';
import { ConversationRunner, serveTasks } from '../queue/serve.js';
import type { Task } from '../types.js';
import { Reporter } from './reporter.js';
import { callLine, retryLine } from './verbose.js';
import { runFingerprint, setUpConversations, type RunSettings } from './setup.js';
import { StopSignals } from './signals.js';

export interface WorkerFlags {
  queue: string;
  name?: string;
  config?: string;
  concurrency?: number;
  threads?: number;
  lockMs?: number;
  quiet?: boolean;
  /** `--verbose`: a stderr line for every model call attempt and every retry. */
  verbose?: boolean;
}

/** Seconds the conversations in flight get to finish after the first Ctrl-C. */
const GRACE_SECONDS = 30;
/** How often a worker looks at the run's state (done, fatal). */
const POLL_MS = 500;

/** Resolves after `ms`, or at once when `stopped()` turns true (checked every 100 ms). */
async function pause(ms: number, stopped: () => boolean): Promise<void> {
  for (let waited = 0; waited < ms && !stopped(); waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
}

/** Waits for the producer's record of the run (a worker may start first); undefined if stopped meanwhile. */
async function waitForRecord(run: QueueRun, address: QueueAddress, report: Reporter, stopped: () => boolean): Promise<QueueRecord | undefined> {
  let said = false;
  for (;;) {
    const record = await run.record();
    if (record !== undefined || stopped()) return record;
    if (!said) report.notice(`waiting for a run named ${run.name} on ${address.shown} (start it with: personaflow generate ... --queue ${address.shown}${run.name === DEFAULT_RUN_NAME ? '' : ` --name ${run.name}`})`);
    said = true;
    await pause(1000, stopped);
  }
}

/** Runs `personaflow worker` and returns its exit code. */
export async function runWorker(flags: WorkerFlags): Promise<number> {
  const started = Date.now();
  const report = new Reporter(flags.quiet === true, flags.verbose === true);
  const address = queueAddress(flags.queue);
  const name = flags.name ?? DEFAULT_RUN_NAME;
  const lockMs = flags.lockMs ?? DEFAULT_LOCK_MS;
  const redis = connect(address);
  const connections: Redis[] = [redis];
  let stopping = false;
  let aborted = false;
  let finish: (code: number) => void = () => undefined;
  const ended = new Promise<number>((resolve) => (finish = resolve));
  const signals = new StopSignals({
    graceSeconds: GRACE_SECONDS,
    onStop: () => {
      stopping = true;
      report.say(`stopping: no new tasks; finishing the conversations in flight (up to ${GRACE_SECONDS} s; Ctrl-C again to hand them back to the queue)`);
    },
    onAbort: () => {
      aborted = true;
      finish(130);
    },
  });
  try {
    await reachable(redis, address);
    const run = new QueueRun(redis, name);
    const record = await waitForRecord(run, address, report, () => stopping);
    if (record === undefined) return 130;
    const loaded = await loadConfig(flags.config);
    const settings = record.settings as unknown as RunSettings;
    if (runFingerprint(loaded.config, settings) !== record.config_fingerprint) {
      throw new ConfigError(`run ${name} on ${address.shown} was started with another configuration than ${flags.config ?? 'the default one'} (its settings: ${JSON.stringify(record.settings)}); give this worker the producer's config file with -c`);
    }
    const recorder = new UsageRecorder(run, loaded.config.personaflow.prices);
    const { models, options } = await setUpConversations(loaded, settings, { concurrency: flags.concurrency, threads: flags.threads, quiet: flags.quiet, shared: redisLimits(redis), dataset: false, judging: false, onUsage: recorder.call, onNotice: (message) => report.say(message), onWarning: (message) => report.warning(message), onCall: report.verbose ? (call) => report.detail(callLine(call)) : undefined }, report);
    const runner = new ConversationRunner({
      ...options,
      onRetry: (module, error, note) => {
        report.detail(retryLine(module, error, note, options.maxRetries));
        void run.retry().catch(() => undefined);
      },
    });
    const counts = { interactions: 0, failures: 0, skipped: 0 };
    let fatal: FatalError | undefined;
    const work = async (task: Task): Promise<JobResult> => {
      if (!(await run.begin(record.max_cost))) {
        counts.skipped += 1;
        return { skipped: 'budget' };
      }
      try {
        const outcome = await runner.run(task);
        if (outcome.ok) counts.interactions += 1;
        else counts.failures += 1;
        // This task's calls are counted before its outcome is handed in, so the producer's totals hold them.
        await recorder.flush();
        return { outcome };
      } finally {
        await run.settle();
      }
    };
    const blocking = connect(address, { blocking: true });
    connections.push(blocking);
    const worker = serveTasks(blocking, name, {
      concurrency: options.concurrency * 2,
      lockMs,
      process: work,
      onFatal: (error) => {
        fatal ??= error;
        void run.fail(error.message).catch(() => undefined);
        finish(1);
      },
    });
    worker.on('error', () => undefined);
    report.notice(`worker on ${address.shown}, run ${name}: up to ${options.concurrency} conversations at once`);
    const poll = setInterval(() => {
      if (stopping) finish(130);
      void run.counters().then(
        (counters) => {
          if (counters.done) finish(0);
        },
        () => undefined,
      );
    }, POLL_MS);
    const code = await ended;
    clearInterval(poll);
    // Done or stopping: finish what is in flight (BullMQ waits for the active jobs); aborted or fatal:
    // hand them back at once (their locks lapse and another worker takes them).
    if (aborted || fatal !== undefined) {
      runner.close();
      await worker.close(true);
    } else {
      const forced = setTimeout(() => {
        runner.close();
        void worker.close(true);
      }, GRACE_SECONDS * 1000);
      await worker.close();
      clearTimeout(forced);
      runner.close();
    }
    await recorder.close().catch(() => undefined);
    await models.close();
    if (fatal !== undefined) {
      report.error(fatal.message);
      report.say('the task went back to the queue; this worker stops (the producer stops too and says how to resume)');
      return 1;
    }
    report.notice(`worker: ${counts.interactions} interactions, ${counts.failures} failures${counts.skipped > 0 ? `, ${counts.skipped} tasks left (budget reached)` : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return code;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof FatalError) throw error;
    throw new Error(`worker: ${describeError(error)}`, { cause: error });
  } finally {
    signals.close();
    await Promise.all(connections.map((c) => c.quit().catch(() => undefined)));
  }
}
