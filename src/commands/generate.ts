// `personaflow generate`: personas in, one conversation per persona × query, interactions out (stdout or --out DIR).
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Subscription } from 'rxjs';
import { fingerprint, loadConfig, runSeed } from '../config/load.js';
import { type Config } from '../config/schema.js';
import type { Distractor } from '../distractor/distractor.js';
import { setUpDistractor } from '../distractor/setup.js';
import { ConfigError, FatalError, describeError } from '../errors.js';
import { quoted, safeUrl } from '../redact.js';
import { buildModels, type RunModels } from '../models/build.js';
import { retryingCall } from '../operators/retryingCall.js';
import type { RoundReport } from '../operators/supplement.js';
import { generate, type GenerateOptions } from '../pipeline.js';
import { DEFAULT_STOP_TOKEN, DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE } from '../prompts/simulator.js';
import { loadTemplate } from '../prompts/template.js';
import { setUpQueries, type QuerySetup } from '../queries/setup.js';
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
import { countPersonas, counted, skipWritten, type SkipCounts } from '../streams/tasks.js';
import { Drain, type Stopping } from '../limits/stop.js';
import { unfinished, type Outcome as OutcomeType, type Task } from '../types.js';
import { Budget } from './budget.js';
import { assertReadable, version } from './common.js';
import { Reporter } from './reporter.js';
import { StopSignals } from './signals.js';
import { explainChange, resumeCommand, resumedLine, summaryLine, targetsLine } from './summary.js';

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
}

export type NoiseMode = 'off' | 'rules' | 'semantic';

/** Seconds the conversations in flight get to finish after the first Ctrl-C. */
const GRACE_SECONDS = 30;

