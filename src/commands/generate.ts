// `personaflow generate`: personas in, one conversation per persona × query, interactions out (stdout or --out DIR).
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Subscription } from 'rxjs';
import { loadConfig } from '../config/load.js';
import { type Config } from '../config/schema.js';
import { batchPrices } from '../batch/prices.js';
import { setUpBatch, type BatchRun } from '../batch/setup.js';
import { ConfigError, FatalError, describeError } from '../errors.js';
import type { Judge } from '../judge/judge.js';
import type { RunModels } from '../models/build.js';
import { retryingCall } from '../operators/retryingCall.js';
import type { RoundReport } from '../operators/supplement.js';
import { generate, type GenerateOptions } from '../pipeline.js';
import type { QuerySetup } from '../queries/setup.js';
import { DEFAULT_BACKLOG, DEFAULT_RUN_NAME, redact } from '../queue/address.js';
import { DirSink, outputIn } from '../sinks/dir.js';
import type { RunRecord } from '../sinks/layout.js';
import { startProgress, type ProgressSource } from '../sinks/progress.js';
import { readOutput, type OutputState } from '../sinks/resume.js';
import { StreamSink, type Sink } from '../sinks/sink.js';
import { BrokenPipeError } from '../sinks/stdout.js';
import { UsageTotals, priceOf } from '../sinks/usage.js';
import { openInput } from '../streams/ndjson.js';
import { readTasks } from '../streams/personas.js';
import { stoppable } from '../streams/pull.js';
import { inShard, shardName, type Shard } from '../streams/shard.js';
import { countPersonas, counted, skipWritten, type SkipCounts } from '../streams/tasks.js';
import type { Outcome as GenerateOutcome, Task } from '../types.js';
import { Budget } from './budget.js';
import { assertReadable, version } from './common.js';
import type { QueueProducer } from './queued.js';
import { Reporter } from './reporter.js';
import { runFingerprint, settingsOf, setUpConversations, type NoiseMode } from './setup.js';
import { StopSignals } from './signals.js';
import { explainChange, judgeLine, rejectionsLine, resumeCommand, resumedLine, summaryLine, targetsLine } from './summary.js';

export interface GenerateFlags {
  config?: string;
  out?: string;
  force?: boolean;
  provider?: string;
  model?: string;
  baseUrl?: string;
  concurrency?: number;
  threads?: number;
  seed?: number;
  minTurns?: number;
  maxTurns?: number;
  strict?: boolean;
  quiet?: boolean;
  noise?: NoiseMode;
  queries?: string;
  supplementRounds?: number;
  resume?: boolean;
  retryFailed?: boolean;
  maxCost?: number;
  progress?: 'json';
  /** `--judge` / `--no-judge` (else `judge.enabled`). */
  judge?: boolean;
  shard?: Shard;
  /** `--queue redis://...`: the conversations run on workers (`personaflow worker`) that take tasks from this Redis. */
  queue?: string;
  /** `--name`: the queue run's name (default `personaflow`). */
  name?: string;
  /** `--backlog`: tasks queued or in progress at most (with --queue). */
  backlog?: number;
  /** `--batch`: every call through the provider's Batch API, round by round (else `batch.enabled`). */
  batch?: boolean;
}

export type { NoiseMode };

/** Seconds the conversations in flight get to finish after the first Ctrl-C. */
const GRACE_SECONDS = 30;

/** Everything a run is made of, set up from the config and the flags before the first call. */
interface Run {
  readonly file: string | undefined;
  readonly flags: GenerateFlags;
  readonly report: Reporter;
  readonly config: Config;
  readonly models: RunModels;
  readonly options: Omit<GenerateOptions, 'supplement'>;
  readonly rounds: number;
  readonly queries: QuerySetup;
  readonly totals: UsageTotals;
  readonly previous: OutputState | undefined;
  readonly sink: Sink;
  readonly dir: DirSink | undefined;
  /** The judge, when one runs. */
  readonly judge: Judge | undefined;
  /** With --queue: the producer's side of the queue run. */
  readonly queue: QueueProducer | undefined;
  /** With --batch: the rounds and their record in --out. */
  readonly batch: BatchRun | undefined;
}

