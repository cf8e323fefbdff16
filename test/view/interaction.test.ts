// One interaction line read for the viewer: facets, row and conversation view, with and without what newer runs record (end_reason, quality, rejections).
import { describe, expect, it } from 'vitest';
import { REDACTED } from '../../src/view/redact.js';
import { conversationOf, facetsOf, qualityOf, rejectionKeys, rejectionOf, rowOf, interactionKeys, PREVIEW_CHARS } from '../../src/view/interaction.js';
import { interaction } from './fixtures.js';
import type { Quality } from '../../src/judge/judge.js';

const noisy = interaction({
  persona: 'p1',
  features: { role: 'nurse', age: 42, tags: ['a', 'b'], long: 'x'.repeat(500) },
  turns: [
    { user: 'helo wrold', clean: 'hello world', assistant: 'Hi!' },
    { user: 'and now?', assistant: 'Now this.' },
    { user: 'now and then?', clean: 'and then?', assistant: 'Then that.' },
  ],
});

describe('facetsOf', () => {
  it('reads what the filters and the dashboard need', () => {
    const facets = facetsOf(noisy);
    expect(facets).toMatchObject({
      id: 'interaction_p1_q1',
      persona: 'p1',
      queryId: 'q1',
      model: 'sim/m1',
      endReason: null,
      noised: true,
      noisedTurns: 2,
      noise: ['typo', 'word_swap'],
      round: null,
      verdict: null,
      scores: [],
      turns: 3,
      userWords: [2, 2, 3],
    });
    expect(facets?.features.slice(0, 3)).toEqual([
      ['role', 'nurse'],
      ['age', '42'],
      ['tags', '["a","b"]'],
    ]);
    expect(facets?.features[3]?.[1]).toHaveLength(120);
  });

  it('reads end_reason, supplement_round, guard reasons and the judge when a run recorded them', () => {
    const facets = facetsOf(interaction({ persona: 'p', endReason: 'max_turns', round: 2, guard: { echo: 2, empty: 0 }, quality: { verdict: 'keep', scores: { helpfulness: 4, persona_fit: { score: 3.5 } }, tags: ['terse'] } }));
    expect(facets).toMatchObject({ endReason: 'max_turns', round: 2, guard: [['echo', 2]], verdict: 'keep', scores: [['helpfulness', 4], ['persona_fit', 3.5]] });
  });

  it.each([
    [{ verdict: 'pass', scores: { a: 1 } }, { verdict: 'pass', scores: [['a', 1]], tags: [] }],
    [{ pass: false, helpfulness: 2, notes: 'text' }, { verdict: 'fail', scores: [['helpfulness', 2]], tags: [] }],
    [{ label: 'reject', tags: ['x', 3] }, { verdict: 'reject', scores: [], tags: ['x'] }],
    ['not an object', null],
  ])('reads a judge record shaped %j', (quality, expected) => {
    expect(qualityOf({ quality })).toEqual(expected);
  });

  it("reads personaflow's own judge record: verdict, the review's scores per side, check findings, review tags and reasons", () => {
    const quality = {
      verdict: 'reject',
      reasons: ['user.persona_adherence', 'near_duplicate'],
      checks: [{ tag: 'near_duplicate', turn: 0, detail: 'nearly repeats i2 (similarity 0.93)' }],
      review: {
        user: { persona_adherence: { score: 1, reason: 'sounds like a textbook' }, naturalness: { score: 3, reason: 'fine' } },
        assistant: { answered: { score: 4, reason: 'yes' } },
        tags: ['assistant_voice'],
        verdict: 'reject',
        verdict_reason: 'the user reads like an assistant',
        judge_model: { provider: 'sim', model: 'judge' },
      },
      rubric_version: '1',
    } satisfies Quality;
    expect(qualityOf({ quality })).toEqual({
      verdict: 'reject',
      scores: [['user.persona_adherence', 1], ['user.naturalness', 3], ['assistant.answered', 4]],
      tags: ['near_duplicate', 'assistant_voice', 'user.persona_adherence'],
    });
    expect(qualityOf({ quality: { ...quality, verdict: 'accept', reasons: [], checks: [], review: null } })).toEqual({ verdict: 'accept', scores: [], tags: [] });
  });

  it.each([[null], ['text'], [{}], [{ interaction_id: 'i' }], [{ persona_id: 'p' }], [{ interaction_id: 1, persona_id: 'p' }]])('is undefined for what is not an interaction: %j', (line) => {
    expect(facetsOf(line)).toBeUndefined();
  });

  it('survives messages and metadata of the wrong types', () => {
    const facets = facetsOf({ interaction_id: 'i', persona_id: 'p', messages: [null, 3, { role: 'user', content: { rich: true } }], metadata: { guard: 'no', usage: [], quality: 7 } });
    expect(facets).toMatchObject({ turns: 0, userWords: [1], guard: [], verdict: null, model: '?' });
  });
});

