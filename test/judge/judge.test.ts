// createJudge: the checks, then the model's review re-asked until its JSON is good, then one verdict with its reasons.
import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { Observable, lastValueFrom, of, throwError } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ChatModel, ChatRequest, ChatResponse, ModelOperation, TokenUsage } from '../../src/chat.js';
import { ModelError } from '../../src/errors.js';
import type { Finding } from '../../src/judge/checks.js';
import { createJudge, type JudgeOptions } from '../../src/judge/judge.js';
import { retryingCall } from '../../src/operators/retryingCall.js';
import { RejectedAnswerError, type PromptCall } from '../../src/prompts/ask.js';
import { DEFAULT_JUDGE_TEMPLATE, RUBRIC_VERSION, judgePrompt } from '../../src/prompts/judge.js';
import { JUDGED } from '../fixtures/judged-conversations.js';
import { ListModel, review } from './scripted.js';

const TEMPLATE = readFileSync(DEFAULT_JUDGE_TEMPLATE, 'utf8');

/** A PromptCall answering from a list with no retries: what createJudge is handed by its caller. */
function listCall(answers: readonly (string | Error)[]): PromptCall & { requests: ChatRequest[] } {
  const requests: ChatRequest[] = [];
  const call = (_model: ChatModel, request: ChatRequest): Observable<ChatResponse> => {
    requests.push(request);
    const step = answers[Math.min(requests.length, answers.length) - 1];
    return step instanceof Error ? throwError(() => step) : of({ content: step ?? '', usage: { input: 10, output: 5 } });
  };
  return Object.assign(call, { requests });
}

const model = new ListModel([]);
const judgeWith = (options: Partial<JudgeOptions> & { validationRetries?: number } = {}) => {
  const { validationRetries = 2, ...rest } = options;
  return createJudge({ reviewer: { model, validationRetries }, template: TEMPLATE, ...rest });
};

const clean = JUDGED.find((entry) => entry.id === 'clean/baby-sleep-regression')?.conversation;
const truncated = JUDGED.find((entry) => entry.id === 'truncated_answer/banana-bread-cut')?.conversation;
if (clean === undefined || truncated === undefined) throw new Error('fixture conversations moved');

