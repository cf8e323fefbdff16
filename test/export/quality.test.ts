import { Readable } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { CHECK_TAGS } from '../../src/judge/checks.js';
import { JUDGE_TAGS } from '../../src/prompts/judge.js';
import { KNOWN_TAGS, checkJudgeFilters, judgeDrop, parseTags, qualityInputSchema, type JudgeFilters } from '../../src/export/quality.js';
import { emptyCounts, exportSamples, type ExportStreamOptions } from '../../src/export/stream.js';
import { collect, interaction, ndjson, withDistinctIds, type TestInteraction } from './arbitraries.js';

const source = (text: string): AsyncIterable<Buffer> => Readable.from([Buffer.from(text)]);
const options = (extra: Partial<ExportStreamOptions> = {}): ExportStreamOptions => ({ name: 'in.ndjson', format: 'personagym', seed: 42, dedupe: false, ...extra });

/** A metadata.quality as src/judge/judge.ts writes it. */
interface TestQuality {
  verdict: 'accept' | 'reject';
  reasons: string[];
  checks: { tag: string; turn: number; detail: string }[];
  review: null | {
    user: Record<string, { score: number; reason: string }>;
    assistant: Record<string, { score: number; reason: string }>;
    tags: string[];
    verdict: 'accept' | 'reject';
    verdict_reason: string;
    judge_model: { provider: string; model: string };
  };
  rubric_version: string;
}

const scored = fc.record({ score: fc.integer({ min: 0, max: 4 }), reason: fc.constant('because') });
const verdict = fc.constantFrom<'accept' | 'reject'>('accept', 'reject');
const review = fc.record({
  user: fc.record({ persona_adherence: scored, naturalness: scored, ending: scored, information: scored, consistency: scored }),
  assistant: fc.record({ answered: scored, clarification: scored, noise_handling: scored }),
  tags: fc.subarray([...JUDGE_TAGS], { maxLength: 3 }),
  verdict,
  verdict_reason: fc.constant('ok'),
  judge_model: fc.constant({ provider: 'sim', model: 'judge' }),
});
const quality: fc.Arbitrary<TestQuality> = fc.record({
  verdict,
  reasons: fc.constant([]),
  checks: fc.subarray([...CHECK_TAGS], { maxLength: 3 }).map((tags) => tags.map((tag) => ({ tag, turn: 1, detail: 'found' }))),
  review: fc.option(review, { nil: null }),
  rubric_version: fc.constant('personaflow-judge-1'),
});
const filters: fc.Arbitrary<JudgeFilters> = fc.record({
  minScore: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
  requireVerdict: fc.option(verdict, { nil: undefined }),
  excludeTags: fc.option(fc.subarray([...KNOWN_TAGS], { maxLength: 3 }), { nil: undefined }),
});
/** Interactions, each with a quality record or none. */
const judged = fc
  .array(fc.tuple(interaction(8), fc.option(quality, { nil: undefined })), { maxLength: 40 })
  .map((pairs) => withDistinctIds(pairs.map(([item, q]) => ({ ...item, metadata: q === undefined ? item.metadata : { ...item.metadata, quality: q } }))));

const qualityIn = (item: TestInteraction): TestQuality | undefined => item.metadata.quality as TestQuality | undefined;

/** The oracle, written apart from judgeDrop: whether the filters can tell this record passes every one of them. */
function passes(q: TestQuality | undefined, f: JudgeFilters): boolean {
  if (f.minScore !== undefined && (q?.review == null || [...Object.values(q.review.user), ...Object.values(q.review.assistant)].some((s) => s.score < f.minScore!))) return false;
  if (f.requireVerdict !== undefined && q?.verdict !== f.requireVerdict) return false;
  for (const tag of f.excludeTags ?? []) {
    if (q === undefined) return false;
    const isCheck = (CHECK_TAGS as readonly string[]).includes(tag);
    if (isCheck && q.checks.some((c) => c.tag === tag)) return false;
    if (!isCheck && (q.review === null || q.review.tags.includes(tag))) return false;
  }
  return true;
}