/** Whether (and how) generate noises user turns: `--noise`, else `distractor.enabled` / `use_semantic`. */
function noiseMode(config: Config, flag: NoiseMode | undefined): NoiseMode {
  if (flag !== undefined) return flag;
  if (!config.distractor.enabled) return 'off';
  return config.distractor.use_semantic ? 'semantic' : 'rules';
}

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
  const drain = new Drain();
  const signals = new StopSignals({
    graceSeconds: GRACE_SECONDS,
    onStop: () => {
      input.stream.destroy();
      // A wait that would outlast the grace (a long Retry-After or reset) ends now; its conversation is left for a resume.
      const deadline = Date.now() + GRACE_SECONDS * 1000;
      drain.stop(deadline);
      for (const limiter of run.models.limiters.values()) limiter.stop(deadline);
      run.report.say(`stopping: no new conversations; finishing those in flight (up to ${GRACE_SECONDS} s; Ctrl-C again to abort them)`);
    },
    onAbort: () => abort(),
  });
  const stopped = (): boolean => signals.stopping || budget.over();
  const outcome = await new Promise<Outcome>((resolve) => {
    const options = pipelineOptions(run, { stopped, stopping: drain, onRetry: () => (counts.retries += 1), onRound: (report) => reports.push(report) });
    // A conversation cut short by the stop is neither an interaction nor a failure: nothing is written, a resume does it.
    const write = (outcome: OutcomeType): Promise<void> => (unfinished(outcome) ? Promise.resolve() : run.sink.write(outcome));
    const subscription: Subscription = generate(counted(stoppable(tasks, stopped), () => budget.begin()), options, write).subscribe({
      error: (error: unknown) => resolve({ error, interrupted: signals.stopping }),
      complete: () => resolve({ interrupted: signals.stopping }),
    });
    abort = () => {
      subscription.unsubscribe();
      resolve({ interrupted: true });
    };
  });
  await run.models.close(); // a loaded llama model is released here
  display.stop();
  signals.close();
  await run.queries.dataset?.close();
  return finish(run, outcome, { started, retries: counts.retries, reports, personas: tasks.personas, skips, budget });
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
  const ig = config.interaction_generation;
  const minTurns = flags.minTurns ?? ig.min_turns;
  const maxTurns = flags.maxTurns ?? Math.max(ig.max_turns, minTurns);
  if (maxTurns < minTurns) throw new ConfigError(`--max-turns ${maxTurns} is below --min-turns ${minTurns}`);
  const seed = runSeed(config, flags.seed);
  const concurrency = flags.concurrency ?? ig.max_workers;
  const mode = noiseMode(config, flags.noise);
  const rounds = flags.supplementRounds ?? ig.max_supplement_rounds;
  const qg = config.query_generation;
  const models = buildModels(config, { provider: flags.provider, model: flags.model, baseUrl: flags.baseUrl, simFallback: flags.model === undefined && loaded.named.length === 0, seed, concurrency, threads: flags.threads, baseDir: loaded.baseDir, distractor: mode === 'semantic', queries: qg.style_transfer.enabled || rounds > 0, onNotice: (message) => report.say(message) });
  const template = await loadTemplate(ig.user_model.system_prompt_template, loaded.baseDir, 'interaction_generation.user_model.system_prompt_template', DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE);
  const distractor: Distractor | undefined = mode === 'off' ? undefined : await setUpDistractor(config, loaded.baseDir, { semantic: mode === 'semantic', model: models.distractor });
  for (const notice of [...loaded.notices, ...models.notices]) report.notice(notice);

  await assertReadable(file, 'personas');
  if (flags.queries !== undefined) await assertReadable(flags.queries, 'query');
  const queries = await setUpQueries(config, loaded.baseDir, { queriesFile: flags.queries, rounds, model: models.queries, strict: flags.strict === true, onWarning: (m) => report.warn(m), onNotice: flags.quiet === true ? undefined : (m) => report.say(m) });
  const totals = new UsageTotals(config.personaflow.prices);
  if (flags.maxCost !== undefined) assertPriced(config, models);
  if (flags.resume === true && flags.out === undefined) throw new ConfigError('--resume needs --out DIR (the directory of the run to continue)');
  // What shapes the output, beside the config file: a resume with other settings is refused (--force overrides).
  const settings = { seed, min_turns: minTurns, max_turns: maxTurns, provider: flags.provider ?? null, model: flags.model ?? null, base_url: flags.baseUrl ?? null, noise: mode, supplement_rounds: rounds, queries: flags.queries ?? null };
  // The fingerprint hashes the URL as given (so directories written before keep theirs); run.json shows it without credentials.
  const record: RunRecord = { version: version(), seed, config_fingerprint: fingerprint(config, settings), settings: { ...settings, base_url: flags.baseUrl === undefined ? null : safeUrl(flags.baseUrl) }, created_at: new Date().toISOString(), providers: models.providers };
  const previous = await previousRun(flags, record, report);
  const dir = flags.out === undefined ? undefined : await DirSink.open(flags.out, { force: flags.force === true, usage: totals, run: record, ...(previous === undefined ? {} : { resume: previous }) });
  const sink: Sink = dir ?? new StreamSink(process.stdout, totals, (failure) => report.say(`failed: persona ${quoted(failure.persona_id)} query ${quoted(failure.query_id)} after ${failure.attempts} attempt(s): ${failure.error.kind}: ${failure.error.message}`));
  const options = {
    pool: models.pool,
    user: { ...models.user, template, feedbackProbability: ig.user_model.feedback_probability },
    seed,
    minTurns,
    maxTurns,
    concurrency,
    maxRetries: ig.max_retries,
    retryDelayMs: ig.retry_delay * 1000,
    stopToken: config.personaflow.stop_token ?? DEFAULT_STOP_TOKEN,
    distractor,
    styleTransfer: queries.styleTransfer,
    onUsage: totals.call.bind(totals),
  } satisfies Omit<GenerateOptions, 'supplement'>;
  return { file, flags, report, config, models, options, rounds, queries, totals, previous, sink, dir };
}

