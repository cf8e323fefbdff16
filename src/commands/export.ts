// `personaflow export`: interactions (a file, a generate --out DIR, or stdin) to training samples, split by persona, with statistics.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadConfig, runSeed } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { EXPORT_FILES, dirOutput, streamOutput, type SplitOutput } from '../export/output.js';
import { judgeFiltersOn, parseTags, type JudgeFilters } from '../export/quality.js';
import type { QualityReportJSON } from '../export/qualityReport.js';
import { FORMATS, SPLITS, type Format, type IncludeFlags, type SplitName } from '../export/samples.js';
import { checkRatios, parseSplit, type SplitRatios } from '../export/split.js';
import { ExportStatistics, type Skipped } from '../export/statistics.js';
import { emptyCounts, exportSamples, type ExportCounts } from '../export/stream.js';
import { integerOption } from '../options.js';
import { replaceJson } from '../sinks/files.js';
import { FILES } from '../sinks/layout.js';
import { BrokenPipeError } from '../sinks/stdout.js';
import { openInput } from '../streams/ndjson.js';
import { Reporter } from './reporter.js';

export interface ExportFlags {
  config?: string;
  format?: Format;
  out?: string;
  force?: boolean;
  /** `--split`: ratios, or `none` to turn off the config's split. */
  split?: SplitRatios | 'none';
  only?: SplitName;
  seed?: number;
  system?: string;
  clean?: boolean;
  minTurns?: number;
  excludeFailedGuards?: boolean;
  excludeTruncated?: boolean;
  excludeRefusals?: boolean;
  /** `--min-score`: 0-4. */
  minScore?: number;
  requireVerdict?: 'accept' | 'reject';
  /** `--exclude-tag`, every use, commas split. */
  excludeTag?: string[];
  dedupe?: boolean;
  stats?: string;
  statsFeature?: string;
  strict?: boolean;
  quiet?: boolean;
}

/** The feature `persona_distribution` counts by, unless `--stats-feature` says otherwise (PersonaGym's example counts roles). */
export const DEFAULT_STATS_FEATURE = 'role';

/** Where the interactions come from: a file, stdin, or a `generate --out` directory (and its usage.json). */
async function resolveInput(file: string | undefined): Promise<{ path: string | undefined; usage: string | undefined }> {
  if (file === undefined || file === '-') return { path: undefined, usage: undefined };
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`${file}: cannot read interactions (${error.code ?? 'error'})`);
  });
  if (!info.isDirectory()) return { path: file, usage: undefined };
  const path = join(file, FILES.interactions);
  const inner = await stat(path).catch(() => undefined);
  if (inner === undefined || inner.isDirectory()) throw new ConfigError(`${file}: is a directory without ${FILES.interactions} (expected a \`generate --out\` directory, an interactions file, or - for stdin)`);
  const usage = join(file, FILES.usage);
  return { path, usage: (await stat(usage).catch(() => undefined)) === undefined ? undefined : usage };
}

/** The run's usage.json, or undefined (with a warning) when it cannot be read as JSON. */
async function readUsage(path: string | undefined, warn: (message: string) => void): Promise<unknown> {
  if (path === undefined) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (error) {
    warn(`${path}: ignored, not readable as JSON (${(error as Error).message.split('\n')[0] ?? ''})`);
    return undefined;
  }
}

const sameFile = async (a: string, b: string): Promise<boolean> => {
  const [x, y] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
};

/** Refuses an input file that the export would truncate or replace (`export D/train.jsonl --out D --force`). */
async function refuseOverwritingInput(input: string | undefined, flags: ExportFlags): Promise<void> {
  if (input === undefined) return;
  const targets = flags.out === undefined ? [] : Object.values(EXPORT_FILES).map((name) => ({ path: join(flags.out as string, name), flag: `--out ${flags.out as string}` }));
  if (flags.stats !== undefined) targets.push({ path: flags.stats, flag: `--stats ${flags.stats}` });
  for (const { path, flag } of targets) {
    if (await sameFile(input, path)) throw new ConfigError(`${input}: is the input, and ${flag} would overwrite it; write the export somewhere else`);
  }
}