/** Runs `personaflow generate` and returns its exit code. */
export async function runGenerate(file: string | undefined, flags: GenerateFlags): Promise<number> {
  const started = Date.now();
  const run = await prepare(file, flags, new Reporter(flags.quiet === true));
  const input = openInput(file);
  const skips: SkipCounts = { skipped: 0, retried: 0, compensated: 0 };
  const tasks = countPersonas(tasksOf(run, input.stream, input.name, skips));
  const budget = new Budget(flags.maxCost, run.totals);
  const counts = { retries: 0 };
  const reports: RoundReport[] = [];
  const mode = flags.progress === 'json' ? 'json' : flags.quiet === true || process.stderr.isTTY !== true ? 'none' : 'live';
  const display = await startProgress(mode, progressSource(run, budget, counts, file, input.stream), (line) => (run.report.live = line));
  // First Ctrl-C: stop reading and let the conversations in flight finish (they are paid for); a second
  // one, or the grace period running out, aborts them.
  let abort = (): void => undefined;
  const signals = new StopSignals({
    graceSeconds: GRACE_SECONDS,
    onStop: () => {
      input.stream.destroy();
      void run.queue?.drain().catch(() => undefined);
      run.report.say(`stopping: no new conversations; finishing those in flight (up to ${GRACE_SECONDS} s; Ctrl-C again to abort them)`);
    },
    onAbort: () => abort(),
  });
  const { queue } = run;
  if (queue !== undefined) run.report.notice(`queue run ${queue.run.name} on ${queue.address.shown}: start workers on any machine with: personaflow worker --queue ${queue.address.shown}${flags.name === undefined ? '' : ` --name ${flags.name}`}${flags.config === undefined ? '' : ` -c ${flags.config}`}`);
  // With a queue, the workers count the conversations they begin and keep the budget for the whole run.
  const stopped = (): boolean => signals.stopping || (queue === undefined ? budget.over() : queue.stopped());
  const source = queue === undefined ? counted(stoppable(tasks, stopped), () => budget.begin()) : stoppable(tasks, stopped);
  const write = (o: GenerateOutcome): Promise<void> => (queue === undefined ? run.sink.write(o) : queue.write(o, run.sink));
  const outcome = await new Promise<Outcome>((resolve) => {
    const options = pipelineOptions(run, { stopped, onRetry: () => (counts.retries += 1), onRound: (report) => reports.push(report) });
    const subscription: Subscription = generate(source, options, write).subscribe({
      error: (error: unknown) => resolve({ error, interrupted: signals.stopping }),
      complete: () => resolve({ interrupted: signals.stopping }),
    });
    abort = () => {
      subscription.unsubscribe();
      resolve({ interrupted: true });
    };
    if (queue !== undefined) {
      queue.onFatal = (error) => {
        subscription.unsubscribe();
        resolve({ error });
      };
    }
  });
  if (queue !== undefined) await queue.end(run.totals, outcome.error === undefined && outcome.interrupted !== true);
  await run.models.close(); // a loaded llama model is released here
  await run.batch?.close();
  display.stop();
  signals.close();
  await run.queries.dataset?.close();
  try {
    return await finish(run, outcome, { started, retries: queue === undefined ? counts.retries : queue.counters.retries, reports, personas: tasks.personas, skips, budget: queue === undefined ? budget : { reached: queue.counters.reached } });
  } finally {
    await queue?.close();
  }
}

/** How the pipeline ended: an error that stopped it, and whether a signal did. */
interface Outcome {
  readonly error?: unknown;
  readonly interrupted?: boolean;
}

