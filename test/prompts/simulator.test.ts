import { describe, expect, it } from 'vitest';
import { guardReply, similarity } from '../../src/prompts/guards.js';
import { CONVERSATION_START, parseUserReply, renderTemplate, userSimulatorMessages, type TemplateValues } from '../../src/prompts/simulator.js';
import { formatPersona } from '../../src/prompts/template.js';

const STOP = '###STOP###';
const values: TemplateValues = {
  persona: { communication_style: 'casual', age_band: '25-34' },
  systemPrompt: undefined,
  originalQuery: 'dedupe a csv',
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
  ])('reads %j', (raw, expected) => {
    expect(parseUserReply(raw, STOP)).toEqual(expected);
  });
});

describe('guardReply', () => {
  const followup = (text: string) => parseUserReply(text, STOP);
  it.each([
    ['', 'empty'],
    ['<think>hmm</think>ok', 'leak'],
    ['As an AI language model I cannot', 'role_break'],
    ['Use pandas drop_duplicates on the email column.', 'echo'],
    ['dedupe a csv by email pls', 'repeat'],
    ['ok and for excel files?', undefined],
  ])('judges %j as %s', (raw, reason) => {
    expect(guardReply(raw, followup(raw), values.history, true)).toBe(reason);
  });

  it('rejects a stop before min_turns only', () => {
    expect(guardReply(STOP, { kind: 'stop', closing: '' }, values.history, false)).toBe('early_stop');
    expect(guardReply(STOP, { kind: 'stop', closing: '' }, values.history, true)).toBeUndefined();
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

  it('measures word overlap', () => {
    expect(similarity('a b c', 'a b c')).toBe(1);
    expect(similarity('a b', 'c d')).toBe(0);
  });
});

describe('similarity bounds', () => {
  it('is exact for texts of very different lengths', () => {
    expect(similarity('a b', 'c d e f g')).toBe(0);
    expect(similarity('a b', 'a b c d e f g h')).toBe(0.25);
  });
});