describe('createJudge', () => {
  it('accepts a clean conversation with a good review, recording the scores, the reviewer and the rubric version', async () => {
    const call = listCall([review({ score: 4 })]);
    const quality = await lastValueFrom(judgeWith().judge(clean, call));
    expect(quality).toMatchObject({ verdict: 'accept', reasons: [], checks: [], rubric_version: RUBRIC_VERSION, review: { verdict: 'accept', tags: [], judge_model: { provider: 'scripted', model: 'judge-1' }, user: { naturalness: { score: 4, reason: 'naturalness reason' } } } });
    expect(call.requests).toHaveLength(1);
    expect(call.requests[0]).toMatchObject({ module: 'judge', messages: [{ role: 'user', content: judgePrompt(TEMPLATE, { persona: clean.persona_features, facts: [], messages: clean.messages }) }] });
    expect(call.requests[0]?.operation).toBeUndefined();
  });

  it('asks nothing until subscribed, and asks again on a second subscription', async () => {
    const call = listCall([review()]);
    const judged = judgeWith().judge(clean, call);
    expect(call.requests).toHaveLength(0);
    await lastValueFrom(judged);
    await lastValueFrom(judged);
    expect(call.requests).toHaveLength(2);
  });

  it('shows the judge the facts the user had', async () => {
    const call = listCall([review()]);
    await lastValueFrom(judgeWith().judge({ ...clean, facts: ['Her daughter is 4 months old', 'She breastfeeds'] }, call));
    expect(call.requests[0]?.messages[0]?.content).toContain('- Her daughter is 4 months old\n- She breastfeeds');
  });

  it('re-asks after malformed JSON, showing the rejected answer and why, and accepts the good answer that follows', async () => {
    const call = listCall(['Looks fine to me, I would accept it.', review()]);
    const quality = await lastValueFrom(judgeWith().judge(clean, call));
    expect(quality.verdict).toBe('accept');
    expect(call.requests.map((r) => r.operation)).toEqual([undefined, 'validation_retry']);
    expect(call.requests[1]?.messages.slice(1)).toEqual([
      { role: 'assistant', content: 'Looks fine to me, I would accept it.' },
      { role: 'user', content: 'That answer was rejected (no JSON object). Answer again with the JSON object only, every criterion scored 0 to 4, and a verdict.' },
    ]);
    expect(call.requests[1]?.temperature).toBeGreaterThan(call.requests[0]?.temperature ?? 0.7);
  });

  it('errors with a RejectedAnswerError when every answer is rejected: a conversation is never passed unjudged', async () => {
    const call = listCall(['{"user": {}}', 'no idea', review({ score: 7 })]);
    const error: unknown = await lastValueFrom(judgeWith({ validationRetries: 2 }).judge(clean, call)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RejectedAnswerError);
    expect((error as Error).message).toMatchInlineSnapshot(`"judge answer rejected 3 time(s), last: user.persona_adherence: a score from 0 to 4 is needed"`);
    expect(call.requests).toHaveLength(3);
    const none = listCall(['nope']);
    await expect(lastValueFrom(judgeWith({ validationRetries: 0 }).judge(clean, none))).rejects.toBeInstanceOf(RejectedAnswerError);
    expect(none.requests).toHaveLength(1);
  });

  test.prop([fc.array(fc.constantFrom('good', 'prose', 'score5', 'noverdict', 'fenced'), { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 4 })])(
    'accepts only when a well-formed answer comes within validationRetries + 1 answers, else errors; never a silent pass',
    async (kinds, validationRetries) => {
      const text = { good: review(), fenced: `Review:\n\`\`\`json\n${review()}\n\`\`\``, prose: 'All good.', score5: review({ score: 5 }), noverdict: review().replace('"verdict":"accept"', '"verdict":null') };
      const call = listCall(kinds.map((kind) => text[kind]));
      const firstGood = kinds.findIndex((kind) => kind === 'good' || kind === 'fenced');
      const outcome = await lastValueFrom(judgeWith({ validationRetries }).judge(clean, call)).then(
        (quality) => ({ ok: true as const, quality }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      if (firstGood >= 0 && firstGood <= validationRetries) {
        expect(outcome).toMatchObject({ ok: true, quality: { verdict: 'accept' } });
        expect(call.requests).toHaveLength(firstGood + 1);
      } else {
        expect(outcome.ok).toBe(false);
        expect(outcome.ok || outcome.error).toBeInstanceOf(RejectedAnswerError);
        expect(call.requests).toHaveLength(validationRetries + 1);
      }
    },
  );

  it('counts the re-ask as a validation retry in the usage by operation, with exactly the tokens the model returned', async () => {
    const listed = new ListModel(['{"verdict": "accept"}', review()]);
    const seen: [string, string, TokenUsage, ModelOperation, boolean][] = [];
    const call = retryingCall({ maxRetries: 0, retryDelayMs: 0, onUsage: (module, ref, usage, detail) => seen.push([module, ref.model, usage, detail.operation, detail.failed]) });
    const judge = createJudge({ reviewer: { model: listed, validationRetries: 1 }, template: TEMPLATE });
    expect((await lastValueFrom(judge.judge(clean, call))).verdict).toBe('accept');
    expect(seen).toEqual([
      ['judge', 'judge-1', ListModel.usageOf(1), 'review', false],
      ['judge', 'judge-1', ListModel.usageOf(2), 'validation_retry', false],
    ]);
  });

  it.each([
    [{ score: 1 }, undefined, ['user.persona_adherence', 'user.naturalness', 'user.ending', 'user.information', 'user.consistency', 'assistant.answered', 'assistant.clarification', 'assistant.noise_handling']],
    [{ scores: { 'user.naturalness': 1 } }, undefined, ['user.naturalness']],
    [{ scores: { 'assistant.noise_handling': 0 } }, undefined, ['assistant.noise_handling']],
    [{ scores: { 'user.ending': 2 } }, undefined, []],
    [{ scores: { 'user.ending': 2 } }, 3, ['user.ending']],
    [{ score: 0 }, 0, []],
  ])('rejects a review scoring a criterion below min_score, naming it side.criterion (%j, min %s)', async (scores, minScore, reasons) => {
    const quality = await lastValueFrom(judgeWith(minScore === undefined ? {} : { minScore }).judge(clean, listCall([review(scores)])));
    expect(quality.reasons).toEqual(reasons);
    expect(quality.verdict).toBe(reasons.length === 0 ? 'accept' : 'reject');
  });

  it("rejects on the judge's own verdict, with the reason `verdict`", async () => {
    const quality = await lastValueFrom(judgeWith().judge(clean, listCall([review({ verdict: 'reject' })])));
    expect(quality).toMatchObject({ verdict: 'reject', reasons: ['verdict'] });
  });

  it('still asks the model when a check found something, and rejects with the check tag among the reasons', async () => {
    const call = listCall([review({ tags: ['truncated'] })]);
    const quality = await lastValueFrom(judgeWith().judge(truncated, call));
    expect(call.requests).toHaveLength(1);
    expect(call.requests[0]?.hints?.judge?.checks).toEqual(['truncated_answer']);
    expect(quality).toMatchObject({ verdict: 'reject', reasons: ['truncated_answer'], checks: [{ tag: 'truncated_answer', turn: 0 }], review: { verdict: 'accept', tags: ['truncated'] } });
  });

  it('adds the caller’s findings (a near-duplicate) to the checks, and gives each reason once', async () => {
    const extra: Finding[] = [
      { tag: 'near_duplicate', turn: 0, detail: 'nearly repeats x' },
      { tag: 'truncated_answer', turn: 3, detail: 'again' },
    ];
    const quality = await lastValueFrom(judgeWith().judge(truncated, listCall([review({ verdict: 'reject', scores: { 'user.ending': 0 } })]), extra));
    expect(quality.checks.map((c) => c.tag)).toEqual(['truncated_answer', 'near_duplicate', 'truncated_answer']);
    expect(quality.reasons).toEqual(['truncated_answer', 'near_duplicate', 'user.ending', 'verdict']);
  });

  it('rejects on review tags named in rejectTags; by default a review tag alone does not reject', async () => {
    const tagged = review({ tags: ['hallucination', 'refusal'] });
    expect(await lastValueFrom(judgeWith().judge(clean, listCall([tagged])))).toMatchObject({ verdict: 'accept', reasons: [], review: { tags: ['hallucination', 'refusal'] } });
    expect(await lastValueFrom(judgeWith({ rejectTags: ['hallucination'] }).judge(clean, listCall([tagged])))).toMatchObject({ verdict: 'reject', reasons: ['hallucination'] });
    // rejectTags replaces the default: check tags it leaves out are recorded, and do not reject.
    expect(await lastValueFrom(judgeWith({ rejectTags: ['hallucination'] }).judge(truncated, listCall([review()])))).toMatchObject({ verdict: 'accept', reasons: [], checks: [{ tag: 'truncated_answer' }] });
  });

  it('without a reviewer runs the checks only: no call, no review, the verdict from the checks', async () => {
    const call = listCall([]);
    const checksOnly = createJudge({ template: TEMPLATE, minTurns: 4 });
    expect(checksOnly.model).toBeUndefined();
    expect(await lastValueFrom(checksOnly.judge(truncated, call))).toEqual({
      verdict: 'reject',
      reasons: ['truncated_answer', 'too_short'],
      checks: [
        { tag: 'truncated_answer', turn: 0, detail: 'cut at the token limit' },
        { tag: 'too_short', turn: 2, detail: '2 exchange(s), fewer than 4' },
      ],
      review: null,
      rubric_version: RUBRIC_VERSION,
    });
    expect(await lastValueFrom(createJudge({ template: TEMPLATE }).judge(clean, call))).toMatchObject({ verdict: 'accept', reasons: [], review: null });
    expect(call.requests).toHaveLength(0);
  });

  it('passes a model error through untouched (its caller retries and decides)', async () => {
    const down = new ModelError('server', 'server error (503)', { status: 503 });
    await expect(lastValueFrom(judgeWith().judge(clean, listCall([down])))).rejects.toBe(down);
  });

  it('names its reviewer', () => {
    expect(judgeWith().model).toEqual({ provider: 'scripted', model: 'judge-1' });
  });
});