/** Loads the config, builds the models, the prompts, the distractor and the query side, and opens the sink. */
async function prepare(file: string | undefined, flags: GenerateFlags, report: Reporter): Promise<Run> {
  const loaded = await loadConfig(flags.config);
  const { config } = loaded;
  const settings = settingsOf(config, flags);
  await assertReadable(file, 'personas');
  if (flags.queries !== undefined) await assertReadable(flags.queries, 'query');
  const batch = batchRun(config, flags, report);
  const totals = new UsageTotals(batch === undefined ? config.personaflow.prices : batchPrices(config.personaflow.prices));
  if (flags.queue === undefined && (flags.name !== undefined || flags.backlog !== undefined)) throw new ConfigError(`${flags.name === undefined ? '--backlog' : '--name'} needs --queue redis://HOST (the conversations run on workers that take tasks from that Redis)`);
  // The queue's code (BullMQ, ioredis) is loaded only by runs that use one.
  const queue = flags.queue === undefined ? undefined : await (await import('./queued.js')).QueueProducer.connect(flags.queue, flags.name ?? DEFAULT_RUN_NAME, config.personaflow.prices);
  try {
    // With a queue, every billed call (the workers', and this process's supplement generator) is counted in Redis.
    const onUsage = queue === undefined ? totals.call.bind(totals) : queue.recorder.call;
    const conversations = await setUpConversations(loaded, settings, { concurrency: flags.concurrency ?? (batch === undefined ? undefined : config.batch.conversations), threads: flags.threads, strict: flags.strict, quiet: flags.quiet, shared: queue?.shared, onUsage, batch: batch?.model }, report);
    const { models, queries, judge } = conversations;
    // In batch mode a failed request waits for the next round anyway: no backoff before it joins it.
    const options = batch === undefined ? conversations.options : { ...conversations.options, retryDelayMs: 0 };
    if (flags.maxCost !== undefined) assertPriced(config, models);
    if (flags.resume === true && flags.out === undefined) throw new ConfigError('--resume needs --out DIR (the directory of the run to continue)');
    // What shapes the output, beside the config file: a resume with other settings is refused (--force overrides).
    // The shard is not a setting: the shards of one run share a fingerprint, so `merge` can check they belong together.
    const record: RunRecord = { version: version(), seed: settings.seed, config_fingerprint: runFingerprint(config, settings), settings: { ...settings }, created_at: new Date().toISOString(), ...(flags.shard === undefined ? {} : { shard: shardName(flags.shard) }) };
    let previous = await previousRun(flags, record, report);
    if (queue !== undefined) {
      await queue.publish({ ...record, max_cost: flags.maxCost ?? null }, flags.force === true);
      // A queue run continued: its usage in Redis already holds what DIR's usage.json counted.
      if (!queue.created && previous !== undefined) previous = { ...previous, usage: { interactions: previous.count, failures: previous.failedCount } };
    }
    const dir = flags.out === undefined ? undefined : await DirSink.open(flags.out, { force: flags.force === true, usage: totals, run: record, ...(previous === undefined ? {} : { resume: previous }) });
    if (batch !== undefined && dir !== undefined) await batch.start(dir.dir, previous !== undefined);
    const sink: Sink = dir ?? new StreamSink(process.stdout, totals, (failure) => report.say(`failed ${failure.persona_id}/${failure.query_id} after ${failure.attempts} attempt(s): ${failure.error.kind}: ${failure.error.message}`));
    return { file, flags, report, config, models, options, rounds: settings.supplement_rounds, queries, totals, previous, sink, dir, queue, judge, batch };
  } catch (error) {
    // Its connections would keep the process alive after the error is reported.
    await queue?.close();
    throw error;
  }
}

/** With --batch (or batch.enabled): the rounds, once the flags allow them. */
function batchRun(config: Config, flags: GenerateFlags, report: Reporter): BatchRun | undefined {
  if ((flags.batch ?? config.batch.enabled) !== true) return undefined;
  if (flags.out === undefined) throw new ConfigError('--batch needs --out DIR: the batch and file ids are recorded there as they are created, so a resumed run reattaches to them instead of paying again');
  if (flags.queue !== undefined) throw new ConfigError('--batch and --queue do not go together: a batch run submits every conversation\'s next call from this one process');
  return setUpBatch(config, (line) => {
    if (flags.quiet !== true) report.say(line);
  });
}

/** --max-cost needs a price for every model the run calls. */
function assertPriced(config: Config, models: RunModels): void {
  const called = [...models.pool.entries.map((entry) => entry.model), models.user.model, ...[models.distractor, models.queries, models.judge].flatMap((m) => (m === undefined ? [] : [m.model]))];
  const unpriced = [...new Set(called.filter((m) => priceOf(config.personaflow.prices, m.provider, m.model) === undefined).map((m) => `${m.provider}/${m.model}`))];
  if (unpriced.length > 0) throw new ConfigError(`--max-cost needs a price for every model the run calls; none for ${unpriced.join(', ')} (add it under personaflow.prices, USD per million input/output tokens)`);
}

