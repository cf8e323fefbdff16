// The judge's prompt and the reading of its answer: every well-formed answer read back, every malformed one turned down with its reason.
import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JUDGE_TEMPLATE, JUDGE_TAGS, RUBRIC, judgePrompt, parseJudgeAnswer, renderConversation, type JudgeTag } from '../../src/prompts/judge.js';
import { formatPersona } from '../../src/prompts/template.js';
import type { InteractionMessage } from '../../src/types.js';
import { JUDGED } from '../fixtures/judged-conversations.js';

const TEMPLATE = readFileSync(DEFAULT_JUDGE_TEMPLATE, 'utf8');

/** A well-formed answer for every criterion at `score`, as the template asks for it. */
function answer(score = 3, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const side = (criteria: readonly { name: string }[]) => Object.fromEntries(criteria.map(({ name }) => [name, { reason: `${name} is fine`, score }]));
  return { user: side(RUBRIC.user), assistant: side(RUBRIC.assistant), tags: [], verdict: 'accept', verdict_reason: 'good data', ...overrides };
}

const arbScored = fc.record({ score: fc.integer({ min: 0, max: 4 }), reason: fc.string({ maxLength: 40 }), bare: fc.boolean() });
const arbSide = (criteria: readonly { name: string }[]) => fc.tuple(...criteria.map(() => arbScored));
/** Tags a model might give: the listed ones, and others it made up. */
const arbTag = fc.oneof(fc.constantFrom(...JUDGE_TAGS), fc.constantFrom('sycophancy', 'off_topic', 'Hallucination', 'too long', ''), fc.string({ maxLength: 12 }));

