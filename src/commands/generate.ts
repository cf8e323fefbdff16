// `personaflow generate`: personas in, one conversation per persona × query, interactions out (stdout or --out DIR).
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { Subscription } from 'rxjs';
import type { RetryListener } from '../chat.js';
import { loadConfig } from '../config/load.js';
import { type Config } from '../config/schema.js';
import { batchPrices } from '../batch/prices.js';
import { setUpBatch, type BatchRun } from '../batch/setup.js';
import { ConfigError, FatalError, describeError } from '../errors.js';
import type { Judge } from '../judge/judge.js';
import { Drain, type Stopping } from '../limits/stop.js';
import type { RunModels } from '../models/build.js';
import type { RoundReport } from '../operators/supplement.js';
import { generate, type GenerateOptions } from '../pipeline.js';
import type { QuerySetup } from '../queries/setup.js';
import { DEFAULT_BACKLOG, DEFAULT_RUN_NAME, redact } from '../queue/address.js';
import { quoted, safeUrl } from '../redact.js';
import { DirSink, outputIn, ownFiles, prepareDirectory } from '../sinks/dir.js';
import { refuseLinks } from '../sinks/files.js';
import type { Invocation, RunRecord } from '../sinks/layout.js';
import { DirLock } from '../sinks/lock.js';
import { startProgress, type ProgressSource } from '../sinks/progress.js';
import { readOutput, type OutputState } from '../sinks/resume.js';
import { StreamSink, type Sink } from '../sinks/sink.js';
import { BrokenPipeError } from '../sinks/stdout.js';
import { UsageTotals, priceOf, type PriceTable } from '../sinks/usage.js';
import { openInput } from '../streams/ndjson.js';
import type { TaskOptions } from '../streams/personas.js';
import { stoppable } from '../streams/pull.js';
import { inShard, shardName } from '../streams/shard.js';
import { countPersonas, firstTasks, skipWritten, type SkipCounts } from '../streams/tasks.js';
import { unfinished, type Outcome as TaskOutcome, type Task } from '../types.js';
import { Budget, tokensOf, worstCase, type CostShape, type Price } from './budget.js';
import { assertReadable, version } from './common.js';
import { warnOverBudget } from './estimate.js';
import type { GenerateFlags } from './flags.js';
import { invocationOf, resumeCommand, resumeFlags } from './invocation.js';
import type { QueueProducer } from './queued.js';
import { Reporter } from './reporter.js';
import { callLine, retryLine } from './verbose.js';
import { RunWatch, countAhead } from './watch.js';
import { runFingerprint, runTasks, settingsOf, setUpConversations, supplementOf } from './setup.js';
import { StopSignals } from './signals.js';
import { explainChange, judgeLine, rejectionsLine, resultOf, resumedLine, summaryLine, targetsLine } from './summary.js';

export type { GenerateFlags, NoiseMode } from './flags.js';

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
  /** How the run was started (what run.json records), for the command that continues it. */
  readonly invocation: Invocation;
  /** What a conversation can cost at most, for --max-cost. */
  readonly shape: CostShape;
  /** The judge, when one runs. */
  readonly judge: Judge | undefined;
  /** With --queue: the producer's side of the queue run. */
  readonly queue: QueueProducer | undefined;
  /** With --batch: the rounds and their record in --out. */
  readonly batch: BatchRun | undefined;
}

/** What the run holds that must be let go however it ends: DIR's lock, and a way to stop the pipeline. */
interface Holds {
  lock: DirLock | undefined;
  fail: (error: FatalError) => void;
}

/** Runs `personaflow generate` and returns its exit code. */
export async function runGenerate(typedFile: string | undefined, typed: GenerateFlags): Promise<number> {
  const started = Date.now();
  const report = new Reporter(typed.quiet === true, typed.verbose === true);
  // `-o -` is stdout, not a directory named `-`.
  const { file, flags } = await resumeFlags(typedFile, typed.out === '-' ? { ...typed, out: undefined } : typed);
  const holds: Holds = { lock: undefined, fail: () => undefined };
  try {
    const run = await prepare(file, flags, report, holds);
    await warnOverBudget(file, flags, report);
    return await execute(run, holds, started);
  } finally {
    await holds.lock?.release();
  }
}