/** With --resume: what DIR holds (repaired), checked against this run's settings. */
async function previousRun(flags: GenerateFlags, record: RunRecord, report: Reporter): Promise<OutputState | undefined> {
  if (flags.out === undefined || flags.resume !== true || (await outputIn(flags.out)).length === 0) return undefined;
  const previous = await readOutput(flags.out);
  for (const repair of previous.repairs) report.say(`--out ${flags.out}: ${repair}`);
  const before = previous.run;
  if (before !== undefined && before.config_fingerprint !== record.config_fingerprint && flags.force !== true) {
    throw new ConfigError(`--out ${flags.out}: ${explainChange(before, record)}; resuming would mix two configurations in one dataset. Use the same settings, or --resume --force to continue anyway`);
  }
  if (before !== undefined && (before.shard ?? null) !== (record.shard ?? null) && flags.force !== true) {
    throw new ConfigError(`--out ${flags.out}: it holds ${before.shard === undefined ? 'a whole run' : `shard ${before.shard}`}, not ${record.shard === undefined ? 'a whole run' : `shard ${record.shard}`}; resuming would mix two shards in one directory. Use the same --shard, or --resume --force to continue anyway`);
  }
  if (before === undefined) report.notice(`--out ${flags.out}: no run.json (written by an older version?); cannot check that the settings match`);
  return previous;
}

/** The tasks of the input: persona lines expanded (with the query dataset), less what a resume already has. */
function tasksOf(run: Run, stream: Readable, name: string, skips: SkipCounts): AsyncIterable<Task> {
  const { options, config, queries, flags } = run;
  const qg = config.query_generation;
  const tasks = readTasks(stream, {
    name,
    seed: options.seed,
    minTurns: options.minTurns,
    maxTurns: options.maxTurns,
    strict: flags.strict === true,
    onWarning: (message) => run.report.warn(message),
    queries: queries.dataset === undefined ? undefined : { dataset: queries.dataset, perPersona: qg.selection.queries_per_persona, strategy: qg.selection.strategy },
  });
  const mine = flags.shard === undefined ? tasks : inShard(tasks, flags.shard);
  return run.previous === undefined ? mine : skipWritten(run.previous, flags.retryFailed !== false, skips, mine);
}

/** The pipeline's options: the run's, the hooks of this invocation, and the supplement rounds when a generator is set up. */
function pipelineOptions(run: Run, hooks: { readonly stopped: () => boolean; readonly onRetry: () => void; readonly onRound: (report: RoundReport) => void }): GenerateOptions {
  const { options, queries, totals, rounds, previous, config } = run;
  const ig = config.interaction_generation;
  return {
    ...options,
    onRetry: hooks.onRetry,
    remote: run.queue?.remote(run.flags.backlog ?? DEFAULT_BACKLOG),
    // With a judge, always: even without rounds it says who is short and why.
    supplement:
      queries.generator === undefined && run.judge === undefined
        ? undefined
        : {
            rounds: queries.generator === undefined ? 0 : rounds,
            generator: queries.generator,
            call: retryingCall({ maxRetries: ig.max_retries, retryDelayMs: ig.retry_delay * 1000, onRetry: hooks.onRetry, onUsage: totals.call.bind(totals) }),
            concurrency: options.concurrency,
            onRound: hooks.onRound,
            onGeneratorError: (personaId, error) => run.report.say(`supplement: no new queries for persona ${personaId}: ${describeError(error)}`),
            stopped: hooks.stopped,
            ...(previous === undefined ? {} : { isWritten: (id: string) => previous.done.has(id) }),
          },
  };
}

