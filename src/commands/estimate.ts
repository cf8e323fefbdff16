// `personaflow estimate`: what a generate run with these settings would cost, before paying for it: the real prompts of a sample, rendered with stand-in models and counted with each model's tokenizer.
import { Option, type Command } from 'commander';
import { batchPrices } from '../batch/prices.js';
import { loadConfig } from '../config/load.js';
import { describeError } from '../errors.js';
import { figuresOf, type Figures, type Range } from '../estimate/figures.js';
import { renderEnds, type Ends } from '../estimate/render.js';
import { sampleTasks } from '../estimate/sample.js';
import { StandIns, UNCAPPED_TOKENS, type Counting } from '../estimate/standIns.js';
import { BOUNDS, integerOption, shardOption } from '../options.js';
import { rngFor } from '../rng.js';
import { shellWord } from '../shell.js';
import { priceOf } from '../sinks/usage.js';
import { openInput } from '../streams/ndjson.js';
import { readTasks } from '../streams/personas.js';
import { inShard, shardName, type Shard } from '../streams/shard.js';
import { firstTasks } from '../streams/tasks.js';
import { assertReadable } from './common.js';
import type { GenerateFlags } from './flags.js';
import { Reporter } from './reporter.js';
import { settingsOf, setUpConversations, type NoiseMode } from './setup.js';

/** Tasks rendered by default. */
export const DEFAULT_SAMPLE = 20;
/** The assistant's typical reply, in tokens, for the low end (its completion cap when that is lower). */
export const DEFAULT_REPLY_TOKENS = 250;
/** Tasks `generate --max-cost` renders to compare its ceiling with the low end: a quick look, not the breakdown. */
const BUDGET_SAMPLE = 5;

/** The flags of `personaflow estimate`: generate's that shape the cost, and how to estimate. */
export interface EstimateFlags {
  config?: string;
  provider?: string;
  model?: string;
  baseUrl?: string;
  seed?: number;
  minTurns?: number;
  maxTurns?: number;
  noise?: NoiseMode;
  queries?: string;
  supplementRounds?: number;
  judge?: boolean;
  batch?: boolean;
  /** Accepted so that a generate command line works unchanged; the estimate renders one conversation at a time. */
  concurrency?: number;
  shard?: Shard;
  /** --limit: only the first N tasks (of the shard), as generate --limit runs them. */
  limit?: number | false;
  strict?: boolean;
  /** Tasks to render (default DEFAULT_SAMPLE). */
  sample?: number;
  /** The assistant's typical reply in tokens, for the low end (default DEFAULT_REPLY_TOKENS). */
  replyTokens?: number;
  json?: boolean;
  quiet?: boolean;
}

/** An estimate: the input, the figures, and what they assume. */
export interface Estimate {
  readonly input: { readonly file: string; readonly personas: number; readonly tasks: number; readonly sampled: number; readonly shard: string | null };
  readonly figures: Figures;
  readonly ends: Ends;
  /** How each model's tokens were counted, by `provider/model`. */
  readonly tokenizers: ReadonlyMap<string, Counting>;
  /** Every model is sim: the renderings are the run itself, low = high. */
  readonly exact: boolean;
  readonly prices: 'online' | 'batch';
  /** The assumptions, one line each, as the output states them. */
  readonly assumptions: readonly string[];
}

