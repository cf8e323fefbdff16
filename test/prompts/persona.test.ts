// The simulator's prompt for any persona: each feature as a rule, no turn count, a bounded size; and the rules themselves.
import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { LENGTH_BANDS, renderWritingRules, writingRules } from '../../src/prompts/persona.js';
import { DEFAULT_USER_TEMPLATE, renderTemplate, userSimulatorMessages, type TemplateValues } from '../../src/prompts/simulator.js';

const TEMPLATE = readFileSync(DEFAULT_USER_TEMPLATE, 'utf8');

/** The token budget of the rendered system prompt, before the user's request and facts: characters / 4. */
const BUDGET_TOKENS = 1100;

const KNOWN = {
  communication_style: ['casual', 'formal', 'terse', 'verbose', 'friendly'],
  query_length_pref: ['very_short', 'short', 'medium', 'long'],
  tech_proficiency: ['novice', 'intermediate', 'expert'],
  age_band: ['u18', '18-24', '25-34', '35-54', '55+'],
  role: ['nurse', 'student', 'backend engineer', 'retired teacher'],
  english_level: ['native', 'B1'],
};
const known = fc.record(Object.fromEntries(Object.entries(KNOWN).map(([key, values]) => [key, fc.constantFrom(...values)])), { requiredKeys: [] });
const other = fc.dictionary(fc.stringMatching(/^[a-z][a-z_]{0,23}$/), fc.string({ minLength: 1, maxLength: 40 }).filter((value) => value.trim() !== ''), { maxKeys: 6 });
const personas = fc.tuple(known, other).map(([a, b]) => ({ ...b, ...a }));

const values = (persona: Record<string, unknown>, turn = 3): TemplateValues => ({
  persona,
  systemPrompt: undefined,
  originalQuery: 'how do i dedupe a csv by email',
  facts: [],
  history: [
    { role: 'user', content: 'how do i dedupe a csv by email' },
    { role: 'assistant', content: 'Use pandas drop_duplicates on the email column.' },
  ],
  currentTurn: turn,
  targetTurns: 7,
  minTurns: 2,
  maxTurns: 9,
  stopToken: '###STOP###',
});

describe('the simulator prompt for any persona', () => {
  test.prop([personas, fc.integer({ min: 1, max: 40 })])('contains no turn count, names each feature with its rule, and stays under the token budget', (persona, turn) => {
    const messages = userSimulatorMessages(TEMPLATE, values(persona, turn));
    const system = messages[0]?.content ?? '';
    // No count of turns anywhere: not the current one, not the target, not the limits.
    for (const message of messages) expect(message.content).not.toMatch(/\b(?:turn|answers? in all|expect to need)\b|\{[a-z_]+\}/i);
    const rules = writingRules(persona);
    for (const { feature, value, rule } of rules.rules) {
      const label = feature.replace(/_/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
      expect(system).toContain(`- ${label} (${value}): ${rule}.`);
    }
    const request = values(persona).originalQuery;
    expect((system.length - request.length) / 4).toBeLessThanOrEqual(BUDGET_TOKENS);
  });

  it('restates up to three traits in the reminder of every turn', () => {
    const messages = userSimulatorMessages(TEMPLATE, values({ communication_style: 'casual', query_length_pref: 'very_short', tech_proficiency: 'novice' }));
    expect(messages.at(-1)?.content).toContain('(Reminder: you are the user described above (under 15 words, casual, no jargon), not the assistant.');
  });

  it('shows the facts the user knows, or what to do when asked for one it does not have', () => {
    expect(renderTemplate('{facts}', { ...values({}), facts: ['the file is 2 GB', 'it comes from a Shopify export'] })).toBe('- the file is 2 GB\n- it comes from a Shopify export');
    expect(renderTemplate('{facts}', values({}))).toMatch(/say you are not sure; never make one up/);
  });
});

describe('writingRules', () => {
  it('turns each known feature into a concrete rule, with a contrast example for the register', () => {
    const rules = writingRules({ communication_style: 'casual', query_length_pref: 'very_short', tech_proficiency: 'expert', age_band: 'u18', role: 'student' });
    expect(rules.maxWords).toBe(LENGTH_BANDS.very_short);
    expect(rules.traits).toEqual(['under 15 words', 'casual', 'precise terms']);
    expect(renderWritingRules(rules)).toMatchInlineSnapshot(`
      "- Communication Style (casual): casual: lowercase is fine, contractions and everyday words, no greetings or sign-offs.
      - Query Length Pref (very_short): at most 15 words a message, most of them fewer.
      - Tech Proficiency (expert): you use the precise technical terms and skip the basics.
      - Age Band (u18): young: short, informal, slang and small typos come naturally.
      - Role (student): you ask from your own situation as a student, and mention it only when it matters.
      For example, you would write "ok but what about csv", NOT "Thank you for the detailed explanation! Could you also explain how this works with CSV files?"."
    `);
  });

  it('matches keys and values loosely, and gives any other feature a rule of its own', () => {
    const rules = writingRules({ tone: 'Formal', 'expertise level': 'Beginner', hobby: 'gardening' });
    expect(rules.rules.map((r) => r.rule)).toEqual([
      'formal: complete, polite sentences with correct spelling; no slang',
      'no technical terms you would not know: describe what you see and what you want instead',
      'let it shape what you ask about and how you put it',
    ]);
    expect(rules.example.write).toBe('Could you clarify whether the same approach works for CSV files?');
    expect(rules.maxWords).toBeUndefined();
  });
});