describe('judge filters in exportSamples', () => {
  test.prop([judged, filters])('kept + dropped = input, and what is kept is exactly what satisfies every filter', async (items, f) => {
    const counts = emptyCounts();
    const out = await collect(exportSamples(source(ndjson(items)), options({ judge: f }), counts));
    const { skipped } = counts;
    const tagged = Object.values(skipped.excluded_tags).reduce((a, b) => a + b, 0);
    expect(out.length + skipped.below_min_score + skipped.other_verdict + tagged + skipped.not_judged).toBe(items.length);
    for (const { interaction: kept } of out) expect(passes(kept.metadata?.quality as TestQuality | undefined, f)).toBe(true);
    expect(out.map((o) => o.interaction.interaction_id)).toEqual(items.filter((item) => passes(qualityIn(item), f)).map((item) => item.interaction_id));
    // Only tags that were asked for are counted.
    for (const tag of Object.keys(skipped.excluded_tags)) expect(f.excludeTags).toContain(tag);
  });

  test.prop([judged])('no judge filter: nothing is dropped for the judge, whatever the records say', async (items) => {
    const counts = emptyCounts();
    const out = await collect(exportSamples(source(ndjson(items)), options({ judge: { excludeTags: [] } }), counts));
    expect(out).toHaveLength(items.length);
    expect([counts.skipped.below_min_score, counts.skipped.other_verdict, counts.skipped.not_judged, counts.skipped.excluded_tags]).toEqual([0, 0, 0, {}]);
  });

  it('a metadata.quality it cannot read is reported as FILE:LINE and counted as not judged; --strict stops there', async () => {
    const [one, two] = withDistinctIds(fc.sample(interaction(), { numRuns: 2, seed: 5 }));
    const bad = { ...one!, metadata: { ...one!.metadata, quality: { verdict: 'maybe' } } };
    const warnings: string[] = [];
    const counts = emptyCounts();
    const out = await collect(exportSamples(source(ndjson([bad, two])), options({ judge: { requireVerdict: 'accept' }, onWarning: (m) => warnings.push(m) }), counts));
    expect(out).toEqual([]);
    expect(counts.skipped.not_judged).toBe(2);
    expect(warnings).toMatchInlineSnapshot(`
      [
        "in.ndjson:1: metadata.quality is not the judge's record (verdict: Invalid option: expected one of "accept"|"reject"): counted as not judged",
      ]
    `);
    await expect(collect(exportSamples(source(ndjson([bad, two])), options({ judge: { requireVerdict: 'accept' }, strict: true })))).rejects.toThrow(/^in\.ndjson:1: metadata\.quality is not the judge's record/);
  });

  it('checks its options up front', async () => {
    await expect(collect(exportSamples(source(''), options({ judge: { minScore: 5 } })))).rejects.toThrow('Expected `minScore` to be an integer from 0 to 4, got `5` (number)');
    expect(() => checkJudgeFilters({ excludeTags: ['near_duplicate', 'vibes'] })).toThrow(/^Expected `excludeTags` to hold known tags \(.*\), got `vibes`$/);
  });
});

describe('judgeDrop', () => {
  const q = (extra: Partial<TestQuality> = {}) =>
    qualityInputSchema.parse({
      verdict: 'reject',
      reasons: ['user.ending'],
      checks: [{ tag: 'near_duplicate', turn: 0, detail: 'nearly repeats x' }],
      review: {
        user: { persona_adherence: { score: 4, reason: '' }, naturalness: { score: 3, reason: '' }, ending: { score: 1, reason: '' }, information: { score: 4, reason: '' }, consistency: { score: 4, reason: '' } },
        assistant: { answered: { score: 4, reason: '' }, clarification: { score: 4, reason: '' }, noise_handling: { score: 4, reason: '' } },
        tags: ['premature_termination'],
        verdict: 'accept',
        verdict_reason: '',
        judge_model: { provider: 'sim', model: 'judge' },
      },
      rubric_version: 'personaflow-judge-1',
      ...extra,
    });
  const checksOnly = () => q({ review: null });

  it.each([
    ['no record, --min-score', undefined, { minScore: 0 }, { why: 'not_judged' }],
    ['no record, --require-verdict', undefined, { requireVerdict: 'reject' }, { why: 'not_judged' }],
    ['no record, a check tag', undefined, { excludeTags: ['too_short'] }, { why: 'not_judged' }],
    ['checks only, --min-score', 'checks', { minScore: 0 }, { why: 'not_judged' }],
    ['checks only, a judge tag', 'checks', { excludeTags: ['hallucination'] }, { why: 'not_judged' }],
    ['checks only, a check tag it has', 'checks', { excludeTags: ['near_duplicate'] }, { why: 'tag', tag: 'near_duplicate' }],
    ['checks only, a check tag it lacks', 'checks', { excludeTags: ['too_short'] }, undefined],
    ['the lowest score is 1: --min-score 1 keeps', 'full', { minScore: 1 }, undefined],
    ['the lowest score is 1: --min-score 2 drops', 'full', { minScore: 2 }, { why: 'below_min_score' }],
    ['--require-verdict reads the final verdict, not the review’s', 'full', { requireVerdict: 'accept' }, { why: 'other_verdict' }],
    ['a judge tag of the review', 'full', { excludeTags: ['hallucination', 'premature_termination'] }, { why: 'tag', tag: 'premature_termination' }],
    ['the first filter that fails names the reason', 'full', { minScore: 2, requireVerdict: 'accept', excludeTags: ['near_duplicate'] }, { why: 'below_min_score' }],
    ['tags in the order given', 'full', { excludeTags: ['premature_termination', 'near_duplicate'] }, { why: 'tag', tag: 'premature_termination' }],
  ] as const)('%s', (_name, record, f, expected) => {
    const quality = record === undefined ? undefined : record === 'checks' ? checksOnly() : q();
    expect(judgeDrop(quality, f as JudgeFilters)).toEqual(expected);
  });
});

describe('parseTags', () => {
  it('takes one tag or a comma-separated list', () => {
    expect(parseTags('near_duplicate')).toEqual(['near_duplicate']);
    expect(parseTags('near_duplicate, hallucination')).toEqual(['near_duplicate', 'hallucination']);
  });

  it('names the known tags when one is unknown', () => {
    expect(() => parseTags('near_duplicate,halucination')).toThrowErrorMatchingInlineSnapshot(`[Error: unknown tag \`halucination\`; the checks' tags are user_assistant_voice, user_out_of_character, user_too_long, user_repeats, premature_stop, truncated_answer, assistant_refusal, too_short, near_duplicate; the judge's are hallucination, revealed_info_early, premature_termination, missing_termination, inconsistent_behavior, persona_break, assistant_voice, unanswered, no_clarification, noise_misread, refusal, truncated]`);
    expect(() => parseTags('near_duplicate,,too_short')).toThrow('expected a tag or comma-separated tags, got `near_duplicate,,too_short`');
  });
});