/** Defines `personaflow estimate` on `command`. */
export function estimateCommand(command: Command, setExitCode: (code: number) => void): Command {
  return command
    .description('what `generate` with the same settings would cost, before paying: the real prompts of a sample rendered offline (no key, no call), counted with each model\'s tokenizer, as calls, tokens and a USD range per model')
    .argument('[personas]', 'persona NDJSON file, or - for stdin (the default)')
    .option('-c, --config <file>', 'PersonaGym-compatible config.yaml (defaults: config/default.yaml); prices from personaflow.prices')
    .addOption(new Option('--provider <name>', 'as generate: this provider for every model').choices(['sim', 'openai', 'openrouter', 'llama']))
    .option('--model <name>', 'as generate: one model for the assistant (replaces the pool) and the user simulator')
    .option('--base-url <url>', 'as generate (nothing is called: accepted so a generate command line works)')
    .option('-j, --concurrency <n>', 'as generate (ignored: the cost does not depend on it)', integerOption(1, BOUNDS.concurrency))
    .option('--seed <n>', 'run seed: the same draws (pool, turns, noise) as generate with this seed', integerOption(0))
    .option('--min-turns <n>', 'fewest user→assistant exchanges (the low end)', integerOption(1, BOUNDS.turns))
    .option('--max-turns <n>', 'most user→assistant exchanges (the high end)', integerOption(1, BOUNDS.turns))
    .option('--queries <file>', 'query dataset (PersonaGym query.jsonl) for personas that carry no queries')
    .option('--supplement-rounds <n>', 'rounds of new queries for personas short of their target (the high end)', integerOption(0, BOUNDS.supplementRounds))
    .option('--judge', 'every conversation judged (default: judge.enabled)')
    .option('--no-judge', 'no judge, even when the config enables it')
    .addOption(new Option('--noise <mode>', 'noise user turns: off, rules or semantic (default from distractor.enabled / use_semantic)').choices(['off', 'rules', 'semantic']))
    .option('--batch', 'price at the Batch API\'s prices (default: batch.enabled)')
    .option('--shard <i/n>', 'only shard i of n, as generate --shard', shardOption)
    .option('--limit <n>', 'only the first N tasks of the input (of the shard), as generate --limit', integerOption(1))
    .option('--strict', 'stop at the first bad input line instead of reporting and skipping it')
    .option('--sample <n>', `tasks to render (default ${DEFAULT_SAMPLE}); a seeded, uniform sample of the input, whose every task is counted`, integerOption(1))
    .option('--reply-tokens <n>', `the assistant's typical reply in tokens, for the low end (default ${DEFAULT_REPLY_TOKENS}; its max_completion_tokens when lower)`, integerOption(1))
    .option('--json', 'the estimate as one JSON object on stdout')
    .option('-q, --quiet', 'no notices on stderr')
    .action(async (file: string | undefined, flags: EstimateFlags) => {
      setExitCode(await runEstimate(file, flags));
    });
}

/** Runs `personaflow estimate` and returns its exit code. */
export async function runEstimate(file: string | undefined, flags: EstimateFlags): Promise<number> {
  const report = new Reporter(flags.quiet === true);
  const estimate = await estimateRun(file, flags, report);
  process.stdout.write(flags.json === true ? `${JSON.stringify(estimateJson(estimate))}\n` : estimateText(estimate));
  return 0;
}

/** A reporter that says nothing: for the estimate `generate --max-cost` makes (generate reports the same things itself). */
class Silent extends Reporter {
  constructor() {
    super(true);
  }
  protected override write(): void {}
  override warn(): void {}
}

/**
 * Estimates a generate run of `file` with `flags`: the settings and models as generate sets them up, each
 * model replaced by a stand-in (src/estimate/standIns.ts), a sample of the input's tasks rendered through
 * the real pipeline for the low and the high end, and every task of the input counted.
 */