describe('parseJudgeAnswer', () => {
  test.prop([arbSide(RUBRIC.user), arbSide(RUBRIC.assistant), fc.array(arbTag, { maxLength: 8 }), fc.constantFrom('accept' as const, 'reject' as const), fc.string({ maxLength: 40 }), fc.constantFrom('plain', 'pretty', 'fenced')])(
    'reads back any well-formed answer: every score and reason, the known tags once each (others dropped), the verdict',
    (user, assistant, tags, verdict, verdictReason, layout) => {
      // A score alone stands for { score } with no reason, as some models write it.
      const side = (criteria: readonly { name: string }[], scored: readonly { score: number; reason: string; bare: boolean }[]) =>
        Object.fromEntries(criteria.map(({ name }, i) => [name, (scored[i] as { bare: boolean }).bare ? (scored[i] as { score: number }).score : { reason: (scored[i] as { reason: string }).reason, score: (scored[i] as { score: number }).score }]));
      const json = { user: side(RUBRIC.user, user), assistant: side(RUBRIC.assistant, assistant), tags, verdict, verdict_reason: verdictReason };
      const text = layout === 'plain' ? JSON.stringify(json) : layout === 'pretty' ? JSON.stringify(json, null, 2) : `\`\`\`json\n${JSON.stringify(json, null, 2)}\n\`\`\``;
      const expectedSide = (criteria: readonly { name: string }[], scored: readonly { score: number; reason: string; bare: boolean }[]) =>
        Object.fromEntries(criteria.map(({ name }, i) => [name, { score: (scored[i] as { score: number }).score, reason: (scored[i] as { bare: boolean }).bare ? '' : (scored[i] as { reason: string }).reason }]));
      expect(parseJudgeAnswer(text)).toEqual({
        ok: true,
        value: {
          user: expectedSide(RUBRIC.user, user),
          assistant: expectedSide(RUBRIC.assistant, assistant),
          tags: [...new Set(tags.filter((tag): tag is JudgeTag => (JUDGE_TAGS as readonly string[]).includes(tag)))],
          verdict,
          verdict_reason: verdictReason,
        },
      });
    },
  );

  const without = (side: 'user' | 'assistant', name: string) => {
    const json = answer();
    delete (json[side] as Record<string, unknown>)[name];
    return JSON.stringify(json);
  };
  const scoring = (side: 'user' | 'assistant', name: string, score: unknown) => {
    const json = answer();
    (json[side] as Record<string, unknown>)[name] = { reason: 'x', score };
    return JSON.stringify(json);
  };
  const { verdict: _verdict, ...noVerdict } = answer();

  it.each([
    ['a criterion missing', without('user', 'naturalness'), 'user.naturalness: a score from 0 to 4 is needed'],
    ['an assistant criterion missing', without('assistant', 'noise_handling'), 'assistant.noise_handling: a score from 0 to 4 is needed'],
    ['a score of 5', scoring('user', 'ending', 5), 'user.ending: a score from 0 to 4 is needed'],
    ['a score of -1', scoring('assistant', 'answered', -1), 'assistant.answered: a score from 0 to 4 is needed'],
    ['a score of 2.5', scoring('user', 'information', 2.5), 'user.information: a score from 0 to 4 is needed'],
    ['a score in a string', scoring('user', 'persona_adherence', '3'), 'user.persona_adherence: a score from 0 to 4 is needed'],
    ['a null score', scoring('user', 'consistency', null), 'user.consistency: a score from 0 to 4 is needed'],
    ['no user object', JSON.stringify({ ...answer(), user: 'fine' }), 'no "user" object'],
    ['no assistant object', JSON.stringify({ ...answer(), assistant: null }), 'no "assistant" object'],
    ['no verdict', JSON.stringify(noVerdict), 'verdict must be "accept" or "reject"'],
    ['a verdict of its own', JSON.stringify(answer(3, { verdict: 'borderline' })), 'verdict must be "accept" or "reject"'],
    ['a verdict in capitals', JSON.stringify(answer(3, { verdict: 'Accept' })), 'verdict must be "accept" or "reject"'],
    ['prose only', 'The user side is natural and the assistant answered well. I would accept this conversation.', 'no JSON object'],
    ['an empty answer', '', 'no JSON object'],
    ['JSON cut at the token limit', JSON.stringify(answer()).slice(0, 120), 'no JSON object'],
    ['JSON with a trailing comma', JSON.stringify(answer()).replace(/}$/, ',}'), 'no JSON object'],
  ])('turns down %s', (_name, text, reason) => {
    expect(parseJudgeAnswer(text)).toEqual({ ok: false, reason });
  });

  it('accepts JSON in a ```json fence with prose around it', () => {
    const text = `Here is my review of the conversation.\n\n\`\`\`json\n${JSON.stringify(answer(2, { tags: ['truncated'], verdict: 'reject' }), null, 2)}\n\`\`\`\n\nLet me know if you need more detail.`;
    expect(parseJudgeAnswer(text)).toMatchObject({ ok: true, value: { tags: ['truncated'], verdict: 'reject', user: { naturalness: { score: 2 } } } });
  });

  it('ignores criteria it does not know, and tags that are not a list', () => {
    const json = answer(4, { tags: 'hallucination', verdict_reason: 7 });
    (json.user as Record<string, unknown>).creativity = { reason: 'x', score: 9 };
    expect(parseJudgeAnswer(JSON.stringify(json))).toMatchObject({ ok: true, value: { tags: [], verdict_reason: '' } });
    const parsed = parseJudgeAnswer(JSON.stringify(json));
    expect(parsed.ok && Object.keys(parsed.value.user)).toEqual(RUBRIC.user.map((c) => c.name));
  });
});