describe('rowOf', () => {
  it('cuts the first message to a preview and joins guard and rejection reasons', () => {
    const row = rowOf(interaction({ persona: 'p', guard: { echo: 1 }, turns: [{ user: 'y'.repeat(400), assistant: 'a' }] }), 123, 7, ['echo', 'assistant_voice']);
    expect(row).toMatchObject({ at: 123, n: 7, persona: 'p', reasons: ['echo', 'assistant_voice'] });
    expect(row.first).toHaveLength(PREVIEW_CHARS);
  });
});

describe('conversationOf', () => {
  it('puts each noised user turn beside its clean version, with its strategy', () => {
    const view = conversationOf(noisy, 0, 1, [], {});
    expect(view.messages.map((m) => [m.role, m.content, m.clean, m.noise])).toEqual([
      ['user', 'helo wrold', 'hello world', ['typo']],
      ['assistant', 'Hi!', null, []],
      ['user', 'and now?', null, []],
      ['assistant', 'Now this.', null, []],
      ['user', 'now and then?', 'and then?', ['word_swap']],
      ['assistant', 'Then that.', null, []],
    ]);
  });

  it('prices the assistant and simulator modules and says what it could not price', () => {
    const line = interaction({ persona: 'p', turns: [{ user: 'a', assistant: 'b' }, { user: 'c', assistant: 'd' }] });
    (line.metadata as Record<string, unknown>).assistant_model = { provider: 'openai', model: 'gpt-x' };
    (line.metadata as Record<string, Record<string, unknown>>).usage!.distractor = { calls: 1, input_tokens: 10, output_tokens: 10 };
    const view = conversationOf(line, 0, 1, [], { 'gpt-x': { input: 1, output: 2 } });
    // assistant: 200 in, 100 out at $1/$2 per million; the simulator is sim (free); the distractor's model is unknown.
    expect(view.cost.usd).toBeCloseTo((200 * 1 + 100 * 2) / 1e6, 12);
    expect(view.cost.unpriced).toEqual(['distractor']);
    expect(view.usage.find((u) => u.name === 'user_simulator')?.cost).toBe(0);
  });

  it('redacts secrets in the metadata but leaves the texts as they are', () => {
    const line = interaction({ persona: 'p', turns: [{ user: 'my key is sk-abcdefghijklmnopqrstu', assistant: 'ok' }], extraMetadata: { api_key: 'sk-secretsecretsecret', note: 'Bearer abcdefghijkl' } });
    const view = conversationOf(line, 0, 1, [], {});
    expect(JSON.stringify(view.metadata)).not.toContain('secretsecret');
    expect((view.metadata as Record<string, unknown>).api_key).toBe(REDACTED);
    expect(view.messages[0]?.content).toBe('my key is sk-abcdefghijklmnopqrstu');
  });
});

describe('rejections', () => {
  it.each([
    [{ interaction_id: 'i', reason: 'echo', text: 'same as you said', turn: 2, role: 'user_simulator' }, { reason: 'echo', text: 'same as you said', turn: 2, role: 'user_simulator' }],
    [{ persona_id: 'p', query_id: 'q', kind: 'assistant_voice', content: 'Sure! Here is' }, { reason: 'assistant_voice', text: 'Sure! Here is', turn: null, role: null }],
    [{ reasons: ['a', 'b'], reply: 'x', module: 'user_simulator' }, { reason: 'a, b', text: 'x', turn: null, role: 'user_simulator' }],
  ])('reads a rejection line shaped %j', (line, expected) => {
    expect(rejectionOf(line)).toEqual(expected);
  });

  it('files a rejection under keys its interaction also has', () => {
    const facets = facetsOf(interaction({ persona: 'p', query: 'q' }))!;
    const keys = interactionKeys(facets);
    expect(rejectionKeys({ interaction_id: 'interaction_p_q' }).some((k) => keys.includes(k))).toBe(true);
    expect(rejectionKeys({ persona_id: 'p', query_id: 'q' }).some((k) => keys.includes(k))).toBe(true);
    expect(rejectionKeys({ persona_id: 'p_q', query_id: '' }).some((k) => keys.includes(k))).toBe(false);
  });
});
