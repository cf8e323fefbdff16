// metadata.quality as export reads it (the judge's verdict, checks and review), and the filters on it: --min-score, --require-verdict, --exclude-tag.
import * as z from 'zod';
import { CHECK_TAGS } from '../judge/checks.js';
import { JUDGE_TAGS } from '../prompts/judge.js';
import { formatIssues } from '../streams/records.js';
import type { InteractionInput } from './samples.js';

const verdict = z.enum(['accept', 'reject']);
const side = z.record(z.string(), z.looseObject({ score: z.number().int().min(0).max(4) }));

/**
 * What export needs of `metadata.quality` (src/judge/judge.ts writes it): the verdict, its reasons, the
 * checks' tags, and the review's scores and tags (null when only the checks ran). Anything else passes.
 */
export const qualityInputSchema = z.looseObject({
  verdict,
  reasons: z.array(z.string()).default([]),
  checks: z.array(z.looseObject({ tag: z.string() })).default([]),
  review: z.looseObject({ user: side, assistant: side, tags: z.array(z.string()).default([]), verdict: verdict.optional() }).nullable().default(null),
  rubric_version: z.string().optional(),
});
export type QualityInput = z.infer<typeof qualityInputSchema>;

/** An interaction's `metadata.quality`: absent (not judged), unreadable (with why), or read. */
export type QualityOf = { readonly state: 'none' } | { readonly state: 'unreadable'; readonly why: string } | { readonly state: 'judged'; readonly quality: QualityInput };

const NONE: QualityOf = { state: 'none' };

/** Reads `metadata.quality`; undefined or null is `none`. */
export function qualityOf(interaction: InteractionInput): QualityOf {
  const value = interaction.metadata?.quality;
  if (value === undefined || value === null) return NONE;
  const parsed = qualityInputSchema.safeParse(value);
  return parsed.success ? { state: 'judged', quality: parsed.data } : { state: 'unreadable', why: formatIssues(parsed.error) };
}

/** Every review score with its criterion, `user.<name>` / `assistant.<name>`. */
export const scoresOf = (review: NonNullable<QualityInput['review']>): [string, number][] => [
  ...Object.entries(review.user).map(([name, { score }]): [string, number] => [`user.${name}`, score]),
  ...Object.entries(review.assistant).map(([name, { score }]): [string, number] => [`assistant.${name}`, score]),
];

/** The tags `--exclude-tag` knows: the deterministic checks' and the judge's. */
export const KNOWN_TAGS: readonly string[] = [...CHECK_TAGS, ...JUDGE_TAGS];
const CHECK_TAG_SET: ReadonlySet<string> = new Set(CHECK_TAGS);
const KNOWN_TAG_SET: ReadonlySet<string> = new Set(KNOWN_TAGS);

/**
 * The tags of one `--exclude-tag` value (comma-separated), checked against the known ones.
 *
 * @example
 * parseTags('near_duplicate,hallucination') // ['near_duplicate', 'hallucination']
 * parseTags('hallucinated') // throws: unknown tag `hallucinated`; the checks' tags are ..., the judge's ...
 */
export function parseTags(value: string): string[] {
  const tags = value.split(',').map((tag) => tag.trim());
  for (const tag of tags) {
    if (tag === '') throw new Error(`expected a tag or comma-separated tags, got \`${value}\``);
    if (!KNOWN_TAG_SET.has(tag)) throw new Error(`unknown tag \`${tag}\`; the checks' tags are ${CHECK_TAGS.join(', ')}; the judge's are ${JUDGE_TAGS.join(', ')}`);
  }
  return tags;
}

/** The filters on the judge's results; each undefined is off. */
export interface JudgeFilters {
  /** Drop a conversation any of whose review criteria scored below this (0-4). */
  readonly minScore?: number | undefined;
  /** Keep only conversations with this verdict. */
  readonly requireVerdict?: 'accept' | 'reject' | undefined;
  /** Drop conversations whose checks or review tags include any of these. */
  readonly excludeTags?: readonly string[] | undefined;
}

/** Checks the filters up front (the command line's parsers say it better; this guards the library's callers). */
export function checkJudgeFilters(filters: JudgeFilters): void {
  const { minScore, requireVerdict, excludeTags = [] } = filters;
  if (minScore !== undefined && !(Number.isInteger(minScore) && minScore >= 0 && minScore <= 4)) throw new TypeError(`Expected \`minScore\` to be an integer from 0 to 4, got \`${String(minScore)}\` (${typeof minScore})`);
  if (requireVerdict !== undefined && requireVerdict !== 'accept' && requireVerdict !== 'reject') throw new TypeError(`Expected \`requireVerdict\` to be accept or reject, got \`${String(requireVerdict)}\``);
  const unknown = excludeTags.filter((tag) => !KNOWN_TAG_SET.has(tag));
  if (unknown.length > 0) throw new TypeError(`Expected \`excludeTags\` to hold known tags (${KNOWN_TAGS.join(', ')}), got \`${unknown.join(', ')}\``);
}

/** Why the judge filters dropped a conversation. */
export type JudgeDrop = { readonly why: 'not_judged' } | { readonly why: 'below_min_score' } | { readonly why: 'other_verdict' } | { readonly why: 'tag'; readonly tag: string };

const NOT_JUDGED: JudgeDrop = { why: 'not_judged' };

/** Whether any judge filter is on. */
export const judgeFiltersOn = (filters: JudgeFilters | undefined): filters is JudgeFilters =>
  filters !== undefined && (filters.minScore !== undefined || filters.requireVerdict !== undefined || (filters.excludeTags?.length ?? 0) > 0);

/**
 * Why the filters drop a conversation with this quality record (undefined: no record), or undefined when
 * it passes. A filter that needs what the judge did not record drops the conversation as `not_judged`:
 * `--min-score` needs a review, `--require-verdict` a record, `--exclude-tag` a record for a check tag and
 * a review for a judge tag (the checks run whenever the judge does; a review only when a model was asked).
 * The first filter that fails names the reason, in the order --min-score, --require-verdict, then the
 * tags as given.
 *
 * @example
 * judgeDrop(undefined, { minScore: 3 }) // { why: 'not_judged' }
 * judgeDrop(quality, { excludeTags: ['near_duplicate'] }) // { why: 'tag', tag: 'near_duplicate' } when a check found one
 */
export function judgeDrop(quality: QualityInput | undefined, filters: JudgeFilters): JudgeDrop | undefined {
  if (filters.minScore !== undefined) {
    const review = quality?.review ?? null;
    if (review === null) return NOT_JUDGED;
    const minScore = filters.minScore;
    if (scoresOf(review).some(([, score]) => score < minScore)) return { why: 'below_min_score' };
  }
  if (filters.requireVerdict !== undefined) {
    if (quality === undefined) return NOT_JUDGED;
    if (quality.verdict !== filters.requireVerdict) return { why: 'other_verdict' };
  }
  for (const tag of filters.excludeTags ?? []) {
    if (quality === undefined) return NOT_JUDGED;
    if (CHECK_TAG_SET.has(tag)) {
      if (quality.checks.some((check) => check.tag === tag)) return { why: 'tag', tag };
    } else if (quality.review === null) return NOT_JUDGED;
    else if (quality.review.tags.includes(tag)) return { why: 'tag', tag };
  }
  return undefined;
}
