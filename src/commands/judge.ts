// `personaflow judge`: interactions in (a file or stdin), each judged; accepted ones out (stdout or --out DIR), rejected ones kept.
import { resolve } from 'node:path';
import { mergeMap, pipe, type Subscription } from 'rxjs';
import { Option, type Command } from 'commander';
import { loadConfig, runSeed } from '../config/load.js';
import { ConfigError, FatalError, describeError } from '../errors.js';
import { interactionInputSchema, type InteractionInput } from '../export/samples.js';
import { NearDuplicates } from '../judge/duplicates.js';
import { setUpJudge } from '../judge/setup.js';
import { buildHelperModel } from '../models/build.js';
import { judge } from '../operators/judge.js';
import { integerOption, positiveNumberOption } from '../options.js';
import { DirSink, FILES, outputIn } from '../sinks/dir.js';
import { readOutput, type OutputState } from '../sinks/resume.js';
import { StreamSink, type Sink } from '../sinks/sink.js';
import { BrokenPipeError } from '../sinks/stdout.js';
import { UsageTotals, priceOf } from '../sinks/usage.js';
import { openInput } from '../streams/ndjson.js';
import { pullThrough, stoppable } from '../streams/pull.js';
import { readRecords } from '../streams/records.js';
import { interactionId, type Interaction, type Outcome } from '../types.js';
import { Budget, tokensOf } from './budget.js';

/** The judge prompt's fixed part (rubric and instructions), as far as a worst case goes. */
const JUDGE_PROMPT_TOKENS = 2048;
import { assertReadable, version } from './common.js';
import { Reporter } from './reporter.js';
import { callLine, retryLine } from './verbose.js';
import { StopSignals } from './signals.js';
import { judgeLine, summaryLine } from './summary.js';

export interface JudgeFlags {
  config?: string;
  out?: string;
  force?: boolean;
  resume?: boolean;
  provider?: string;
  model?: string;
  baseUrl?: string;
  concurrency?: number;
  minTurns?: number;
  review?: boolean;
  maxCost?: number;
  strict?: boolean;
  quiet?: boolean;
  /** `--verbose`: a stderr line for every model call attempt and every retry. */
  verbose?: boolean;
}

/** Seconds the judgements in flight get to finish after the first Ctrl-C. */
const GRACE_SECONDS = 30;

/** An interaction line as the judge reads it: personaflow's, or PersonaGym's (features under `features`, no metadata). */
function asInteraction(input: InteractionInput): Interaction {
  const metadata = input.metadata ?? {};
  return {
    ...input,
    persona_features: input.persona_features ?? input.features ?? {},
    messages: input.messages.map((message) => ({ ...message, metadata: message.metadata ?? {} })),
    num_turns: input.num_turns ?? input.messages.filter((m) => m.role === 'assistant').length,
    metadata: { ...metadata, query_id: typeof metadata.query_id === 'string' ? metadata.query_id : input.interaction_id },
  } as unknown as Interaction;
}

