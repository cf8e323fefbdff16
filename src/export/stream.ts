// The export stream: interaction lines in, validated samples with their split out; filters, dedupe and FILE:LINE reports on the way.
import { quoted } from '../redact.js';
import type { ReadLinesOptions } from '../streams/ndjson.js';
import { formatIssues, readRecords } from '../streams/records.js';
import { KeySet } from '../streams/seen.js';
import { checkJudgeFilters, judgeDrop, judgeFiltersOn, qualityOf, type JudgeFilters } from './quality.js';
import { SAMPLE_SCHEMAS, assistantIssues, conversationKey, hadGuardRejections, interactionInputSchema, sampleId, toSample, turnsOf, type Format, type InteractionInput, type Sample, type SampleOptions, type SplitName } from './samples.js';
import { splitOf, type SplitRatios } from './split.js';
import type { Skipped } from './statistics.js';

export interface ExportStreamOptions extends ReadLinesOptions {
  /** What messages call the input: `interactions.ndjson`, `stdin`. */
  readonly name: string;
  readonly format: Format;
  readonly sample?: SampleOptions;
  /** Split by persona with these ratios; undefined: every sample is `train` (no split). */
  readonly ratios?: SplitRatios | undefined;
  /** Seed of the split. */
  readonly seed: number;
  /** Leave out conversations with fewer user→assistant exchanges. */
  readonly minTurns?: number | undefined;
  /** Leave out conversations in which the simulator guards rejected any reply. */
  readonly excludeGuardRejections?: boolean;
  /** Leave out conversations with an assistant answer cut at the token limit (`--exclude-truncated`). */
  readonly excludeTruncated?: boolean;
  /** Leave out conversations in which the assistant refused (`--exclude-refusals`). */
  readonly excludeRefusals?: boolean;
  /** Filters on the judge's results, `metadata.quality` (`--min-score`, `--require-verdict`, `--exclude-tag`). */
  readonly judge?: JudgeFilters | undefined;
  /**
   * Leave out a conversation whose messages (as exported, system message included) already came. Default
   * true. A second interaction with an earlier one's sample id is left out (and reported) either way.
   */
  readonly dedupe?: boolean;
  /** Stop at the first bad line (ConfigError) instead of reporting and skipping it. */
  readonly strict?: boolean;
  /** Receives `FILE:LINE: message` for every bad line, sample that fails its schema, or repeated sample id. */
  readonly onWarning?: (message: string) => void;
  /** Whether to stop reading (Ctrl-C): checked before each line. */
  readonly stopped?: () => boolean;
}

/** One sample on its way out. */
export interface ExportedSample {
  readonly split: SplitName;
  readonly sample: Sample;
  readonly interaction: InteractionInput;
  /** `file:LINE`. */
  readonly source: string;
}

/** What the stream read and left out, counted as it goes. */
export interface ExportCounts {
  lines: number;
  interactions: number;
  readonly skipped: Skipped;
}

export const emptyCounts = (): ExportCounts => ({
  lines: 0,
  interactions: 0,
  skipped: { bad_lines: 0, below_min_turns: 0, guard_rejections: 0, truncated_answers: 0, refusals: 0, below_min_score: 0, other_verdict: 0, excluded_tags: {}, not_judged: 0, duplicates: 0, duplicate_ids: 0, invalid_samples: 0 },
});

