import { describe, expect, it } from 'vitest';
import { guardReply, similarity } from '../../src/prompts/guards.js';
import { CONVERSATION_START, parseUserReply, renderTemplate, userSimulatorMessages, type TemplateValues } from '../../src/prompts/simulator.js';
import { formatPersona } from '../../src/prompts/template.js';

const STOP = '###STOP###';
const values: TemplateValues = {
  persona: { communication_style: 'casual', age_band: '25-34' },
  systemPrompt: undefined,
  originalQuery: 'dedupe a csv',
  facts: [],
  history: [
    { role: 'user', content: 'dedupe a csv by email pls' },
    { role: 'assistant', content: 'Use pandas drop_duplicates on the email column.' },
  ],
  currentTurn: 1,
  targetTurns: 3,
  minTurns: 2,
  maxTurns: 5,
  stopToken: STOP,
};

describe('parseUserReply', () => {
  it.each([
    ['ok but what about excel', { kind: 'followup', text: 'ok but what about excel' }],
    [STOP, { kind: 'stop', closing: '' }],
    [`thanks!\n${STOP}`, { kind: 'stop', closing: 'thanks!' }],
    [`great${STOP}`, { kind: 'stop', closing: 'great' }],
    ['{"satisfied": true, "feedback": null}', { kind: 'stop', closing: '' }],
    ['```json\n{"satisfied": false, "feedback": "and excel?"}\n```', { kind: 'followup', text: 'and excel?' }],
    ['{"satisfied": false, "feedback": ""}', { kind: 'stop', closing: '' }],
    ['<think>they want more</think> and excel?', { kind: 'followup', text: 'and excel?' }],
    ['{not json but starts with a brace', { kind: 'followup', text: '{not json but starts with a brace' }],
    // The variants models write are the stop signal too, alone or after closing words.
    ['### STOP ###', { kind: 'stop', closing: '' }],
    ['ok cool\n###stop###', { kind: 'stop', closing: 'ok cool' }],
    ['thanks, that did it\n[STOP]', { kind: 'stop', closing: 'thanks, that did it' }],
    ['all good now\nSTOP', { kind: 'stop', closing: 'all good now' }],
    [`done ${STOP}.`, { kind: 'stop', closing: 'done' }],
    // A signal with words after it, or after a question, is no ending: rejected and asked again.
    [`What about the encoding? ${STOP} Also, how do I handle 2 million rows?`, { kind: 'misplaced_stop', text: `What about the encoding? ${STOP} Also, how do I handle 2 million rows?` }],
    [`${STOP}\nactually one more thing`, { kind: 'misplaced_stop', text: `${STOP}\nactually one more thing` }],
    [`what about the encoding? ${STOP}`, { kind: 'misplaced_stop', text: `what about the encoding? ${STOP}` }],
    // STOP as a word inside a sentence is a word.
    ['how do i make it STOP', { kind: 'followup', text: 'how do i make it STOP' }],
    ['it keeps saying stop sign detected', { kind: 'followup', text: 'it keeps saying stop sign detected' }],
  ])('reads %j', (raw, expected) => {
    expect(parseUserReply(raw, STOP)).toEqual(expected);
  });

  it('recognises a custom stop token, with or without spaces inside it', () => {
    expect(parseUserReply('bye\n<<END>>', '<<END>>')).toEqual({ kind: 'stop', closing: 'bye' });
    expect(parseUserReply('<< END >>', '<<END>>')).toEqual({ kind: 'stop', closing: '' });
    expect(parseUserReply('<<END>> wait', '<<END>>')).toMatchObject({ kind: 'misplaced_stop' });
  });
});

describe('guardReply', () => {
  const followup = (text: string) => parseUserReply(text, STOP);
  it.each([
    ['', 'empty'],
    ['<think>hmm</think>ok', 'reasoning_leak'],
    ['As an AI language model I cannot', 'role_break'],
    ['Use pandas drop_duplicates on the email column.', 'echo'],
    ['dedupe a csv by email pls', 'repeat'],
    ['ok and for excel files?', undefined],
  ])('judges %j as %s', (raw, reason) => {
    expect(guardReply({ raw, reply: followup(raw), history: values.history, canStop: true, persona: values.persona })).toBe(reason);
  });

  it('rejects a stop before min_turns only, and a misplaced one always', () => {
    const stop = { kind: 'stop', closing: '' } as const;
    expect(guardReply({ raw: STOP, reply: stop, history: values.history, canStop: false, persona: values.persona })).toBe('early_stop');
    expect(guardReply({ raw: STOP, reply: stop, history: values.history, canStop: true, persona: values.persona })).toBeUndefined();
    const misplaced = parseUserReply(`and excel? ${STOP}`, STOP);
    expect(guardReply({ raw: '', reply: misplaced, history: values.history, canStop: true, persona: values.persona })).toBe('misplaced_stop');
  });

  it('rejects a reply cut at the token limit', () => {
    expect(guardReply({ raw: 'ok so if i run it on the whole', reply: followup('ok so if i run it on the whole'), history: values.history, canStop: true, persona: values.persona, finishReason: 'length' })).toBe('truncated');
  });
});

describe('templates', () => {
  it("formats persona features as PersonaGym's bullet list", () => {
    expect(formatPersona({ tech_proficiency: 'beginner', tags: ['a'] })).toBe('- Tech Proficiency: beginner\n- Tags: ["a"]');
  });

  it('fills known placeholders and leaves JSON braces alone', () => {
    const out = renderTemplate('{persona}|{current_turn}/{target_turns}|{assistant_response}|{"satisfied": true}|{unknown}', values);
    expect(out).toBe('- Communication Style: casual\n- Age Band: 25-34|1/3|Use pandas drop_duplicates on the email column.|{"satisfied": true}|{unknown}');
  });

  it('inverts roles for a template without {conversation_history}', () => {
    const messages = userSimulatorMessages('You are {persona}', values, 'be brief');
    expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(messages[1]?.content).toBe(CONVERSATION_START);
    expect(messages[2]?.content).toBe('dedupe a csv by email pls');
    expect(messages.at(-1)?.content).toMatch(/^Use pandas drop_duplicates on the email column\.\n\n\(Reminder: .* be brief\)$/);
  });

  it('sends one prompt for a PersonaGym template with {conversation_history}', () => {
    const messages = userSimulatorMessages('History:\n{conversation_history}', values);
    expect(messages).toEqual([{ role: 'user', content: 'History:\nUser: dedupe a csv by email pls\nAssistant: Use pandas drop_duplicates on the email column.' }]);
  });

  it('measures the overlap of content words (courtesies and function words do not count)', () => {
    expect(similarity('csv file export', 'csv file export')).toBe(1);
    expect(similarity('csv file', 'json schema')).toBe(0);
    expect(similarity('ok and the csv file?', 'the csv file')).toBe(1);
  });
});

describe('similarity bounds', () => {
  it('is exact for texts of very different lengths', () => {
    expect(similarity('alpha beta', 'gamma delta epsilon zeta eta')).toBe(0);
    expect(similarity('alpha beta', 'alpha beta gamma delta epsilon zeta eta theta')).toBe(0.25);
  });
});
