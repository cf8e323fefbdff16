// The command line: `personaflow generate`, `personaflow noise` and `personaflow export` (src/export), Unix manners, exit codes.
import { stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { concatMap, pipe, type Subscription } from 'rxjs';
import { fingerprint, loadConfig, runSeed } from './config.js';
import { ConfigError, FatalError, describeError } from './errors.js';
import { buildDistractorModel, buildModels } from './models/index.js';
import { DEFAULT_STOP_TOKEN, loadTemplate } from './models/prompts.js';
import type { Distractor } from './noise/distractor.js';
import { setUpDistractor } from './noise/setup.js';
import { noise } from './operators/noise.js';
import { retryingCall } from './operators/retryingCall.js';
import type { RoundReport } from './operators/supplement.js';
import { integerOption, positiveNumberOption } from './options.js';
import { PACKAGE_ROOT } from './paths.js';
import { setUpQueries } from './queries/setup.js';
import { generate } from './pipeline.js';
import { exportCommand } from './export/command.js';
import { DirSink, outputIn } from './sinks/dir.js';
import { readOutput, type OutputState, type RunRecord } from './sinks/resume.js';
import { BrokenPipeError, streamWriter } from './sinks/stdout.js';
import { figures, formatLine, type ProgressSource } from './sinks/progress.js';
import { UsageTotals, priceOf } from './sinks/usage.js';
import { openInput } from './streams/ndjson.js';
import { stoppable } from './streams/pull.js';
import { pullThrough } from './streams/pull.js';
import { readTasks } from './streams/personas.js';
import { readTexts } from './streams/texts.js';
import { interactionId, type Outcome, type Task } from './types.js';

/** The live progress line, when one is shown: cleared before any other line goes to stderr. */
let live: { clear(): void } | undefined;

const say = (message: string): void => {
  live?.clear();
  process.stderr.write(`personaflow: ${message}\n`);
};

interface GenerateFlags {
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

type NoiseMode = 'off' | 'rules' | 'semantic';

/** Whether (and how) generate noises user turns: `--noise`, else `distractor.enabled` / `use_semantic`. */
function noiseMode(config: Awaited<ReturnType<typeof loadConfig>>['config'], flag: NoiseMode | undefined): NoiseMode {
  if (flag !== undefined) return flag;
  if (!config.distractor.enabled) return 'off';
  return config.distractor.use_semantic ? 'semantic' : 'rules';
}

const MAX_WARNINGS = 50;
const GRACE_SECONDS = 30;

async function runGenerate(file: string | undefined, flags: GenerateFlags): Promise<number> {
  const started = Date.now();
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
  const models = buildModels(config, { provider: flags.provider, model: flags.model, baseUrl: flags.baseUrl, seed, concurrency, threads: flags.threads, baseDir: loaded.baseDir, distractor: mode === 'semantic', queries: qg.style_transfer.enabled || rounds > 0 });
  const template = await loadTemplate(ig.user_model.system_prompt_template, loaded.baseDir, 'interaction_generation.user_model.system_prompt_template');
  const distractor: Distractor | undefined = mode === 'off' ? undefined : await setUpDistractor(config, loaded.baseDir, { semantic: mode === 'semantic', model: models.distractor });
  if (flags.quiet !== true) for (const notice of [...loaded.notices, ...models.notices]) say(notice);

  await assertReadable(file, 'personas');
  let warnings = 0;
  const warn = (message: string): void => {
    warnings += 1;
    live?.clear();
    if (warnings <= MAX_WARNINGS) process.stderr.write(`${message}\n`);
    else if (warnings === MAX_WARNINGS + 1) say(`more bad lines follow; only the count is reported from here on`);
  };
  if (flags.queries !== undefined) await assertReadable(flags.queries, 'query');
  const queries = await setUpQueries(config, loaded.baseDir, { queriesFile: flags.queries, rounds, model: models.queries, strict: flags.strict === true, onWarning: warn, onNotice: flags.quiet === true ? undefined : say });
  const totals = new UsageTotals(config.personaflow.prices);
  if (flags.maxCost !== undefined) {
    const called = [...models.pool.entries.map((entry) => entry.model), models.user.model, ...[models.distractor, models.queries].flatMap((m) => (m === undefined ? [] : [m.model]))];
    const unpriced = [...new Set(called.filter((m) => priceOf(config.personaflow.prices, m.provider, m.model) === undefined).map((m) => `${m.provider}/${m.model}`))];
    if (unpriced.length > 0) throw new ConfigError(`--max-cost needs a price for every model the run calls; none for ${unpriced.join(', ')} (add it under personaflow.prices, USD per million input/output tokens)`);
  }
  if (flags.resume === true && flags.out === undefined) throw new ConfigError('--resume needs --out DIR (the directory of the run to continue)');
  // What shapes the output, beside the config file: a resume with other settings is refused (--force overrides).
  const settings = { seed, min_turns: minTurns, max_turns: maxTurns, provider: flags.provider ?? null, model: flags.model ?? null, base_url: flags.baseUrl ?? null, noise: mode, supplement_rounds: rounds, queries: flags.queries ?? null };
  const record: RunRecord = { version: version(), seed, config_fingerprint: fingerprint(config, settings), settings, created_at: new Date().toISOString() };
  let previous: OutputState | undefined;
  if (flags.out !== undefined && flags.resume === true && (await outputIn(flags.out)).length > 0) {
    previous = await readOutput(flags.out);
    for (const repair of previous.repairs) say(`--out ${flags.out}: ${repair}`);
    const before = previous.run;
    if (before !== undefined && before.config_fingerprint !== record.config_fingerprint && flags.force !== true) {
      throw new ConfigError(`--out ${flags.out}: ${explainChange(before, record)}; resuming would mix two configurations in one dataset. Use the same settings, or --resume --force to continue anyway`);
    }
    if (before === undefined && flags.quiet !== true) say(`--out ${flags.out}: no run.json (written by an older version?); cannot check that the settings match`);
  }
  const dir = flags.out === undefined ? undefined : await DirSink.open(flags.out, { force: flags.force === true, usage: totals, run: record, ...(previous === undefined ? {} : { resume: previous }) });
  const resumed = previous === undefined ? undefined : { skipped: 0, retried: 0, compensated: 0 };
  const input = openInput(file);
  const tasks = countPersonas(
    skipWritten(previous, flags.retryFailed !== false, resumed, readTasks(input.stream, {
      name: input.name,
      seed,
      minTurns,
      maxTurns,
      strict: flags.strict === true,
      onWarning: warn,
      queries: queries.dataset === undefined ? undefined : { dataset: queries.dataset, perPersona: qg.selection.queries_per_persona, strategy: qg.selection.strategy },
    })),
  );

  const stdout = dir === undefined ? streamWriter(process.stdout) : undefined;
  const write = (outcome: Outcome): Promise<void> => {
    if (dir !== undefined) return dir.write(outcome);
    totals.outcome(outcome);
    if (outcome.ok) return (stdout as NonNullable<typeof stdout>).push(JSON.stringify(outcome.interaction));
    const { failure } = outcome;
    say(`failed ${failure.persona_id}/${failure.query_id} after ${failure.attempts} attempt(s): ${failure.error.kind}: ${failure.error.message}`);
    return Promise.resolve();
  };
  let retries = 0;
  let stopping = false;
  const reports: RoundReport[] = [];
  let grace: NodeJS.Timeout | undefined;
  let onSignal: (() => void) | undefined;

  // --max-cost: stop starting conversations once what is spent plus what those in flight are likely to
  // cost (this run's average per conversation) would pass the budget.
  let begun = 0;
  let budgetReached = false;
  const overBudget = (): boolean => {
    if (flags.maxCost === undefined) return false;
    const done = totals.interactions + totals.failures;
    const perConversation = done === 0 ? 0 : totals.runCost / done;
    if (totals.runCost + (begun - done) * perConversation >= flags.maxCost) budgetReached = true;
    return budgetReached;
  };
  async function* counted(source: AsyncIterable<Task>): AsyncGenerator<Task> {
    for await (const task of source) {
      begun += 1;
      yield task;
    }
  }
  const display = await startProgress(flags, {
    interactions: () => totals.interactions,
    begun: () => begun,
    failures: () => totals.failures,
    retries: () => retries,
    tokens: () => totals.runTokens,
    cost: () => (totals.unpriced.length === 0 ? totals.runCost : undefined),
    input: inputProgress(file, input.stream),
    limiters: () => new Map([...models.limiters].map(([key, limiter]) => [key, { name: limiter.name, state: limiter.state }])),
  });
  const finished = new Promise<{ error?: unknown; interrupted?: boolean }>((resolve) => {
    const subscription: Subscription = generate(
      counted(stoppable(tasks, () => stopping || overBudget())),
      {
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
        supplement:
          queries.generator === undefined
            ? undefined
            : {
                rounds,
                generator: queries.generator,
                call: retryingCall({ maxRetries: ig.max_retries, retryDelayMs: ig.retry_delay * 1000, onRetry: () => (retries += 1), onUsage: (module, model, usage, call) => totals.call(module, model, usage, call) }),
                concurrency,
                onRound: (report) => reports.push(report),
                onGeneratorError: (personaId, error) => say(`supplement: no new queries for persona ${personaId}: ${describeError(error)}`),
                stopped: () => stopping || overBudget(),
                ...(previous === undefined ? {} : { isWritten: (id: string) => previous.done.has(id) }),
              },
        onRetry: () => {
          retries += 1;
        },
        onUsage: (module, model, usage, call) => totals.call(module, model, usage, call),
      },
      write,
    ).subscribe({ error: (error: unknown) => resolve({ error, interrupted: stopping }), complete: () => resolve({ interrupted: stopping }) });
    // First Ctrl-C: stop reading and let the conversations in flight finish (they are paid for);
    // a second one, or the grace period running out, aborts them.
    const abort = (): void => {
      subscription.unsubscribe();
      resolve({ interrupted: true });
    };
    onSignal = (): void => {
      if (stopping) {
        abort();
        return;
      }
      stopping = true;
      input.stream.destroy();
      say(`stopping: no new conversations; finishing those in flight (up to ${GRACE_SECONDS} s; Ctrl-C again to abort them)`);
      grace = setTimeout(abort, GRACE_SECONDS * 1000);
      grace.unref();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const result = await finished;
  await models.close(); // a loaded llama model is released here
  display.stop();
  clearTimeout(grace);
  await queries.dataset?.close();
  // Only our own handlers: a program embedding the CLI may have its own.
  if (onSignal !== undefined) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  if (result.error instanceof BrokenPipeError) return 0;
  try {
    if (dir !== undefined) await dir.close();
    else await stdout?.flush();
  } catch (error) {
    if (error instanceof BrokenPipeError) return 0;
    throw error;
  }
  if (result.error !== undefined) {
    // The run stops (a bad key, a dead endpoint): what is written stays, and a resume carries on.
    if (flags.out !== undefined && result.error instanceof FatalError) say(`${result.error.message}\npersonaflow: what finished is in ${flags.out}; once the cause is fixed: personaflow generate ${file ?? '-'} --out ${flags.out} --resume`);
    else throw result.error instanceof Error ? result.error : new Error(describeError(result.error));
    return result.error.exitCode;
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const calls = totals.calls;
  if (flags.quiet !== true || result.interrupted === true) {
    say(
      `${result.interrupted === true ? 'interrupted: ' : ''}${totals.interactions} interactions, ${totals.failures} failures, ` +
        `${calls} model calls, ${retries} retries, ${warnings} bad input lines in ${seconds} s` +
        (totals.unpriced.length === 0 ? `, $${totals.runCost.toFixed(4)}` : '') +
        (dir === undefined ? '' : ` → ${dir.dir}`),
    );
    if (reports.length > 0) say(targetsLine(tasks.personas, reports, rounds));
    if (resumed !== undefined && previous !== undefined) {
      say(`resumed: ${previous.count} interactions were already in ${flags.out ?? ''}; ${resumed.skipped} tasks skipped, ${resumed.retried} failed tasks retried${resumed.compensated > 0 ? `, ${resumed.compensated} failed tasks left as made up by supplement` : ''}`);
    }
  }
  if (result.interrupted === true && flags.out !== undefined) {
    say(`to continue where this run stopped: personaflow generate ${file ?? '-'} --out ${flags.out} --resume${flags.config === undefined ? '' : ` -c ${flags.config}`}`);
  }
  if (result.interrupted === true) return 130;
  if (budgetReached) {
    say(`budget reached: $${totals.runCost.toFixed(4)} spent of --max-cost $${String(flags.maxCost)}; no new conversations were started after that${flags.out === undefined ? '' : `. To continue: personaflow generate ${file ?? '-'} --out ${flags.out} --resume --max-cost <more>`}`);
    return 3;
  }
  return totals.failures > 0 ? 3 : 0;
}

/**
 * On resume, leaves out the tasks whose interaction DIR already holds, and the failed ones unless they
 * are to be retried; a failed task whose persona already got supplement interactions in their place is
 * not retried either (that would take the persona past its target).
 */
async function* skipWritten(previous: OutputState | undefined, retryFailed: boolean, counts: { skipped: number; retried: number; compensated: number } | undefined, tasks: AsyncIterable<Task>): AsyncGenerator<Task> {
  for await (const task of tasks) {
    if (previous === undefined || counts === undefined) {
      yield task;
      continue;
    }
    const id = interactionId(task.personaId, task.queryId);
    if (previous.done.has(id)) {
      counts.skipped += 1;
      continue;
    }
    if (previous.failed.has(id)) {
      const madeUp = previous.compensated.get(task.personaId) ?? 0;
      if (!retryFailed || madeUp > 0) {
        if (madeUp > 0) previous.compensated.set(task.personaId, madeUp - 1);
        counts.compensated += madeUp > 0 ? 1 : 0;
        counts.skipped += 1;
        continue;
      }
      counts.retried += 1;
    }
    yield task;
  }
}

/** Why two run records differ, in words: `seed 42 → 7, max_turns 5 → 3` or that the config file changed. */
function explainChange(before: RunRecord, now: RunRecord): string {
  const changes = Object.keys({ ...before.settings, ...now.settings })
    .filter((key) => JSON.stringify(before.settings[key]) !== JSON.stringify(now.settings[key]))
    .map((key) => `${key} ${JSON.stringify(before.settings[key] ?? null)} → ${JSON.stringify(now.settings[key] ?? null)}`);
  return changes.length > 0 ? `it was written with other settings (${changes.join(', ')})` : 'it was written with another configuration (the config file changed)';
}

/** How much of a file input has been read (stdin has no size: undefined). */
function inputProgress(file: string | undefined, stream: NodeJS.ReadableStream): () => { read: number; size: number } | undefined {
  if (file === undefined || file === '-') return () => undefined;
  let size: number | undefined;
  void stat(file).then((info) => (size = info.size), () => undefined);
  return () => (size === undefined ? undefined : { read: (stream as unknown as { bytesRead?: number }).bytesRead ?? 0, size });
}

/**
 * Progress on stderr: a line redrawn in place (log-update) when stderr is a terminal and not --quiet, or
 * with `--progress json` one JSON line of the same figures every 5 s. Returns how to stop it.
 */
async function startProgress(flags: GenerateFlags, source: ProgressSource): Promise<{ stop(): void }> {
  const started = Date.now();
  if (flags.progress === 'json') {
    const line = (final: boolean): void => void process.stderr.write(`${JSON.stringify({ progress: figures(source, started, Date.now()), ...(final ? { final } : {}) })}\n`);
    const timer = setInterval(() => line(false), 5000);
    timer.unref();
    return {
      stop: () => {
        clearInterval(timer);
        line(true);
      },
    };
  }
  if (flags.quiet === true || process.stderr.isTTY !== true) return { stop: () => undefined };
  const { logUpdateStderr } = await import('log-update');
  live = logUpdateStderr;
  const render = (): void => logUpdateStderr(formatLine(figures(source, started, Date.now())));
  const timer = setInterval(render, 250);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      logUpdateStderr.clear();
      live = undefined;
    },
  };
}

/** Counts the persona lines that produced tasks (tasks of one line come one after the other). */
function countPersonas(tasks: AsyncIterable<Task>): AsyncIterable<Task> & { readonly personas: number } {
  let personas = 0;
  let last: string | undefined;
  return {
    get personas() {
      return personas;
    },
    async *[Symbol.asyncIterator]() {
      for await (const task of tasks) {
        if (task.source !== last) {
          personas += 1;
          last = task.source;
        }
        yield task;
      }
    },
  };
}

/** `targets: 97/100 personas met theirs after the main pass, 100/100 after round 1`. */
function targetsLine(personas: number, reports: readonly RoundReport[], rounds: number): string {
  const parts = reports.map((report) => `${personas - report.personasShort}/${personas} personas ${report.round === 0 ? 'after the main pass' : `after round ${report.round} (${report.tasks} supplement tasks)`}`);
  const last = reports.at(-1) as RoundReport;
  const end = last.personasShort === 0 ? '' : `; ${last.personasShort} still short by ${last.missing} interaction(s)${last.round >= rounds ? ` after ${rounds} supplement round(s)` : ''}`;
  return `targets met: ${parts.join(', ')}${end}`;
}

interface NoiseFlags {
  config?: string;
  semantic?: boolean;
  strategy?: string;
  seed?: number;
  versions?: number;
  concurrency?: number;
  provider?: string;
  model?: string;
  baseUrl?: string;
  strict?: boolean;
  quiet?: boolean;
}

/** `personaflow noise`: NoiseResult lines for each text line, in input order. */
async function runNoise(file: string | undefined, flags: NoiseFlags): Promise<number> {
  const started = Date.now();
  const loaded = await loadConfig(flags.config);
  const { config } = loaded;
  const seed = runSeed(config, flags.seed);
  const semantic = flags.semantic ?? config.distractor.use_semantic;
  // Only the distractor's model: noise never calls the assistant or the user simulator, so their keys and files are not needed.
  const models = semantic ? buildDistractorModel(config, { provider: flags.provider, model: flags.model, baseUrl: flags.baseUrl, seed, concurrency: flags.concurrency ?? config.interaction_generation.max_workers, baseDir: loaded.baseDir }) : undefined;
  const distractor = await setUpDistractor(config, loaded.baseDir, { semantic, strategyFile: flags.strategy, model: models?.distractor });
  if (flags.quiet !== true) for (const notice of [...loaded.notices, ...(models?.notices ?? [])]) say(notice);
  await assertReadable(file, 'text');
  const input = openInput(file);
  let warnings = 0;
  const texts = readTexts(input.stream, {
    name: input.name,
    strict: flags.strict === true,
    onWarning: (message) => {
      warnings += 1;
      if (warnings <= MAX_WARNINGS) process.stderr.write(`${message}\n`);
    },
  });
  const totals = new UsageTotals(config.personaflow.prices);
  let retries = 0;
  let count = 0;
  const stdout = streamWriter(process.stdout);
  const concurrency = flags.concurrency ?? config.interaction_generation.max_workers;
  // Writing is part of the pulled pipeline, so a slow stdout slows reading instead of filling memory.
  const results$ = pullThrough(
    texts,
    concurrency * 2,
    pipe(noise({
      distractor,
      seed,
      versions: flags.versions ?? 1,
      concurrency,
      maxRetries: config.interaction_generation.max_retries,
      retryDelayMs: config.interaction_generation.retry_delay * 1000,
      onRetry: () => (retries += 1),
      onUsage: (module, model, usage, call) => totals.call(module, model, usage, call),
    }), concatMap(async (results) => {
      for (const result of results) await stdout.push(JSON.stringify(result));
      return results;
    })),
  );
  const outcome = await new Promise<{ error?: unknown }>((resolve) => {
    results$.subscribe({
      next: () => (count += 1),
      error: (error: unknown) => resolve({ error }),
      complete: () => resolve({}),
    });
  });
  await models?.close();
  try {
    await stdout.flush();
  } catch (error) {
    if (error instanceof BrokenPipeError) return 0;
    throw error;
  }
  if (outcome.error instanceof BrokenPipeError) return 0;
  if (outcome.error !== undefined) throw outcome.error instanceof Error ? outcome.error : new Error(describeError(outcome.error));
  if (flags.quiet !== true) {
    say(`${count} texts noised (${distractor.type === 'semantic' ? 'semantic' : 'rules'}), ${totals.calls} model calls, ${retries} retries, ${warnings} bad input lines in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return 0;
}

/** A named input file must exist and be a file; `-` or nothing is stdin. */
async function assertReadable(file: string | undefined, what: string): Promise<void> {
  if (file === undefined || file === '-') return;
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`${file}: cannot read ${what} file (${error.code ?? 'error'})`);
  });
  if (info.isDirectory()) throw new ConfigError(`${file}: is a directory, expected a ${what} file`);
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}

/** Builds the program; exported for tests. */
export function program(setExitCode: (code: number) => void): Command {
  const cli = new Command()
    .name('personaflow')
    .description('Synthetic multi-turn conversations from personas: persona NDJSON in, PersonaGym interactions out.')
    .version(version())
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text) });
  cli
    .command('generate')
    .description('simulate one conversation per persona × query; interactions as NDJSON on stdout or into --out DIR')
    .argument('[personas]', 'persona NDJSON file, or - for stdin', '-')
    .option('-c, --config <file>', 'PersonaGym-compatible config.yaml (defaults: config/default.yaml)')
    .option('-o, --out <dir>', 'write interactions.ndjson, failures.ndjson, index.ndjson and usage.json into DIR')
    .option('--force', 'overwrite the output files already in --out DIR (with --resume: continue despite changed settings)')
    .option('--resume', 'continue the run in --out DIR: skip what it holds, retry its failures, append')
    .option('--no-retry-failed', 'with --resume, do not retry the tasks in failures.ndjson')
    .addOption(new Option('--progress <format>', 'progress as JSON lines on stderr, every 5 s and once at the end (instead of the live line shown when stderr is a terminal)').choices(['json']))
    .option('--max-cost <usd>', 'stop starting conversations before the spend (plus what is in flight) passes this many USD', positiveNumberOption)
    .addOption(new Option('--provider <name>', 'use this provider for every model').choices(['sim', 'openai', 'openrouter', 'llama']))
    .option('--model <name>', 'one model for the assistant (replaces the pool) and the user simulator')
    .option('--base-url <url>', 'OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, LM Studio)')
    .option('-j, --concurrency <n>', 'conversations working at once (max_workers); one sitting out a retry lends its slot', integerOption(1))
    .option('--threads <n>', 'threads per llama model (default: threads in the config, else half the cores)', integerOption(1))
    .option('--seed <n>', 'run seed: same seed, same interactions (with sim)', integerOption(0))
    .option('--min-turns <n>', 'fewest user→assistant exchanges', integerOption(1))
    .option('--max-turns <n>', 'most user→assistant exchanges', integerOption(1))
    .option('--strict', 'stop at the first bad input line instead of reporting and skipping it')
    .option('--queries <file>', 'query dataset (PersonaGym query.jsonl) for personas that carry no queries')
    .option('--supplement-rounds <n>', 'rounds of new queries for personas short of their target (max_supplement_rounds)', integerOption(0))
    .addOption(new Option('--noise <mode>', 'noise user turns: off, rules (legacy strategies) or semantic (LLM, three layers); default from distractor.enabled / use_semantic').choices(['off', 'rules', 'semantic']))
    .option('-q, --quiet', 'no notices or summary on stderr (warnings and errors still appear)')
    .action(async (file: string, flags: GenerateFlags) => {
      setExitCode(await runGenerate(file, flags));
    });
  cli
    .command('noise')
    .description('noisy versions of text lines or {"text": ..., "persona_features": {...}} lines, as NoiseResult NDJSON')
    .argument('[texts]', 'text or NDJSON file, or - for stdin', '-')
    .option('-c, --config <file>', 'PersonaGym-compatible config.yaml (distractor section)')
    .option('--semantic', 'the three-layer LLM distractor instead of the rule-based strategies (default: distractor.use_semantic)')
    .option('--no-semantic', 'the rule-based strategies even when the config says use_semantic')
    .option('--strategy <file>', 'strategy file in distractor_strategy.yaml format (with --semantic)')
    .option('--versions <n>', 'noisy versions per text', integerOption(1), 1)
    .option('--seed <n>', 'run seed: same seed, same noise', integerOption(0))
    .option('-j, --concurrency <n>', 'texts in flight at once (with --semantic)', integerOption(1))
    .addOption(new Option('--provider <name>', 'provider of the distractor model').choices(['sim', 'openai', 'openrouter', 'llama']))
    .option('--model <name>', 'the distractor model')
    .option('--base-url <url>', 'OpenAI-compatible endpoint for the distractor model')
    .option('--strict', 'stop at the first bad input line')
    .option('-q, --quiet', 'no notices or summary on stderr')
    .action(async (file: string, flags: NoiseFlags) => {
      setExitCode(await runNoise(file, flags));
    });
  exportCommand(cli.command('export'), setExitCode);
  return cli;
}

/** Entry point for bin/personaflow.js: runs the command and sets process.exitCode (never calls process.exit mid-stream). */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    await program((code) => (process.exitCode = code)).parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? 0 : 2;
    } else if (error instanceof ConfigError || error instanceof FatalError) {
      say(error.message);
      process.exitCode = error.exitCode;
    } else {
      say(`internal error: ${describeError(error)}`);
      if (process.env.PERSONAFLOW_DEBUG !== undefined && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
      process.exitCode = 1;
    }
  }
}