/** How the pipeline ended: an error that stopped it, and whether a signal did. */
interface Ending {
  readonly error?: unknown;
  readonly interrupted?: boolean;
}

/** Runs the pipeline over the input until it ends, a signal stops it or the budget is reached, then finishes. */
async function execute(run: Run, holds: Holds, started: number): Promise<number> {
  const { flags, queue } = run;
  const input = openInput(run.file);
  const skips: SkipCounts = { skipped: 0, retried: 0, compensated: 0 };
  const read = countPersonas(readInput(run, input.stream, input.name));
  const tasks = run.previous === undefined ? read : skipWritten(run.previous, flags.retryFailed !== false, skips, read);
  const budget = new Budget(flags.maxCost, () => run.totals.cost().total, (task) => worstCase(task, run.shape));
  const counts = { retries: 0 };
  const reports: RoundReport[] = [];
  // The progress total: the file's tasks counted alongside (stdin: known once read); the early stop and the top failure.
  const watch = new RunWatch(run.options.concurrency);
  const file = run.file === undefined || run.file === '-' ? undefined : run.file;
  const ahead = file === undefined ? undefined : countAhead(file, { tasks: countingOptions(run), shard: flags.shard, limit: typeof flags.limit === 'number' ? flags.limit : undefined, written: run.previous, retryFailed: flags.retryFailed !== false }, (message) => run.report.warning(message));
  const mode = flags.progress === 'json' ? 'json' : flags.quiet === true || process.stderr.isTTY !== true ? 'none' : 'live';
  const source = { ...progressSource(run, budget, counts, { file: run.file, stream: input.stream, exhausted: () => read.exhausted }), planned: () => ahead?.planned(), counting: () => ahead?.counting() === true, topFailure: () => watch.failures.top(), timings: watch.timings };
  const display = await startProgress(mode, source, { concurrency: queue === undefined ? run.options.concurrency : undefined }, (line) => (run.report.live = line));
  // First Ctrl-C: stop reading and let the conversations in flight finish (they are paid for); a second
  // one, or the grace period running out, aborts them.
  let abort = (): void => undefined;
  const drain = new Drain();
  const signals = new StopSignals({
    graceSeconds: GRACE_SECONDS,
    onStop: () => {
      input.stream.destroy();
      // A wait that would outlast the grace (a long Retry-After or reset) ends now; its conversation is left for a resume.
      const deadline = Date.now() + GRACE_SECONDS * 1000;
      drain.stop(deadline);
      for (const limiter of run.models.limiters.values()) limiter.stop(deadline);
      void run.queue?.drain().catch(() => undefined);
      run.report.say(`stopping: no new conversations; finishing those in flight (up to ${GRACE_SECONDS} s; Ctrl-C again to abort them)`);
    },
    onAbort: () => abort(),
  });
  if (queue !== undefined) run.report.notice(`queue run ${queue.run.name} on ${queue.address.shown}: start workers on any machine with: personaflow worker --queue ${queue.address.shown}${flags.name === undefined ? '' : ` --name ${flags.name}`}${flags.config === undefined ? '' : ` -c ${flags.config}`}`);
  // With a queue, the workers count the conversations they begin and keep the budget for the whole run.
  const stopped = (): boolean => signals.stopping || (queue === undefined ? budget.over() : queue.stopped());
  const ending = await new Promise<Ending>((resolveEnding) => {
    const onRetry: RetryListener = (module, error, note) => {
      counts.retries += 1;
      run.report.detail(retryLine(module, error, note, run.options.maxRetries));
    };
    const hooks = pipelineOptions(run, { stopped, stopping: drain, onRetry, onRound: (report) => reports.push(report) });
    const admit = async (task: Task): Promise<boolean> => {
      const admitted = (await budget.admit(task)) && !signals.stopping;
      if (admitted) watch.began(task);
      return admitted;
    };
    const options: GenerateOptions = queue === undefined ? { ...hooks, admit } : hooks;
    // A conversation cut short by the stop is neither an interaction nor a failure: nothing is written, a resume does it.
    // When the first conversations all failed alike, the run stops once the last of them is written (a resume retries them).
    const write = async (outcome: TaskOutcome): Promise<void> => {
      budget.settle(outcome);
      if (!unfinished(outcome)) await (queue === undefined ? run.sink.write(outcome) : queue.write(outcome, run.sink));
      const stop = watch.settled(outcome);
      if (stop !== undefined) holds.fail(new FatalError(stop));
    };
    const subscription: Subscription = generate(stoppable(tasks, stopped), options, write).subscribe({
      error: (error: unknown) => resolveEnding({ error, interrupted: signals.stopping }),
      complete: () => resolveEnding({ interrupted: signals.stopping }),
    });
    abort = () => {
      subscription.unsubscribe();
      resolveEnding({ interrupted: true });
    };
    // The lock lost to another run (see DirLock), or the queue failing: stop writing at once.
    holds.fail = (error) => {
      subscription.unsubscribe();
      resolveEnding({ error });
    };
    if (queue !== undefined) queue.onFatal = holds.fail;
  });
  ahead?.stop();
  if (queue !== undefined) await queue.end(run.totals, ending.error === undefined && ending.interrupted !== true);
  await run.models.close(); // a loaded llama model is released here
  await run.batch?.close();
  display.stop();
  signals.close();
  await run.queries.dataset?.close();
  try {
    return await finish(run, ending, { started, retries: queue === undefined ? counts.retries : queue.counters.retries, reports, personas: read.personas, tasks: read.tasks, skips, budget: queue === undefined ? budget : { reached: queue.counters.reached } });
  } finally {
    await queue?.close();
  }
}