/** Runs `personaflow export` and returns its exit code. */
export async function runExport(file: string | undefined, flags: ExportFlags): Promise<number> {
  const started = Date.now();
  const format = flags.format ?? 'personagym';
  if (flags.system !== undefined && flags.system.trim() === '') throw new ConfigError('--system needs none, persona or a system message text, got an empty one');
  if (flags.system !== undefined && format === 'personagym') throw new ConfigError('--system applies to --format openai and sharegpt (a personagym sample carries persona_features instead)');
  if (flags.only !== undefined && flags.out !== undefined) throw new ConfigError('--only writes one split to stdout; with --out every split has its own file');
  const loaded = await loadConfig(flags.config);
  const { config } = loaded;
  const training = config.training_data;
  const configured = training?.split;
  let ratios: SplitRatios | undefined;
  if (flags.split === 'none') ratios = undefined;
  else if (flags.split !== undefined) ratios = flags.split;
  else if (configured !== undefined) ratios = checkRatios({ train: configured.train ?? 0, validation: configured.validation ?? 0, test: configured.test ?? 0 }, 'training_data.split');
  if (flags.only !== undefined && ratios === undefined) throw new ConfigError(`--only ${flags.only} needs a split (--split, or training_data.split in the config)`);
  const seed = runSeed(config, flags.seed);
  const include: IncludeFlags = training?.format ?? {};
  const report = new Reporter(flags.quiet === true);
  for (const notice of loaded.notices) report.notice(notice);

  const input = await resolveInput(file);
  const warn = (message: string): void => report.warn(message);
  await refuseOverwritingInput(input.path, flags);
  const runUsage = await readUsage(input.usage, warn);
  const output: SplitOutput = flags.out === undefined ? streamOutput(process.stdout) : await dirOutput(flags.out, flags.force === true);
  const judge: JudgeFilters = { minScore: flags.minScore, requireVerdict: flags.requireVerdict, excludeTags: flags.excludeTag };
  const statistics = new ExportStatistics({ feature: flags.statsFeature ?? DEFAULT_STATS_FEATURE, format, ratios, seed, clean: flags.clean === true, judge });
  const counts = emptyCounts();
  const source = openInput(input.path);
  // With a split on stdout each line says its split (strip it with jq's del(.split)); --only and --out need no field.
  const tagSplit = ratios !== undefined && flags.out === undefined && flags.only === undefined;

  let stopping = false;
  const onSignal = (): void => {
    if (stopping) return;
    stopping = true;
    source.stream.destroy();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let broken = false;
  try {
    const samples = exportSamples(source.stream, {
      name: input.path ?? source.name,
      format,
      sample: { clean: flags.clean === true, system: flags.system, include },
      ratios,
      seed,
      minTurns: flags.minTurns,
      excludeGuardRejections: flags.excludeFailedGuards === true,
      excludeTruncated: flags.excludeTruncated === true,
      excludeRefusals: flags.excludeRefusals === true,
      judge,
      dedupe: flags.dedupe !== false,
      strict: flags.strict === true,
      onWarning: warn,
      stopped: () => stopping,
    }, counts);
    for await (const { split, sample, interaction } of samples) {
      if (flags.only !== undefined && split !== flags.only) continue;
      await output.write(split, JSON.stringify(tagSplit ? { ...sample, split } : sample));
      statistics.add(interaction, split);
    }
    await output.close();
  } catch (error) {
    if (error instanceof BrokenPipeError) broken = true;
    else {
      // Ctrl-C destroys the input under the reader: what was read is kept. Anything else (--strict) ends here.
      await output.close().catch(() => undefined);
      if (!stopping) throw error;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (broken) return 0;

  const stats = statistics.toJSON({ skipped: counts.skipped, inputLines: counts.lines, interactions: counts.interactions, runUsage });
  const statsPath = flags.stats ?? (flags.out === undefined ? undefined : join(flags.out, EXPORT_FILES.statistics));
  if (statsPath !== undefined) {
    await replaceJson(statsPath, stats).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(`${statsPath}: cannot write statistics (${error.code ?? 'error'})`);
    });
  }
  if (flags.quiet !== true || stopping) report.say(summaryLine(statistics, counts, { format, ratios, judge, stopping, seconds: (Date.now() - started) / 1000, out: flags.out }));
  if (flags.quiet !== true && statistics.total > 0) report.say(qualityLine(statistics.quality()));
  return stopping ? 130 : 0;
}

/** `dropped 12: 5 below --min-score 3, 4 with tag near_duplicate, 3 not judged`, or undefined when the judge filters dropped nothing. */
function judgeDropped(skipped: Skipped, judge: JudgeFilters): string | undefined {
  if (!judgeFiltersOn(judge)) return undefined;
  const other = judge.requireVerdict === 'accept' ? 'reject' : 'accept';
  const parts: [number, string][] = [
    [skipped.below_min_score, `below --min-score ${String(judge.minScore)}`],
    [skipped.other_verdict, `with verdict ${other}`],
    ...Object.entries(skipped.excluded_tags).map(([tag, n]): [number, string] => [n, `with tag ${tag}`]),
    [skipped.not_judged, 'not judged'],
  ];
  const dropped = parts.filter(([n]) => n > 0);
  if (dropped.length === 0) return undefined;
  return `dropped ${dropped.reduce((sum, [n]) => sum + n, 0)}: ${dropped.map(([n, why]) => `${n} ${why}`).join(', ')}`;
}

/** `quality: distinct-1 0.41, distinct-2 0.78 over 210 user turns; near-duplicates 3 of 95 (3.2%); judge: 80 accept, 12 reject, 3 not judged`. */
function qualityLine(quality: QualityReportJSON): string {
  const ratio = (d: QualityReportJSON['distinct_1']): string => `${d.estimated ? '≈' : ''}${d.ratio.toFixed(2)}`;
  const turns = quality.user_turns === 0 ? 'no user turns after the opening' : `distinct-1 ${ratio(quality.distinct_1)}, distinct-2 ${ratio(quality.distinct_2)} over ${quality.user_turns} user turns`;
  const near = quality.near_duplicates;
  const { verdicts } = quality.judge;
  const judged = verdicts.accept + verdicts.reject + verdicts.unreadable;
  const judge = judged === 0 ? 'not judged' : `judge: ${verdicts.accept} accept, ${verdicts.reject} reject` + (verdicts.not_judged > 0 ? `, ${verdicts.not_judged} not judged` : '') + (verdicts.unreadable > 0 ? `, ${verdicts.unreadable} unreadable` : '');
  return `quality: ${turns}; near-duplicates ${near.near_duplicates} of ${near.compared} (${(near.rate * 100).toFixed(1)}%); ${judge}`;
}

/** `exported 120 openai samples (train 96, validation 12, test 12) from 130 interactions; dropped 4: 4 not judged; left out 10 duplicates in 1.2 s → out/`. */
function summaryLine(statistics: ExportStatistics, counts: ExportCounts, run: { readonly format: Format; readonly ratios: SplitRatios | undefined; readonly judge: JudgeFilters; readonly stopping: boolean; readonly seconds: number; readonly out: string | undefined }): string {
  const { skipped } = counts;
  const splits = run.ratios === undefined ? '' : ` (${SPLITS.map((name) => `${name} ${statistics.bySplit[name]}`).join(', ')})`;
  const left = [
    [skipped.bad_lines, 'bad lines'],
    [skipped.below_min_turns, 'below --min-turns'],
    [skipped.guard_rejections, 'with guard rejections'],
    [skipped.truncated_answers, 'with a truncated answer'],
    [skipped.refusals, 'with a refusal'],
    [skipped.duplicates, 'duplicates'],
    [skipped.duplicate_ids, 'duplicate sample ids'],
    [skipped.invalid_samples, `not valid as ${run.format}`],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, what]) => `${String(n)} ${String(what)}`);
  const dropped = judgeDropped(skipped, run.judge);
  return (
    `${run.stopping ? 'interrupted: ' : ''}exported ${statistics.total} ${run.format} samples${splits} from ${counts.interactions} interactions` +
    `${dropped === undefined ? '' : `; ${dropped}`}${left.length === 0 ? '' : `; left out ${left.join(', ')}`} in ${run.seconds.toFixed(1)} s` +
    (run.out === undefined ? '' : ` → ${run.out}`)
  );
}