/** --max-cost needs a price for every model the run calls. */
function assertPriced(config: Config, models: RunModels): void {
  const called = [...models.pool.entries.map((entry) => entry.model), models.user.model, ...[models.distractor, models.queries].flatMap((m) => (m === undefined ? [] : [m.model]))];
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
  if (before === undefined) report.notice(`--out ${flags.out}: no run.json (written by an older version?); cannot check that the settings match`);
  // The same settings can reach another provider (a key set since, OPENAI_BASE_URL): simulated and real conversations never share a directory unasked.
  const now = record.providers ?? [];
  if (previous.providers !== undefined && flags.force !== true && (previous.providers.length !== now.length || previous.providers.some((p, i) => p !== now[i]))) {
    throw new ConfigError(`--out ${flags.out}: it was written by ${previous.providers.join(', ')} models, and this run would call ${now.join(', ')} models (a key set or unset since?); one directory never mixes providers, say simulated conversations with real ones. Resume it the way it was started, or use --resume --force to mix them anyway`);
  }
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
  return run.previous === undefined ? tasks : skipWritten(run.previous, flags.retryFailed !== false, skips, tasks);
}

/** The pipeline's options: the run's, the hooks of this invocation, and the supplement rounds when a generator is set up. */
function pipelineOptions(run: Run, hooks: { readonly stopped: () => boolean; readonly stopping: Stopping; readonly onRetry: () => void; readonly onRound: (report: RoundReport) => void }): GenerateOptions {
  const { options, queries, totals, rounds, previous, config } = run;
  const ig = config.interaction_generation;
  return {
    ...options,
    stopping: hooks.stopping,
    onRetry: hooks.onRetry,
    supplement:
      queries.generator === undefined
        ? undefined
        : {
            rounds,
            generator: queries.generator,
            call: retryingCall({ maxRetries: ig.max_retries, retryDelayMs: ig.retry_delay * 1000, stopping: hooks.stopping, onRetry: hooks.onRetry, onUsage: totals.call.bind(totals) }),
            concurrency: options.concurrency,
            onRound: hooks.onRound,
            onGeneratorError: (personaId, error) => run.report.say(`supplement: no new queries for persona ${quoted(personaId)}: ${describeError(error)}`),
            stopped: hooks.stopped,
            ...(previous === undefined ? {} : { isWritten: (id: string) => previous.done.has(id) }),
          },
  };
}

/** What the progress display reads. */
function progressSource(run: Run, budget: Budget, counts: { readonly retries: number }, file: string | undefined, stream: NodeJS.ReadableStream): ProgressSource {
  const { totals, models } = run;
  return {
    interactions: () => totals.interactions,
    begun: () => budget.begun,
    failures: () => totals.failures,
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

/** Closes the sink, says how the run went, and picks the exit code. */
async function finish(run: Run, outcome: Outcome, done: { readonly started: number; readonly retries: number; readonly reports: readonly RoundReport[]; readonly personas: number; readonly skips: SkipCounts; readonly budget: Budget }): Promise<number> {
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
    if (flags.out !== undefined && outcome.error instanceof FatalError) report.say(`${outcome.error.message}\npersonaflow: what finished is in ${flags.out}; once the cause is fixed: ${resumeCommand(file, flags.out)}`);
    else throw outcome.error instanceof Error ? outcome.error : new Error(describeError(outcome.error));
    return outcome.error.exitCode;
  }
  const interrupted = outcome.interrupted === true;
  if (flags.quiet !== true || interrupted) {
    report.say(summaryLine(totals, { retries: done.retries, warnings: report.warnings, seconds: (Date.now() - done.started) / 1000, interrupted, dir: run.dir?.dir }));
    if (done.reports.length > 0) report.say(targetsLine(done.personas, done.reports, run.rounds));
    if (run.previous !== undefined) report.say(resumedLine(flags.out ?? '', run.previous.count, done.skips));
  }
  if (interrupted && flags.out !== undefined) report.say(`to continue where this run stopped: ${resumeCommand(file, flags.out, flags.config)}`);
  if (interrupted) return 130;
  if (done.budget.reached) {
    report.say(`budget reached: $${totals.runCost.toFixed(4)} spent of --max-cost $${String(flags.maxCost)}; no new conversations were started after that${flags.out === undefined ? '' : `. To continue: ${resumeCommand(file, flags.out)} --max-cost <more>`}`);
    return 3;
  }
  return totals.failures > 0 ? 3 : 0;
}