/** Runs `personaflow judge` and returns its exit code. */
export async function runJudge(file: string | undefined, flags: JudgeFlags): Promise<number> {
  const started = Date.now();
  const report = new Reporter(flags.quiet === true, flags.verbose === true);
  const loaded = await loadConfig(flags.config);
  const { config } = loaded;
  const review = flags.review ?? config.judge.review;
  const judgeConfig = { ...config, judge: { ...config.judge, review } };
  const concurrency = flags.concurrency ?? config.interaction_generation.max_workers;
  if (flags.resume === true && flags.out === undefined) throw new ConfigError('--resume needs --out DIR (the directory of the judging to continue)');
  if (flags.out !== undefined && file !== undefined && file !== '-' && resolve(file) === resolve(flags.out, FILES.interactions)) {
    throw new ConfigError(`--out ${flags.out}: it would overwrite the input ${file}; judge into another directory`);
  }
  // Only the judge's model: no assistant or simulator key is needed to judge a file.
  const models = review ? buildHelperModel(config, { provider: flags.provider, model: flags.model, baseUrl: flags.baseUrl, seed: runSeed(config), concurrency, baseDir: loaded.baseDir, onNotice: (message) => report.say(message), onWarning: (message) => report.warning(message), onCall: report.verbose ? (call) => report.detail(callLine(call)) : undefined }, 'judge') : undefined;
  const theJudge = await setUpJudge(judgeConfig, loaded.baseDir, { model: models?.model, minTurns: flags.minTurns });
  for (const notice of [...loaded.notices, ...(models?.notices ?? [])]) report.notice(notice);
  if (flags.maxCost !== undefined && models !== undefined && priceOf(config.personaflow.prices, models.model.model.provider, models.model.model.model) === undefined) {
    throw new ConfigError(`--max-cost needs a price for the judge model ${models.model.model.provider}/${models.model.model.model} (add it under personaflow.prices, USD per million input/output tokens)`);
  }
  await assertReadable(file, 'interactions');

  const totals = new UsageTotals(config.personaflow.prices);
  const previous = await previousJudging(flags, report);
  const record = { version: version(), seed: runSeed(config), config_fingerprint: 'judge', settings: { command: 'judge', review, min_turns: flags.minTurns ?? null }, created_at: new Date().toISOString() };
  const dir = flags.out === undefined ? undefined : await DirSink.open(flags.out, { force: flags.force === true, usage: totals, run: record, ...(previous === undefined ? {} : { resume: previous }) });
  const sink: Sink = dir ?? new StreamSink(process.stdout, totals, (failure) => report.warning(`could not judge ${failure.interaction_id}: ${failure.error.message}`));

  const input = openInput(file);
  // --max-cost: each judgement holds its worst case (the whole conversation and the template in, the judge's cap out).
  const judgePrice = models === undefined ? undefined : priceOf(config.personaflow.prices, models.model.model.provider, models.model.model.model);
  const budget = new Budget<{ readonly personaId: string; readonly queryId: string; readonly interaction: Interaction }>(flags.maxCost, () => totals.cost().total, ({ interaction }) =>
    judgePrice === undefined || models === undefined ? 0 : (JUDGE_PROMPT_TOKENS + tokensOf(JSON.stringify(interaction.messages)) + tokensOf(JSON.stringify(interaction.persona_features))) * judgePrice.input / 1e6 + (models.model.maxCompletionTokens ?? 4096) * judgePrice.output / 1e6,
  );
  let retries = 0;
  let skipped = 0;
  const signals = new StopSignals({
    graceSeconds: GRACE_SECONDS,
    onStop: () => {
      input.stream.destroy();
      report.say(`stopping: no new conversations read; finishing the judgements in flight (up to ${GRACE_SECONDS} s; Ctrl-C again to abort them)`);
    },
    onAbort: () => abort(),
  });
  const stopped = (): boolean => signals.stopping || budget.over();
  async function* outcomes(): AsyncGenerator<Outcome> {
    for await (const { value } of readRecords(input.stream, interactionInputSchema, { name: input.name, what: 'not an interaction: ', strict: flags.strict === true, onWarning: (message) => report.warn(message) })) {
      const interaction = asInteraction(value);
      // The directory knows a conversation by the id of its persona × query (see readOutput).
      if (previous !== undefined && (previous.done.has(interactionId(interaction.persona_id, interaction.metadata.query_id)) || previous.done.has(value.interaction_id))) {
        skipped += 1;
        continue;
      }
      if (!(await budget.admit({ personaId: interaction.persona_id, queryId: interaction.metadata.query_id, interaction }))) return;
      yield { ok: true, interaction };
    }
  }
  let abort = (): void => undefined;
  const ended = await new Promise<{ error?: unknown; interrupted: boolean }>((done) => {
    const subscription: Subscription = pullThrough(
      stoppable(outcomes(), stopped),
      concurrency * 2,
      pipe(
        judge({
          judge: theJudge,
          concurrency,
          maxRetries: config.interaction_generation.max_retries,
          retryDelayMs: config.interaction_generation.retry_delay * 1000,
          // In file order: of two near-duplicates, the later line is rejected, run after run.
          duplicates: new NearDuplicates(),
          onRetry: (module, error, note) => {
            retries += 1;
            report.detail(retryLine(module, error, note, config.interaction_generation.max_retries));
          },
          onUsage: totals.call.bind(totals),
        }),
        mergeMap(async (outcome) => {
          budget.settle(outcome);
          await sink.write(outcome);
          return outcome;
        }),
      ),
    ).subscribe({ error: (error: unknown) => done({ error, interrupted: signals.stopping }), complete: () => done({ interrupted: signals.stopping }) });
    abort = () => {
      subscription.unsubscribe();
      done({ interrupted: true });
    };
  });
  await models?.close();
  signals.close();
  if (ended.error instanceof BrokenPipeError) return 0;
  try {
    await sink.close();
  } catch (error) {
    if (error instanceof BrokenPipeError) return 0;
    throw error;
  }
  if (ended.error !== undefined) {
    if (flags.out !== undefined && ended.error instanceof FatalError) {
      report.error(ended.error.message);
      report.say(`what was judged is in ${flags.out}; once the cause is fixed, run the same command with --resume`);
      return ended.error.exitCode;
    }
    throw ended.error instanceof Error ? ended.error : new Error(describeError(ended.error));
  }
  if (flags.quiet !== true || ended.interrupted) {
    report.say(summaryLine(totals, { retries, warnings: report.warnings, seconds: (Date.now() - started) / 1000, interrupted: ended.interrupted, dir: dir?.dir }));
    report.say(judgeLine(totals, dir?.dir));
    if (previous !== undefined) report.say(`resumed: ${skipped} conversations were already judged in ${flags.out ?? ''}`);
  }
  if (ended.interrupted) return 130;
  if (budget.reached) {
    report.say(`budget reached: $${totals.runCost.toFixed(4)} spent of --max-cost $${String(flags.maxCost)}; no new conversations were judged after that`);
    return 3;
  }
  return totals.failures > 0 ? 3 : 0;
}