/**
 * Reads interaction NDJSON and yields one validated sample per interaction that passes the filters, with
 * its split. Pulled line by line (the reader reads a chunk only when asked), so memory holds one chunk and
 * one line, plus 16 bytes per exported sample for each of the two dedupe checks. A bad line (not UTF-8,
 * not JSON, not an interaction) is reported as `FILE:LINE: message` and skipped, or ends the stream under
 * `strict`; so is a sample its format's schema rejects (an empty message, say).
 *
 * Sample ids are unique in the output: an interaction whose sample id (`sample_<persona_id>_<query_id>`,
 * deterministic per persona × query) came before with another conversation, say from a second run
 * appended to the file, is left out and reported as `FILE:LINE: duplicate sample id ...`; the first
 * is kept. One that repeats an earlier conversation too is a plain duplicate, left out without a word.
 *
 * The judge filters (`judge`) come after the others and before dedupe, so that a rejected conversation
 * does not keep out a later identical one; see `judgeDrop` for which reason a dropped one is counted
 * under. A `metadata.quality` they cannot read is reported as `FILE:LINE` and counted as not judged.
 *
 * @example
 * for await (const { split, sample } of exportSamples(createReadStream('interactions.ndjson'), { name: 'interactions.ndjson', format: 'openai', seed: 42 })) ...
 */
export async function* exportSamples(input: AsyncIterable<Buffer | string>, options: ExportStreamOptions, counts: ExportCounts = emptyCounts()): AsyncGenerator<ExportedSample> {
  const seen = options.dedupe === false ? undefined : new KeySet();
  const ids = new KeySet();
  const schema = SAMPLE_SCHEMAS[options.format];
  const judge = judgeFiltersOn(options.judge) ? options.judge : undefined;
  if (judge !== undefined) checkJudgeFilters(judge);
  const records = readRecords(input, interactionInputSchema, {
    ...options,
    what: 'not an interaction: ',
    onLine: () => (counts.lines += 1),
    onBadLine: () => (counts.skipped.bad_lines += 1),
  });
  for await (const { value: interaction, where: source, report } of records) {
    counts.interactions += 1;
    if (options.minTurns !== undefined && turnsOf(interaction) < options.minTurns) {
      counts.skipped.below_min_turns += 1;
      continue;
    }
    if (options.excludeGuardRejections === true && hadGuardRejections(interaction)) {
      counts.skipped.guard_rejections += 1;
      continue;
    }
    if (options.excludeTruncated === true || options.excludeRefusals === true) {
      const issues = assistantIssues(interaction);
      if (options.excludeTruncated === true && issues.truncated > 0) {
        counts.skipped.truncated_answers += 1;
        continue;
      }
      if (options.excludeRefusals === true && issues.refused > 0) {
        counts.skipped.refusals += 1;
        continue;
      }
    }
    if (judge !== undefined) {
      const quality = qualityOf(interaction);
      if (quality.state === 'unreadable') report(`${source}: metadata.quality is not the judge's record (${quality.why}): counted as not judged`);
      const drop = quality.state === 'unreadable' ? ({ why: 'not_judged' } as const) : judgeDrop(quality.state === 'judged' ? quality.quality : undefined, judge);
      if (drop !== undefined) {
        const { skipped } = counts;
        if (drop.why === 'tag') skipped.excluded_tags[drop.tag] = (skipped.excluded_tags[drop.tag] ?? 0) + 1;
        else skipped[drop.why] += 1;
        continue;
      }
    }
    const checked = schema.safeParse(toSample(options.format, interaction, options.sample));
    if (!checked.success) {
      counts.skipped.invalid_samples += 1;
      report(`${source}: cannot be exported as ${options.format}: ${formatIssues(checked.error)}`);
      continue;
    }
    const key = seen === undefined ? undefined : conversationKey(options.format, interaction, options.sample);
    if (key !== undefined && seen?.has(key) === true) {
      counts.skipped.duplicates += 1;
      continue;
    }
    const id = sampleId(interaction);
    if (ids.has(id)) {
      counts.skipped.duplicate_ids += 1;
      options.onWarning?.(`${source}: duplicate sample id ${quoted(id)} (interaction_id ${quoted(interaction.interaction_id)}) came before: left out, the first one is kept`);
      continue;
    }
    ids.add(id);
    if (key !== undefined) seen?.add(key);
    const split = options.ratios === undefined ? 'train' : splitOf(options.seed, interaction.persona_id, options.ratios);
    yield { split, sample: checked.data, interaction, source };
  }
}