/** Loads the config, builds the models, the prompts, the distractor, the judge and the query side; takes DIR's lock and opens the sink. */
async function prepare(file: string | undefined, flags: GenerateFlags, report: Reporter, holds: Holds): Promise<Run> {
  if (flags.resume === true && flags.out === undefined) throw new ConfigError('--resume needs --out DIR (the directory of the run to continue)');
  const loaded = await loadConfig(flags.config);
  const { config } = loaded;
  const settings = settingsOf(config, flags);
  await assertReadable(file, 'personas');
  const queriesFile = flags.queriesPath ?? flags.queries;
  if (queriesFile !== undefined) await assertReadable(queriesFile, 'query');
  const batch = batchRun(config, flags, report);
  // What the run pays: a batch run at batch prices, its usage and its worst cases alike.
  const prices = batch === undefined ? config.personaflow.prices : batchPrices(config.personaflow.prices);
  const totals = new UsageTotals(prices);
  if (flags.queue === undefined && (flags.name !== undefined || flags.backlog !== undefined)) throw new ConfigError(`${flags.name === undefined ? '--backlog' : '--name'} needs --queue redis://HOST (the conversations run on workers that take tasks from that Redis)`);
  // The queue's code (BullMQ, ioredis) is loaded only by runs that use one.
  const queue = flags.queue === undefined ? undefined : await (await import('./queued.js')).QueueProducer.connect(flags.queue, flags.name ?? DEFAULT_RUN_NAME, config.personaflow.prices);
  try {
    // With a queue, every billed call (the workers', and this process's supplement generator) is counted in Redis.
    const onUsage = queue === undefined ? totals.call.bind(totals) : queue.recorder.call;
    const conversations = await setUpConversations(
      loaded,
      settings,
      { concurrency: flags.concurrency ?? (batch === undefined ? undefined : config.batch.conversations), threads: flags.threads, strict: flags.strict, quiet: flags.quiet, shared: queue?.shared, onUsage, batch: batch?.model, queriesFile, simFallback: flags.model === undefined && loaded.named.length === 0, onNotice: (message) => report.say(message), onWarning: (message) => report.warning(message), onCall: report.verbose ? (call) => report.detail(callLine(call)) : undefined },
      report,
    );
    const { models, queries, judge, template } = conversations;
    // In batch mode a failed request waits for the next round anyway: no backoff before it joins it.
    const options = batch === undefined ? conversations.options : { ...conversations.options, retryDelayMs: 0 };
    if (flags.maxCost !== undefined) assertPriced(config, models);
    const invocation = invocationOf(file, flags);
    // What shapes the output, beside the config file: a resume with other settings is refused (--force overrides).
    // The fingerprint hashes the URL as given (so directories written before keep theirs); run.json shows it without credentials.
    // The shard is not a setting: the shards of one run share a fingerprint, so `merge` can check they belong together.
    const record: RunRecord = {
      version: version(),
      seed: settings.seed,
      config_fingerprint: runFingerprint(config, settings),
      settings: { ...settings, base_url: settings.base_url === null ? null : safeUrl(settings.base_url) },
      created_at: new Date().toISOString(),
      providers: models.providers,
      invocation,
      ...(flags.shard === undefined ? {} : { shard: shardName(flags.shard) }),
    };
    let previous: OutputState | undefined;
    let dir: DirSink | undefined;
    if (flags.out !== undefined) {
      // One writer per directory: the lock comes before anything in DIR is read, repaired or written.
      await prepareDirectory(flags.out);
      holds.lock = await DirLock.acquire(flags.out, { onTakeover: (why) => report.warning(why), onLost: (error) => holds.fail(error) });
      await refuseLinks(ownFiles(flags.out));
      previous = await previousRun(flags, record, report);
    }
    if (queue !== undefined) {
      await queue.publish({ ...record, max_cost: flags.maxCost ?? null }, flags.force === true);
      // A queue run continued: its usage in Redis already holds what DIR's usage.json counted.
      if (!queue.created && previous !== undefined) previous = { ...previous, usage: { interactions: previous.count, failures: previous.failedCount } };
    }
    if (flags.out !== undefined) dir = await DirSink.open(flags.out, { force: flags.force === true, usage: totals, run: record, ...(previous === undefined ? {} : { resume: previous }) });
    if (batch !== undefined && dir !== undefined) await batch.start(dir.dir, previous !== undefined);
    const sink: Sink = dir ?? new StreamSink(process.stdout, totals, (failure) => report.warning(`failed: persona ${quoted(failure.persona_id)} query ${quoted(failure.query_id)} after ${failure.attempts} attempt(s): ${failure.error.kind}: ${failure.error.message}`));
    const shape = costShape(prices, models, { minTurns: settings.min_turns, maxTurns: settings.max_turns, template, semantic: settings.noise === 'semantic', styleTransfer: queries.styleTransfer !== undefined, judge });
    return { file, flags, report, config, models, options, rounds: settings.supplement_rounds, queries, totals, previous, sink, dir, invocation, shape, judge, queue, batch };
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

/** A model without its own completion cap may write this many tokens, as far as a worst case goes. */
const UNCAPPED_TOKENS = 4096;
/** The fixed part of a helper's prompt (distractor layer, style transfer, the judge's rubric), as far as a worst case goes. */
const HELPER_PROMPT_TOKENS = 1024;

/** What a worst case needs from the run's models: caps, prices (the highest of the pool: the model is drawn later), fixed prompts. */
function costShape(prices: PriceTable, models: RunModels, run: { readonly minTurns: number; readonly maxTurns: number; readonly template: string; readonly semantic: boolean; readonly styleTransfer: boolean; readonly judge: Judge | undefined }): CostShape {
  const price = (model: { readonly provider: string; readonly model: string }): Price => priceOf(prices, model.provider, model.model) ?? { input: 0, output: 0 };
  const entries = models.pool.entries;
  const helper = (settings: RunModels['distractor']) =>
    settings === undefined ? undefined : { maxTokens: settings.maxCompletionTokens ?? UNCAPPED_TOKENS, price: price(settings.model), promptTokens: HELPER_PROMPT_TOKENS };
  return {
    minTurns: run.minTurns,
    maxTurns: run.maxTurns,
    assistant: {
      maxTokens: Math.max(...entries.map((entry) => entry.maxCompletionTokens ?? UNCAPPED_TOKENS)),
      price: { input: Math.max(...entries.map((entry) => price(entry.model).input)), output: Math.max(...entries.map((entry) => price(entry.model).output)) },
      promptTokens: 64,
    },
    user: { maxTokens: models.user.maxCompletionTokens ?? UNCAPPED_TOKENS, price: price(models.user.model), promptTokens: tokensOf(run.template) },
    distractor: run.semantic ? helper(models.distractor) : undefined,
    styleTransfer: run.styleTransfer ? helper(models.queries) : undefined,
    // The judge's review (a judge with only its checks calls no model).
    judge: run.judge === undefined ? undefined : helper(models.judge),
  };
}

/** With --resume: what DIR holds (repaired), checked against this run's settings. */
async function previousRun(flags: GenerateFlags, record: RunRecord, report: Reporter): Promise<OutputState | undefined> {
  if (flags.out === undefined || flags.resume !== true || (await outputIn(flags.out)).length === 0) return undefined;
  const previous = await readOutput(flags.out);
  for (const repair of previous.repairs) report.warning(`--out ${flags.out}: ${repair}`);
  const before = previous.run;
  if (before !== undefined && before.config_fingerprint !== record.config_fingerprint && flags.force !== true) {
    throw new ConfigError(`--out ${flags.out}: ${explainChange(before, record)}; resuming would mix two configurations in one dataset. Use the same settings, or --resume --force to continue anyway`);
  }
  if (before !== undefined && (before.shard ?? null) !== (record.shard ?? null) && flags.force !== true) {
    throw new ConfigError(`--out ${flags.out}: it holds ${before.shard === undefined ? 'a whole run' : `shard ${before.shard}`}, not ${record.shard === undefined ? 'a whole run' : `shard ${record.shard}`}; resuming would mix two shards in one directory. Use the same --shard, or --resume --force to continue anyway`);
  }
  if (before === undefined) report.warning(`--out ${flags.out}: no run.json (written by an older version?); cannot check that the settings match`);
  // The same settings can reach another provider (a key set since, OPENAI_BASE_URL): simulated and real conversations never share a directory unasked.
  const now = record.providers ?? [];
  if (previous.providers !== undefined && flags.force !== true && (previous.providers.length !== now.length || previous.providers.some((p, i) => p !== now[i]))) {
    throw new ConfigError(`--out ${flags.out}: it was written by ${previous.providers.join(', ')} models, and this run would call ${now.join(', ')} models (a key set or unset since?); one directory never mixes providers, say simulated conversations with real ones. Resume it the way it was started, or use --resume --force to mix them anyway`);
  }
  return previous;
}

/** The tasks of the input: persona lines expanded (with the query dataset), of the shard, the first --limit of them. */
export function readInput(run: Pick<Run, 'options' | 'config' | 'queries' | 'flags' | 'report'>, stream: Readable, name: string): AsyncIterable<Task> {
  const { flags } = run;
  const tasks = runTasks(stream, run.config, run, { name, strict: flags.strict === true, onWarning: (message) => run.report.warn(message) });
  const ours = flags.shard === undefined ? tasks : inShard(tasks, flags.shard);
  // Counted before a resume's skip: the limit is a prefix of the input, the same in every run, so a resume finishes it.
  return typeof flags.limit === 'number' ? firstTasks(ours, flags.limit) : ours;
}

/** How the count ahead expands the input's persona lines into tasks: as runTasks does for the run, over a fork of the query dataset (so its cursor is its own). */
function countingOptions(run: Run): Omit<TaskOptions, 'onWarning' | 'strict'> {
  const { options, config, queries } = run;
  const qg = config.query_generation;
  const dataset = queries.dataset?.fork();
  return {
    name: run.file === undefined || run.file === '-' ? 'stdin' : run.file,
    seed: options.seed,
    minTurns: options.minTurns,
    maxTurns: options.maxTurns,
    queries: dataset === undefined ? undefined : { dataset, perPersona: qg.selection.queries_per_persona, strategy: qg.selection.strategy },
  };
}

/** The pipeline's options: the run's, the hooks of this invocation, and the supplement rounds when a generator is set up. */
function pipelineOptions(run: Run, hooks: { readonly stopped: () => boolean; readonly stopping: Stopping; readonly onRetry: RetryListener; readonly onRound: (report: RoundReport) => void }): GenerateOptions {
  const { options, totals, rounds, previous, config } = run;
  return {
    ...options,
    stopping: hooks.stopping,
    onRetry: hooks.onRetry,
    remote: run.queue?.remote(run.flags.backlog ?? DEFAULT_BACKLOG),
    supplement: supplementOf(config, run, rounds, {
      stopping: hooks.stopping,
      onRetry: hooks.onRetry,
      onUsage: totals.call.bind(totals),
      onRound: hooks.onRound,
      onGeneratorError: (personaId, error) => run.report.warning(`supplement: no new queries for persona ${quoted(personaId)}: ${describeError(error)}`),
      stopped: hooks.stopped,
      isWritten: previous === undefined ? undefined : (id: string) => previous.done.has(id),
    }),
  };
}

/** What the progress display reads. */
function progressSource(run: Run, budget: Budget, counts: { readonly retries: number }, input: { readonly file: string | undefined; readonly stream: NodeJS.ReadableStream; readonly exhausted: () => boolean }): ProgressSource {
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
      input: inputProgress(input.file, input.stream),
      exhausted: input.exhausted,
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
    input: inputProgress(input.file, input.stream),
    exhausted: input.exhausted,
    limiters: () => new Map([...models.limiters].map(([key, limiter]) => [key, { name: limiter.name, state: limiter.state }])),
  };
}

/** How much of a file input has been read (stdin has no size: undefined). */
function inputProgress(file: string | undefined, stream: NodeJS.ReadableStream): () => { read: number; size: number } | undefined {
  if (file === undefined || file === '-') return () => undefined;
  let size: number | undefined;
  void stat(resolve(file)).then((info) => (size = info.size), () => undefined);
  return () => (size === undefined ? undefined : { read: (stream as unknown as { bytesRead?: number }).bytesRead ?? 0, size });
}

/** What `finish` needs to know about the run beyond `Run`. */
interface Done {
  readonly started: number;
  readonly retries: number;
  readonly reports: readonly RoundReport[];
  /** Persona lines and tasks in the input (those a resume skipped included). */
  readonly personas: number;
  readonly tasks: number;
  readonly skips: SkipCounts;
  readonly budget: { readonly reached: boolean };
}

/** The flags `--resume` does not read from run.json and a resume must repeat: which shard, which queue. */
const repeatedFlags = (flags: GenerateFlags): string =>
  (flags.shard === undefined ? '' : ` --shard ${shardName(flags.shard)}`) + (flags.queue === undefined ? '' : ` --queue ${redact(flags.queue)}${flags.name === undefined ? '' : ` --name ${flags.name}`}`);

/** Closes the sink, says how the run went and how to go on, and picks the exit code (see resultOf). */
async function finish(run: Run, ending: Ending, done: Done): Promise<number> {
  const { flags, report, totals } = run;
  if (ending.error instanceof BrokenPipeError) return 0;
  let error = ending.error;
  try {
    await run.sink.close();
  } catch (closing) {
    if (closing instanceof BrokenPipeError) return 0;
    error ??= closing;
  }
  const resume = flags.out === undefined ? undefined : resumeCommand(flags.out, run.invocation, repeatedFlags(flags));
  if (error !== undefined) {
    // The run stops (a bad key, a dead endpoint, a full disk): what is written stays, and a resume carries on.
    if (!(error instanceof FatalError)) throw error instanceof Error ? error : new Error(describeError(error));
    report.error(error.message);
    if (resume !== undefined) report.say(`what finished is in ${flags.out}; once the cause is fixed: ${resume}`);
    report.say(resultOf({ fatal: true }).line);
    return error.exitCode;
  }
  const interrupted = ending.interrupted === true;
  const state = run.dir?.state;
  const last = done.reports.at(-1);
  // This run's rounds know who is short, and why (failures, the judge's rejections); after a resume, or
  // without rounds, the directory does.
  const directory = state !== undefined && (run.previous !== undefined || last === undefined);
  const shortfall = directory ? { personas: state.personasShort, missing: state.missing } : last !== undefined ? { personas: last.personasShort, missing: last.missing } : { personas: totals.failures > 0 ? 1 : 0, missing: totals.failures };
  const result = resultOf({ interrupted, failures: state?.failures ?? totals.failures, shortfall, badLines: report.warnings, budgetReached: done.budget.reached, noTasks: done.tasks === 0 });
  if (flags.quiet !== true || result.code !== 0) {
    report.say(summaryLine(totals, { retries: done.retries, warnings: report.warnings, seconds: (Date.now() - done.started) / 1000, interrupted, dir: run.dir?.dir, directoryCost: run.previous === undefined ? undefined : totals.cost().total }));
    const rejected = rejectionsLine(totals, run.dir?.dir);
    if (rejected !== undefined) report.say(rejected);
    if (run.judge !== undefined) report.say(judgeLine(totals, run.dir?.dir));
    // The directory's count says nothing of the tasks a stop left unstarted: then only this run's rounds speak.
    if (directory && !interrupted && !done.budget.reached) report.say(targetsLine(done.personas, done.reports, run.rounds, { dir: flags.out ?? '', personasShort: shortfall.personas, missing: shortfall.missing }));
    else if (done.reports.length > 0) report.say(targetsLine(done.personas, done.reports, run.rounds));
    if (run.previous !== undefined) report.say(resumedLine(flags.out ?? '', run.previous.count, done.skips));
    if (typeof flags.limit === 'number' && done.tasks >= flags.limit) report.say(`--limit ${flags.limit}: the first ${flags.limit} tasks of the input were taken and the input was read no further${resume === undefined ? '' : `; for the rest: ${resume} --no-limit`}`);
    if (done.budget.reached && run.queue !== undefined) {
      // The workers keep a queue run's budget (see queued.ts), by their own rule.
      report.say(`budget reached: $${totals.runCost.toFixed(4)} spent of --max-cost $${String(flags.maxCost)}; no new conversations were started after that${resume === undefined ? '' : `. To continue: ${resume} --max-cost <more>`}`);
    } else if (done.budget.reached) {
      const spent = totals.cost().total;
      report.say(`budget reached: $${spent.toFixed(4)} spent${run.previous === undefined ? '' : ` in ${flags.out}`} of --max-cost $${String(flags.maxCost)} (a ceiling on the directory's spend); no conversation starts whose worst case would pass it${resume === undefined ? '' : `. To continue: ${resume} --max-cost <more than ${String(flags.maxCost)}>`}`);
    } else if (interrupted && resume !== undefined) report.say(`to continue where this run stopped: ${resume}`);
    report.say(result.line);
  }
  return result.code;
}