/** What the progress display reads. */
function progressSource(run: Run, budget: Budget, counts: { readonly retries: number }, file: string | undefined, stream: NodeJS.ReadableStream): ProgressSource {
  const { totals, models, queue } = run;
  if (queue !== undefined) {
    // The whole run's figures, summed over the workers in Redis.
    return {
      interactions: () => totals.interactions,
      begun: () => queue.counters.begun,
      failures: () => totals.failures,
      rejected: () => totals.judgeRejected,
      retries: () => queue.counters.retries,
      tokens: () => queue.counters.tokens,
      cost: () => queue.counters.cost,
      input: inputProgress(file, stream),
      limiters: () => new Map(),
    };
  }
  return {
    interactions: () => totals.interactions,
    begun: () => budget.begun,
    failures: () => totals.failures,
    rejected: () => totals.judgeRejected,
    retries: () => counts.retries,
    tokens: () => totals.runTokens,
    cost: () => (totals.unpriced.length === 0 ? totals.runCost : undefined),
    input: inputProgress(file, stream),
    limiters: () => new Map([...models.limiters].map(([key, limiter]) => [key, { name: limiter.name, state: limiter.state }])),
  };
}

/** How much of a file input has been read (stdin has no size: undefined). */
function inputProgress(file: string | undefined, stream: NodeJS.ReadableStream): () => { read: number; size: number } | undefined {
  if (file === undefined || file === '-') return () => undefined;
  let size: number | undefined;
  void stat(file).then((info) => (size = info.size), () => undefined);
  return () => (size === undefined ? undefined : { read: (stream as unknown as { bytesRead?: number }).bytesRead ?? 0, size });
}

/** The flags a resume command must repeat to continue the same run. */
const resumeFlags = (flags: GenerateFlags): { config?: string; shard?: string; queue?: string } => ({
  ...(flags.config === undefined ? {} : { config: flags.config }),
  ...(flags.shard === undefined ? {} : { shard: shardName(flags.shard) }),
  ...(flags.queue === undefined ? {} : { queue: `${redact(flags.queue)}${flags.name === undefined ? '' : ` --name ${flags.name}`}` }),
});

/** Closes the sink, says how the run went, and picks the exit code. */
async function finish(run: Run, outcome: Outcome, done: { readonly started: number; readonly retries: number; readonly reports: readonly RoundReport[]; readonly personas: number; readonly skips: SkipCounts; readonly budget: { readonly reached: boolean } }): Promise<number> {
  const { flags, report, totals, file } = run;
  if (outcome.error instanceof BrokenPipeError) return 0;
  try {
    await run.sink.close();
  } catch (error) {
    if (error instanceof BrokenPipeError) return 0;
    throw error;
  }
  if (outcome.error !== undefined) {
    // The run stops (a bad key, a dead endpoint): what is written stays, and a resume carries on.
    if (flags.out !== undefined && outcome.error instanceof FatalError) report.say(`${outcome.error.message}\npersonaflow: what finished is in ${flags.out}; once the cause is fixed: ${resumeCommand(file, flags.out, resumeFlags(flags))}`);
    else throw outcome.error instanceof Error ? outcome.error : new Error(describeError(outcome.error));
    return outcome.error.exitCode;
  }
  const interrupted = outcome.interrupted === true;
  if (flags.quiet !== true || interrupted) {
    report.say(summaryLine(totals, { retries: done.retries, warnings: report.warnings, seconds: (Date.now() - done.started) / 1000, interrupted, dir: run.dir?.dir }));
    const rejected = rejectionsLine(totals, run.dir?.dir);
    if (rejected !== undefined) report.say(rejected);
    if (run.judge !== undefined) report.say(judgeLine(totals, run.dir?.dir));
    if (done.reports.length > 0) report.say(targetsLine(done.personas, done.reports, run.rounds));
    if (run.previous !== undefined) report.say(resumedLine(flags.out ?? '', run.previous.count, done.skips));
  }
  if (interrupted && flags.out !== undefined) report.say(`to continue where this run stopped: ${resumeCommand(file, flags.out, resumeFlags(flags))}`);
  if (interrupted) return 130;
  if (done.budget.reached) {
    report.say(`budget reached: $${totals.runCost.toFixed(4)} spent of --max-cost $${String(flags.maxCost)}; no new conversations were started after that${flags.out === undefined ? '' : `. To continue: ${resumeCommand(file, flags.out, resumeFlags(flags))} --max-cost <more>`}`);
    return 3;
  }
  return totals.failures > 0 ? 3 : 0;
}