export async function estimateRun(file: string | undefined, flags: EstimateFlags, report: Reporter): Promise<Estimate> {
  const loaded = await loadConfig(flags.config);
  const { config } = loaded;
  const settings = settingsOf(config, flags);
  await assertReadable(file, 'personas');
  if (flags.queries !== undefined) await assertReadable(flags.queries, 'query');
  const replyTokens = flags.replyTokens ?? DEFAULT_REPLY_TOKENS;
  const standIns = new StandIns({ replyTokens, judgeRetries: config.judge.validation_retries });
  const conversations = await setUpConversations(
    loaded,
    settings,
    { concurrency: 1, strict: flags.strict, quiet: flags.quiet, onUsage: undefined, standIn: (spec) => standIns.model(spec), onNotice: (message) => report.notice(message) },
    report,
  );
  const { models, queries, judge, options } = conversations;
  try {
    await standIns.ready();
    const input = openInput(file);
    const qg = config.query_generation;
    const read = readTasks(input.stream, {
      name: input.name,
      seed: settings.seed,
      minTurns: settings.min_turns,
      maxTurns: settings.max_turns,
      strict: flags.strict === true,
      onWarning: (message) => report.warn(message),
      queries: queries.dataset === undefined ? undefined : { dataset: queries.dataset, perPersona: qg.selection.queries_per_persona, strategy: qg.selection.strategy },
    });
    const ours = flags.shard === undefined ? read : inShard(read, flags.shard);
    const sampled = await sampleTasks(typeof flags.limit === 'number' ? firstTasks(ours, flags.limit) : ours, flags.sample ?? DEFAULT_SAMPLE, rngFor(settings.seed, 'estimate', 'sample'));
    const exact = models.providers.every((provider) => provider === 'sim');
    const ends = await renderEnds(sampled.sample, sampled.tasks, { conversations: options, judge, generator: queries.generator, rounds: settings.supplement_rounds }, standIns, exact);
    const batch = (flags.batch ?? config.batch.enabled) === true;
    const prices = batch ? batchPrices(config.personaflow.prices) : config.personaflow.prices;
    const figures = figuresOf(ends.low.tallies, ends.high.tallies, (key) => {
      const slash = key.indexOf('/');
      return priceOf(prices, key.slice(0, slash), key.slice(slash + 1));
    });
    const estimate = {
      input: { file: input.name, personas: sampled.personas, tasks: sampled.tasks, sampled: sampled.sample.length, shard: flags.shard === undefined ? null : shardName(flags.shard) },
      figures,
      ends,
      tokenizers: standIns.counting,
      exact,
      prices: batch ? ('batch' as const) : ('online' as const),
    };
    const ig = config.interaction_generation;
    const pool = options.pool.entries;
    const weights = pool.reduce((sum, entry) => sum + entry.weight, 0);
    return {
      ...estimate,
      assumptions: assumptionsOf(estimate, {
        minTurns: settings.min_turns,
        maxTurns: settings.max_turns,
        stopPolicy: ig.user_model.stop_policy,
        replyTokens,
        assistants: pool.map((entry) => ({ model: `${entry.model.provider}/${entry.model.model}`, share: entry.weight / weights, cap: entry.maxCompletionTokens })),
        noise: settings.noise,
        activation: config.distractor.activation_probability,
        styleTransfer: queries.styleTransfer === undefined ? undefined : qg.style_transfer.transfer_probability,
        judge: judge === undefined ? undefined : { review: models.judge !== undefined, retries: config.judge.validation_retries },
        rounds: queries.generator === undefined ? 0 : settings.supplement_rounds,
      }),
    };
  } finally {
    await queries.dataset?.close();
  }
}

/** What the assumption lines say beside the estimate's own figures. */
interface Stated {
  readonly minTurns: number;
  readonly maxTurns: number;
  readonly stopPolicy: 'user' | 'personagym';
  readonly replyTokens: number;
  readonly assistants: readonly { readonly model: string; readonly share: number; readonly cap: number | undefined }[];
  readonly noise: NoiseMode;
  readonly activation: number;
  readonly styleTransfer: number | undefined;
  readonly judge: { readonly review: boolean; readonly retries: number } | undefined;
  readonly rounds: number;
}

const percent = (share: number): string => `${Math.round(share * 100)}%`;
const one = (n: number): string => n.toFixed(1);