describe('judgePrompt', () => {
  const persona = { communication_style: 'casual', age_band: '18-24', query_length_pref: 'short', interests: ['climbing', 'chess'] };
  const messages: Pick<InteractionMessage, 'role' | 'content' | 'metadata'>[] = [
    { role: 'user', content: 'how do i dedup a csv by emial', metadata: { turn: 0, is_initial: true, clean_version: 'how do i dedupe a csv by email', was_noised: true } },
    { role: 'assistant', content: 'Use pandas: df.drop_duplicates(subset="email").', metadata: { turn: 0, model: 'gpt-4o-mini', provider: 'openai', finish_reason: 'stop', temperature: 0.7 } },
    { role: 'user', content: 'and for excel?', metadata: { turn: 1, is_followup: true, clean_version: 'and for excel?', was_noised: false } },
    { role: 'assistant', content: 'Data → Remove Duplicates, then pick the email column.', metadata: { turn: 1, model: 'gpt-4o-mini', provider: 'openai', finish_reason: 'length', truncated: true } },
    { role: 'user', content: 'thx', metadata: { turn: 2, is_closing: true, clean_version: 'thx', was_noised: false } },
  ];
  const prompt = judgePrompt(TEMPLATE, { persona, facts: ['The file has 40,000 rows', 'Uses Excel 365'], messages });

  it('fills the persona, the facts, the conversation, the rubric and the tags, and leaves no placeholder', () => {
    expect(prompt).toContain(formatPersona(persona));
    expect(prompt).toContain('- Interests: ["climbing","chess"]');
    expect(prompt).toContain('- The file has 40,000 rows\n- Uses Excel 365');
    expect(prompt).toContain(renderConversation(messages));
    for (const { name, question } of [...RUBRIC.user, ...RUBRIC.assistant]) expect(prompt).toContain(`- ${name}: ${question}`);
    expect(prompt).toContain(JUDGE_TAGS.join(', '));
    expect(prompt).not.toMatch(/\{(?:persona|facts|conversation|rubric|tags)\}/);
    // The template's own JSON shape is no placeholder and stays as written.
    expect(prompt).toContain('{"user": {"<criterion>": {"reason": "...", "score": 0-4}');
    expect(judgePrompt(TEMPLATE, { persona: {}, facts: [], messages })).toContain('- (none given)');
  });

  it('shows each noised user message with what the user meant, and nothing else for the rest', () => {
    expect(renderConversation(messages)).toMatchInlineSnapshot(`
      "User: how do i dedup a csv by emial [meant: how do i dedupe a csv by email]
      Assistant: Use pandas: df.drop_duplicates(subset="email").
      User: and for excel?
      Assistant: Data → Remove Duplicates, then pick the email column.
      User: thx"
    `);
    // A system message (a line read from a file may have one) is a generation setting: left out.
    expect(renderConversation([{ role: 'system', content: 'You are terse. temperature=0.2', metadata: { turn: 0 } } as never, ...messages.slice(0, 2)])).toBe(renderConversation(messages.slice(0, 2)));
    // Flagged noised but unchanged, or an assistant message with a clean_version: no [meant].
    expect(renderConversation([{ role: 'user', content: 'ok', metadata: { turn: 1, was_noised: true, clean_version: 'ok' } }])).toBe('User: ok');
    expect(renderConversation([{ role: 'assistant', content: 'Fine.', metadata: { turn: 0, was_noised: true, clean_version: 'Other.' } }])).toBe('Assistant: Fine.');
  });

  it('never shows model names, providers or generation settings, for any conversation of the corpus', () => {
    for (const { id, conversation } of JUDGED) {
      const text = judgePrompt(TEMPLATE, { persona: conversation.persona_features, facts: (conversation.metadata.facts as string[] | undefined) ?? [], messages: conversation.messages });
      // ('temperature' is no secret here: a baker's dough has one.)
      for (const secret of ['gpt-4o-mini', 'gpt-4.1-mini', 'openai', 'finish_reason', 'max_turns', 'user_stop', 'was_noised', 'clean_version', 'You are a helpful assistant.']) expect(text, `${id}: ${secret}`).not.toContain(secret);
      // Every message is there, in order.
      let from = 0;
      for (const message of conversation.messages) {
        const at = text.indexOf(message.content, from);
        expect(at, `${id}: ${message.content.slice(0, 40)}`).toBeGreaterThanOrEqual(from);
        from = at + message.content.length;
      }
    }
    for (const secret of ['gpt-4o-mini', 'openai', 'temperature', 'finish_reason']) expect(prompt).not.toContain(secret);
  });

  it('fills only the placeholders a template uses, and leaves unknown ones as they are', () => {
    expect(judgePrompt('Persona:\n{persona}\n{unknown} {"verdict": "accept"}', { persona: { role: 'nurse' }, facts: [], messages })).toBe('Persona:\n- Role: nurse\n{unknown} {"verdict": "accept"}');
  });
});