/** With --resume: what DIR holds (repaired). */
async function previousJudging(flags: JudgeFlags, report: Reporter): Promise<OutputState | undefined> {
  if (flags.out === undefined || flags.resume !== true || (await outputIn(flags.out)).length === 0) return undefined;
  const previous = await readOutput(flags.out);
  for (const repair of previous.repairs) report.warning(`--out ${flags.out}: ${repair}`);
  return previous;
}

/** Declares `personaflow judge` on `command`. */
export function judgeCommand(command: Command, setExitCode: (code: number) => void): Command {
  return command
    .description('judge interactions (checks, then the judge model\'s review): accepted ones on stdout or into --out DIR (rejected ones into DIR/rejected.ndjson), each with metadata.quality')
    .argument('[interactions]', 'interactions NDJSON file, or - for stdin', '-')
    .option('-c, --config <file>', 'PersonaGym-compatible config.yaml (its judge section)')
    .option('-o, --out <dir>', 'write interactions.ndjson (accepted), rejected.ndjson, failures.ndjson, index.ndjson and usage.json into DIR')
    .option('--force', 'overwrite the output files already in --out DIR')
    .option('--resume', 'continue the judging in --out DIR: skip the conversations it holds, retry its failures, append')
    .addOption(new Option('--provider <name>', 'provider of the judge model').choices(['sim', 'openai', 'openrouter', 'llama']))
    .option('--model <name>', 'the judge model')
    .option('--base-url <url>', 'OpenAI-compatible endpoint for the judge model')
    .option('-j, --concurrency <n>', 'conversations judged at once', integerOption(1))
    .option('--min-turns <n>', 'fewer user→assistant exchanges is a too_short finding', integerOption(1))
    .option('--no-review', 'the deterministic checks only: no model is called')
    .option('--max-cost <usd>', 'stop reading conversations before the spend passes this many USD', positiveNumberOption)
    .option('--strict', 'stop at the first bad input line instead of reporting and skipping it')
    .option('-q, --quiet', 'no notices or summary on stderr (warnings and errors still appear)')
    .option('-v, --verbose', 'a stderr line for every model call attempt and every retry (never keys)')
    .action(async (file: string, flags: JudgeFlags) => {
      setExitCode(await runJudge(file, flags));
    });
}