/** The assumptions of an estimate, one line each. */
function assumptionsOf(estimate: Omit<Estimate, 'assumptions'>, stated: Stated): string[] {
  const { input, ends, exact } = estimate;
  const lines: string[] = [];
  const tokenizers = [...estimate.tokenizers].sort(([a], [b]) => (a < b ? -1 : 1)).map(([model, counting]) => `${model} ${counting === 'sim' ? "sim's own count (characters / 4)" : counting === 'chars/4' ? 'characters / 4 (no tokenizer for this model)' : counting}`);
  lines.push(`tokens: ${tokenizers.join('; ')}`);
  const sample = input.sampled === input.tasks ? `every task of the input rendered (${input.tasks})` : `${input.sampled} of ${input.tasks} tasks rendered (a seeded sample), figures × ${one(input.tasks / Math.max(1, input.sampled))}`;
  if (exact) {
    lines.push('every model is sim: its replies, their lengths, when the user stops and what the judge rejects are the run\'s own, so low = high');
    lines.push(`sample: ${sample}; ${one(ends.low.turns)} turns a conversation on average`);
  } else {
    const stops = stated.stopPolicy === 'user' ? 'stop_policy user: the simulated user decides when it is done, so a range' : 'stop_policy personagym: the dice (target turns, feedback_probability) end it, or the user first';
    lines.push(`turns: ${stated.minTurns} to ${stated.maxTurns} (${stops}); low: the user stops at min_turns (${one(ends.low.turns)} on average); high: it never stops first (${one(ends.high.turns)} on average)`);
    const caps = stated.assistants.map((a) => `${a.model} ${a.cap ?? `${UNCAPPED_TOKENS} (no cap set)`}`).join(', ');
    lines.push(`replies: the assistant's typical reply, ${stated.replyTokens} tokens or its cap when lower (low; --reply-tokens), to its max_completion_tokens (high: ${caps}); the user simulator's and the helpers' replies as long as sim writes them (low) to their caps (high); every later prompt carries the assistant's replies at those lengths`);
    lines.push(`sample: ${sample}, low and high each, once with each assistant model`);
  }
  if (stated.assistants.length > 1) {
    const shares = stated.assistants.map((a) => `${percent(a.share)} ${a.model}`).join(', ');
    lines.push(exact && input.sampled === input.tasks ? `pool: weights ${shares}, drawn for each conversation as the run draws them` : `pool: ${shares} of the conversations (the weights, not the draws of a small sample)`);
  }
  if (stated.noise === 'semantic') lines.push(`noise: semantic, a model call for each noised turn, drawn for ${percent(stated.activation)} of user turns as the run's seeded draws fall on the sampled tasks`);
  else if (stated.noise === 'rules') lines.push('noise: rules (no model calls)');
  if (stated.styleTransfer !== undefined) lines.push(`style transfer: ${percent(stated.styleTransfer)} of the queries without adapted_query, one call each (the run's seeded draws)`);
  if (stated.judge !== undefined) {
    if (!stated.judge.review) lines.push('judge: its checks only (judge.review false): no model calls');
    else if (exact) lines.push(`judge: sim's judge rejected ${percent(ends.high.rejected)} of the conversations`);
    else lines.push(`judge: one review a conversation (low) to ${stated.judge.retries + 1} asks, ${stated.judge.retries} of them re-asks (high); in the high end sim's judge rejected ${percent(ends.high.rejected)} of the conversations`);
  }
  if (stated.rounds > 0) {
    const added = `${one(ends.high.topUps * 100)} conversations per 100 tasks`;
    lines.push(exact ? `supplement: up to ${stated.rounds} rounds topped up what the judge rejected and what failed: ${added}` : `supplement: none (low); up to ${stated.rounds} rounds topping up what the judge rejected and what failed (high): ${added}`);
  }
  lines.push(`prices: ${estimate.prices === 'batch' ? 'the Batch API\'s (each entry\'s batch price, else half the online price for OpenAI\'s models)' : 'personaflow.prices'}, USD per million tokens; sim and llama models are free`);
  if (!exact) lines.push('not in the range: attempts retried after an error, and re-asks after a rejected simulator reply or helper answer beyond those the renderings made');
  return lines;
}

const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');
const spread = (range: Range, show: (n: number) => string = thousands): string => (show(range.low) === show(range.high) ? show(range.low) : `${show(range.low)}–${show(range.high)}`);
/** Dollars with the digits that matter: cents from $1 up, four decimals below. */
const dollars = (usd: number): string => `$${usd >= 1 ? usd.toFixed(2) : usd.toFixed(4)}`;