/** `--system`: none, persona or a text; an empty text (`--system "$UNSET"`) would give samples that every trainer rejects. */
function systemOption(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError(`expected none, persona or a system message text, got \`${value}\``);
  return value;
}

/** `--min-score`: an integer from 0 to 4, the judge's scale. */
function scoreOption(value: string): number {
  const n = /^\d$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 0 && n <= 4)) throw new InvalidArgumentError(`expected an integer from 0 to 4 (the judge's scores), got \`${value}\``);
  return n;
}

/** `--exclude-tag`: repeatable, each value a tag or comma-separated tags, every one known. */
function tagOption(value: string, previous: string[] | undefined): string[] {
  try {
    return [...new Set([...(previous ?? []), ...parseTags(value)])];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function splitOption(value: string): SplitRatios | 'none' {
  try {
    return parseSplit(value) ?? 'none';
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/**
 * Defines `export` on a command made by `cli.command('export')` (so it inherits the program's settings),
 * with `setExitCode` receiving the exit code.
 */
export function exportCommand(command: Command, setExitCode: (code: number) => void): Command {
  return command
    .description('interactions to training samples (personagym, openai or sharegpt), split by persona, with statistics')
    .argument('[interactions]', 'interactions NDJSON file, a `generate --out` directory, or - for stdin', '-')
    .option('-c, --config <file>', 'PersonaGym-compatible config.yaml (training_data.format and .split, experiment.seed)')
    .addOption(new Option('-f, --format <name>', 'sample format').choices(FORMATS).default('personagym'))
    .option('-o, --out <dir>', 'write train.jsonl, validation.jsonl, test.jsonl and statistics.json into DIR')
    .option('--force', 'overwrite the export files already in --out DIR')
    .option('--split <ratios>', 'train,validation,test shares by persona, e.g. 0.8,0.1,0.1; none turns off training_data.split', splitOption)
    .addOption(new Option('--only <split>', 'write only this split to stdout, without the split field').choices(SPLITS))
    .option('--seed <n>', 'seed of the split (default: personaflow.seed, experiment.seed, else 42)', integerOption(0))
    .option('--system <mode>', 'openai/sharegpt system message: none (default), persona, or the text itself', systemOption)
    .option('--clean', 'user turns as the user meant them (metadata.clean_version) instead of the noisy text the assistant saw')
    .option('--min-turns <n>', 'leave out conversations with fewer user→assistant exchanges', integerOption(1))
    .option('--exclude-failed-guards', 'leave out conversations in which the simulator guards rejected a reply (metadata.guard)')
    .option('--exclude-truncated', 'leave out conversations with an assistant answer cut at the token limit')
    .option('--exclude-refusals', 'leave out conversations in which the assistant refused')
    .option('--min-score <n>', "leave out conversations any of whose judge review criteria (metadata.quality.review) scored below N (0-4); those without a review (not judged, or by the checks only) are left out and counted as not judged", scoreOption)
    .addOption(new Option('--require-verdict <verdict>', "keep only conversations with this judge's verdict (metadata.quality.verdict); those not judged are left out and counted as not judged").choices(['accept', 'reject']))
    .option('--exclude-tag <tag>', "leave out conversations whose judge checks or review tags include TAG (repeat the flag or separate tags with commas); those the judge did not check for it are left out and counted as not judged", tagOption)
    .option('--no-dedupe', 'keep conversations whose messages repeat an earlier one (dropped by default)')
    .option('--stats <file>', 'write statistics.json here (default with --out: DIR/statistics.json)')
    .option('--stats-feature <name>', `persona feature that persona_distribution counts by (default: ${DEFAULT_STATS_FEATURE})`)
    .option('--strict', 'stop at the first bad input line instead of reporting and skipping it')
    .option('-q, --quiet', 'no notices or summary on stderr (warnings and errors still appear)')
    .action(async (file: string, flags: ExportFlags) => {
      setExitCode(await runExport(file, flags));
    });
}