/** The estimate as a table and its assumptions, for a person. */
export function estimateText(estimate: Estimate): string {
  const { input, figures } = estimate;
  const rows = [
    ['model', 'calls', 'input tokens', 'output tokens', 'USD'],
    ...figures.models.map((m) => [m.model, spread(m.calls), spread(m.input), spread(m.output), m.usd === undefined ? 'no price' : spread(m.usd, dollars)]),
    ['total', '', '', '', spread(figures.usd, dollars)],
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const table = rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd());
  const head = `estimate for ${input.file}${input.shard === null ? '' : ` (shard ${input.shard})`}: ${input.personas} persona(s), ${input.tasks} task(s)`;
  const unpriced = figures.unpriced.length === 0 ? [] : [`the total leaves out ${figures.unpriced.join(', ')}: no price (add it under personaflow.prices, USD per million input/output tokens)`];
  return `${[head, ...table, ...unpriced, 'assumptions:', ...estimate.assumptions.map((line) => `  ${line}`)].join('\n')}\n`;
}

/** The estimate as one JSON object (`personaflow estimate --json`). */
export function estimateJson(estimate: Estimate): unknown {
  const { input, figures, ends } = estimate;
  const end = (which: 'low' | 'high') => ({ turns: ends[which].turns, rejected: ends[which].rejected, failed: ends[which].failed, top_ups: ends[which].topUps });
  return {
    input,
    models: figures.models.map((m) => ({ model: m.model, tokenizer: estimate.tokenizers.get(m.model) ?? null, calls: m.calls, input_tokens: m.input, output_tokens: m.output, usd: m.usd ?? null })),
    total: { usd: figures.usd, unpriced: figures.unpriced },
    exact: estimate.exact,
    prices: estimate.prices,
    per_conversation: { low: end('low'), high: end('high') },
    assumptions: estimate.assumptions,
  };
}

/** The estimate command with the cost-relevant flags of this generate run (never --base-url: it may hold credentials, and nothing is called). */
export function estimateCommandFor(file: string, flags: GenerateFlags): string {
  const words = ['personaflow', 'estimate', file];
  const flag = (name: string, value: string | number | undefined): void => {
    if (value !== undefined) words.push(name, String(value));
  };
  flag('-c', flags.config);
  flag('--provider', flags.provider);
  flag('--model', flags.model);
  flag('--seed', flags.seed);
  flag('--min-turns', flags.minTurns);
  flag('--max-turns', flags.maxTurns);
  flag('--queries', flags.queriesPath ?? flags.queries);
  flag('--supplement-rounds', flags.supplementRounds);
  flag('--noise', flags.noise);
  flag('--shard', flags.shard === undefined ? undefined : shardName(flags.shard));
  flag('--limit', typeof flags.limit === 'number' ? flags.limit : undefined);
  if (flags.judge !== undefined) words.push(flags.judge ? '--judge' : '--no-judge');
  if (flags.batch === true) words.push('--batch');
  return words.map(shellWord).join(' ');
}

/**
 * `generate --max-cost`: before the first call, a quick estimate (a few tasks rendered) of the whole
 * input; when the ceiling is below its low end, one line says so, with the range and the command that
 * shows the breakdown. Nothing for stdin (it cannot be read twice). The run then goes on as --max-cost
 * says. An estimate that fails says so in a notice and stops nothing.
 */
export async function warnOverBudget(file: string | undefined, flags: GenerateFlags, report: Reporter): Promise<void> {
  const { maxCost } = flags;
  if (maxCost === undefined || file === undefined || file === '-') return;
  let estimate: Estimate;
  try {
    estimate = await estimateRun(file, { ...flags, queries: flags.queriesPath ?? flags.queries, sample: BUDGET_SAMPLE, quiet: true }, new Silent());
  } catch (error) {
    report.notice(`could not estimate the run's cost before it starts: ${describeError(error)}`);
    return;
  }
  const { usd } = estimate.figures;
  if (maxCost >= usd.low) return;
  report.warning(`--max-cost $${String(maxCost)} is below the estimated cost of the ${estimate.input.tasks} task(s) in ${file} (${spread(usd, dollars)}): the run will stop starting conversations once it is reached. The breakdown: ${estimateCommandFor(file, flags)}`);
}
