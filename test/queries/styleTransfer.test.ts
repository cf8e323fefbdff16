// Style transfer: answer validation, the target length draw, the prompt and its retries with a fake model,
// and the sim provider's answers.
import { fc, test } from '@fast-check/vitest';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { ModelError, type ModelErrorKind } from '../../src/errors.js';
import { callModel } from '../../src/models/call.js';
import { DOMAINS, SCENARIOS } from '../../src/prompts/checks.js';
import { parseStyleAnswer } from '../../src/prompts/styleTransfer.js';
import { createSimModel } from '../../src/models/sim.js';
import type { ChatRequest } from '../../src/chat.js';
import { LENGTHS, createStyleTransfer, targetLength, type StyleTransferOptions, type StyleTransferResult } from '../../src/queries/styleTransfer.js';
import { rngFor } from '../../src/rng.js';
import type { Features } from '../../src/types.js';
import { scripted } from '../helpers/fixtures.js';

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** |k − np| ≤ 5σ for k successes out of n Bernoulli(p) draws. */
function expectBinomial(k: number, n: number, p: number): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(k - n * p), `${k} of ${n} with p=${p}`).toBeLessThanOrEqual(5 * sigma + 1e-9);
}

const TEMPLATE = 'FULL\nWho:\n{persona}\nRequest: {query}\nLength: {target_length}\nTurns: {target_turns}\nAnswer {"adapted_query": "..."} with {unknown} kept';
const PARTIAL = 'PARTIAL {persona} | {query} | {target_length} | {target_turns}';

const persona: Features = { communication_style: 'casual', query_length_pref: 'short', age: 31, hobbies: ['chess', 'go'] };
const PERSONA_LINES = '- Communication Style: casual\n- Query Length Pref: short\n- Age: 31\n- Hobbies: ["chess","go"]';
const QUERY = 'Write a Python function that removes duplicate emails from a CSV file.';

const answer = (adapted: string, domain: unknown = 'coding', scenario: unknown = 'work_task'): string => JSON.stringify({ adapted_query: adapted, inferred_domain: domain, inferred_scenario: scenario });

const askOf = (request: ChatRequest) => {
  const ask = request.hints?.styleTransfer;
  if (ask === undefined) throw new Error('style-transfer request without hints');
  return ask;
};

function transfer(reply: Parameters<typeof scripted>[0], overrides: Partial<StyleTransferOptions> = {}) {
  const fake = scripted(reply, { provider: 'fake', model: 'styler' });
  const styleTransfer = createStyleTransfer({ model: fake.model, template: TEMPLATE, probability: 0.8, validationRetries: 2, temperature: 0.4, ...overrides });
  return { styleTransfer, fake };
}

const adapt = (styleTransfer: ReturnType<typeof createStyleTransfer>, query = QUERY, features: Features = persona, key = 'p1/q1', turns = 3): Promise<StyleTransferResult> =>
  lastValueFrom(styleTransfer.adapt(query, features, turns, rngFor(42, key, 'style_transfer/draws'), callModel));

// ---------------------------------------------------------------------------------------------------------

describe('parseStyleAnswer', () => {
  it('accepts PersonaGym’s JSON', () => {
    expect(parseStyleAnswer(answer('need a quick python fn to dedupe emails in a csv', 'coding', 'in_a_rush'))).toEqual({ ok: true, value: { adapted: 'need a quick python fn to dedupe emails in a csv', domain: 'coding', scenario: 'in_a_rush' } });
  });

  it('tolerates a code fence and text around the JSON', () => {
    for (const content of [`\`\`\`json\n${answer('dedupe my csv pls')}\n\`\`\``, `\`\`\`\n${answer('dedupe my csv pls')}\n\`\`\``, `The JSON:\n${answer('dedupe my csv pls')}\nDone.`]) {
      expect(parseStyleAnswer(content), content).toMatchObject({ ok: true, value: { adapted: 'dedupe my csv pls', domain: 'coding' } });
    }
  });

  it('cleans the message: a label, surrounding quotes, whitespace', () => {
    expect(parseStyleAnswer(answer('  "dedupe my csv pls"  '))).toMatchObject({ ok: true, value: { adapted: 'dedupe my csv pls' } });
    expect(parseStyleAnswer(answer('Rewritten message: dedupe my csv pls'))).toMatchObject({ ok: true, value: { adapted: 'dedupe my csv pls' } });
  });

  it.each<[string, unknown, unknown, string, string]>([
    ['known values', 'finance', 'planning', 'finance', 'planning'],
    ['upper case and spaces', '  CODING ', 'Troubleshooting', 'coding', 'troubleshooting'],
    ['mixed case with underscores', 'Customer_Support', 'In_A_Rush', 'customer_support', 'in_a_rush'],
    ['unknown values', 'astrology', 'daydreaming', 'others', 'others'],
    ['missing values', undefined, undefined, 'general', 'casual'],
    ['empty values', '', '  ', 'general', 'casual'],
    ['non-string values', 3, ['casual'], 'general', 'casual'],
  ])('normalises domain and scenario: %s', (_name, domain, scenario, expectedDomain, expectedScenario) => {
    const parsed = parseStyleAnswer(JSON.stringify({ adapted_query: 'dedupe my csv pls', inferred_domain: domain, inferred_scenario: scenario }));
    expect(parsed).toEqual({ ok: true, value: { adapted: 'dedupe my csv pls', domain: expectedDomain, scenario: expectedScenario } });
  });

  it.each<[string, string, RegExp]>([
    ['plain text', 'need a quick python fn to dedupe emails', /no JSON/],
    ['an empty answer', '', /no JSON/],
    ['invalid JSON', '{"adapted_query": "x",}', /no JSON/],
    ['JSON without adapted_query', '{"query": "dedupe my csv"}', /adapted_query/],
    ['a non-string adapted_query', '{"adapted_query": ["dedupe my csv"]}', /adapted_query/],
    ['an empty adapted_query', '{"adapted_query": ""}', /empty/],
    ['a blank adapted_query', '{"adapted_query": "   "}', /empty/],
    ['empty quotes', '{"adapted_query": "\\"\\""}', /empty/],
    ['a refusal', answer("I'm sorry, but I can't rewrite this request."), /refusal/],
    ['an apology', answer('I apologize, I cannot help with that.'), /refusal/],
    ['as an AI', answer('As an AI language model, I do not have a persona.'), /refusal/],
    ['an explanation', answer("Here's the rewritten request: dedupe my csv pls"), /explanation/],
    ['a "Sure," wrapper', answer('Sure, dedupe my csv pls'), /explanation/],
    ['an account of the rewrite', answer('I have rewritten it in a casual voice: dedupe my csv pls'), /explanation/],
  ])('rejects %s', (_name, content, reason) => {
    const parsed = parseStyleAnswer(content);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });

  test.prop([fc.string({ maxLength: 80 })], { numRuns: 300 })('never accepts an empty message, and gives a known domain and scenario', (content) => {
    for (const candidate of [content, answer(content), answer(content, content, content)]) {
      const parsed = parseStyleAnswer(candidate);
      if (!parsed.ok) {
        expect(parsed.reason).not.toBe('');
        continue;
      }
      expect(parsed.value.adapted.trim()).not.toBe('');
      expect(parsed.value.adapted).toBe(parsed.value.adapted.trim());
      expect(DOMAINS).toContain(parsed.value.domain);
      expect(SCENARIOS).toContain(parsed.value.scenario);
    }
  });

  // Regression (fixed): the refusal pattern of rewrite.ts matches at the start of the message, and very common user
  // requests start the same way: "I can't get Docker to start", "I am unable to log in", "sorry, quick
  // question". Style transfer of such a request into the persona's own words is rejected as "a refusal" on
  // every attempt, so the task keeps its dataset wording (applied: false).
  it("accepts a message in which the user says they can't do something (i can't get docker ...)", () => {
    expect(parseStyleAnswer(answer("i can't get docker to start on my mac, what should i check?"))).toMatchObject({ ok: true });
  });

  it('accepts a message in which the user says they are unable to do something', () => {
    expect(parseStyleAnswer(answer('I am unable to log in to my bank account after the update, what can I do?'))).toMatchObject({ ok: true });
  });

  // Regression (fixed): the other way round, the `sorry,` branch of the refusal pattern is followed by `\b`, which cannot
  // match between the comma and the space after it, so the most common refusal opening, "Sorry, but I can't
  // help with that.", is accepted as the adapted query (and would become the user's first message).
  it('rejects a refusal that opens with "Sorry, "', () => {
    expect(parseStyleAnswer(answer("Sorry, but I can't help with rewriting that request.")).ok).toBe(false);
  });

  // Regression (fixed): the same holds for the explanation pattern: a user who shares something starts with "here is"/"here's",
  // so "here's my cover letter, can you tighten it?" is rejected as "an explanation instead of the message".
  it('accepts a message that starts "here\'s my ..."', () => {
    expect(parseStyleAnswer(answer("here's my cover letter, can you make it sound less stiff?"))).toMatchObject({ ok: true });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('targetLength', () => {
  it('takes the persona’s query_length_pref, trimmed, without a draw', () => {
    const rng = rngFor(1, 'p', 'length');
    for (const preferred of ['long', 'very_short', ' medium ', 'two sentences']) expect(targetLength({ query_length_pref: preferred, communication_style: 'formal' }, rng)).toBe(preferred.trim());
  });

  it('draws when the preference is missing, blank or not a string', () => {
    for (const features of [{}, { query_length_pref: '' }, { query_length_pref: '  ' }, { query_length_pref: 3 }, { query_length_pref: null }] as Features[]) {
      expect(LENGTHS).toContain(targetLength(features, rngFor(1, 'p', 'length')));
    }
  });

  it('is deterministic per seed and key', () => {
    for (let i = 0; i < 50; i += 1) expect(targetLength({}, rngFor(9, `k${i}`, 'length'))).toBe(targetLength({}, rngFor(9, `k${i}`, 'length')));
  });

  it('draws the four lengths with weights 0.16, 0.34, 0.34, 0.16', () => {
    const n = 20_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i += 1) {
      const length = targetLength({ communication_style: 'casual' }, rngFor(5, `persona_${i}/q1`, 'style_transfer/draws'));
      counts.set(length, (counts.get(length) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([...LENGTHS].sort());
    const weights: Record<(typeof LENGTHS)[number], number> = { very_short: 0.16, short: 0.34, medium: 0.34, long: 0.16 };
    for (const length of LENGTHS) expectBinomial(counts.get(length) ?? 0, n, weights[length]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('createStyleTransfer with a fake model', () => {
  it('fills the template’s placeholders and asks once', async () => {
    const { styleTransfer, fake } = transfer(() => answer('need a quick python fn to dedupe emails in a csv', 'CODING', 'in_a_rush'));
    expect(styleTransfer.probability).toBe(0.8);
    const result = await adapt(styleTransfer, QUERY, persona, 'p1/q1', 4);
    expect(result).toEqual<StyleTransferResult>({ applied: true, adapted_query: 'need a quick python fn to dedupe emails in a csv', inferred_domain: 'coding', inferred_scenario: 'in_a_rush', target_length: 'short', prompt_type: 'full' });
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request!.module).toBe('style_transfer');
    expect(request!.temperature).toBe(0.4);
    expect(request!.messages).toEqual([{ role: 'user', content: `FULL\nWho:\n${PERSONA_LINES}\nRequest: ${QUERY}\nLength: short\nTurns: 4\nAnswer {"adapted_query": "..."} with {unknown} kept` }]);
    expect(request!.hints).toEqual({ persona, styleTransfer: { query: QUERY, targetLength: 'short' } });
  });

  it('puts a query in literally, even one with placeholders or $ patterns in it', async () => {
    const { styleTransfer, fake } = transfer(() => answer('ok'));
    const query = 'What does {persona} or {target_length} mean, and $& or $1 in a regex?';
    await adapt(styleTransfer, query, { role: 'dev' }, 'k', 2);
    expect(fake.requests[0]!.messages[0]!.content).toBe(`FULL\nWho:\n- Role: dev\nRequest: ${query}\nLength: ${askOf(fake.requests[0]!).targetLength}\nTurns: 2\nAnswer {"adapted_query": "..."} with {unknown} kept`);
  });

  it('uses a drawn target length when the persona has no preference', async () => {
    const { styleTransfer, fake } = transfer(() => answer('ok then'));
    const lengths = new Set<string>();
    for (let i = 0; i < 60; i += 1) {
      const result = await adapt(styleTransfer, QUERY, { communication_style: 'formal' }, `p${i}/q1`);
      const ask = askOf(fake.requests.at(-1)!);
      expect(result.target_length).toBe(ask.targetLength);
      expect(fake.requests.at(-1)!.messages[0]!.content).toContain(`Length: ${ask.targetLength}\n`);
      lengths.add(result.target_length);
    }
    expect([...lengths].sort()).toEqual([...LENGTHS].sort());
  });

  it('asks again with the rejected answer and the reason, at a higher temperature', async () => {
    const { styleTransfer, fake } = transfer((_request, call) => (call === 1 ? "I'm sorry, I can't rewrite that." : answer('dedupe emails in my csv w python?')));
    const result = await adapt(styleTransfer);
    expect(result).toMatchObject({ applied: true, adapted_query: 'dedupe emails in my csv w python?', prompt_type: 'full' });
    expect(fake.requests).toHaveLength(2);
    const [first, second] = fake.requests;
    expect(second!.messages).toEqual([first!.messages[0], { role: 'assistant', content: "I'm sorry, I can't rewrite that." }, { role: 'user', content: expect.stringMatching(/rejected \(no JSON object\)/) as unknown }]);
    expect(second!.temperature).toBeCloseTo(0.5);
    expect(second!.hints).toEqual(first!.hints);
  });

  it('tells the model each time why the last answer was rejected', async () => {
    const replies = [answer("I'm sorry, I can't do that."), '{"query": "x"}', answer('fine now')];
    const { styleTransfer, fake } = transfer((_request, call) => replies[call - 1]!);
    expect(await adapt(styleTransfer)).toMatchObject({ applied: true, adapted_query: 'fine now' });
    expect(fake.requests.map((request) => request.messages.length)).toEqual([1, 3, 3]);
    expect(fake.requests[1]!.messages[2]!.content).toMatch(/refusal/);
    expect(fake.requests[2]!.messages[1]!.content).toBe('{"query": "x"}');
    expect(fake.requests[2]!.messages[2]!.content).toMatch(/adapted_query/);
  });

  it.each([0, 1, 3])('keeps the original query after validationRetries = %i rejected retries', async (validationRetries) => {
    const { styleTransfer, fake } = transfer(() => 'not JSON at all', { validationRetries });
    const result = await adapt(styleTransfer);
    expect(fake.requests).toHaveLength(validationRetries + 1);
    expect(result).toEqual<StyleTransferResult>({
      applied: false,
      adapted_query: QUERY,
      inferred_domain: 'general',
      inferred_scenario: 'casual',
      target_length: 'short',
      prompt_type: 'none',
      error: expect.stringMatching(new RegExp(`rejected ${validationRetries + 1} time\\(s\\).*no JSON object`)),
    });
  });

  it.each<ModelErrorKind>(['auth', 'unreachable', 'aborted'])('lets a %s ModelError end the run', async (kind) => {
    const { styleTransfer } = transfer(() => {
      throw new ModelError(kind, `${kind} failure`);
    });
    const error: unknown = await adapt(styleTransfer).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).kind).toBe(kind);
  });

  it.each<ModelErrorKind>(['server', 'rate_limit', 'timeout', 'bad_request', 'malformed'])('keeps the original query after a %s ModelError', async (kind) => {
    const { styleTransfer, fake } = transfer(() => {
      throw new ModelError(kind, `sim: ${kind} went wrong`);
    });
    expect(await adapt(styleTransfer)).toEqual({ applied: false, adapted_query: QUERY, inferred_domain: 'general', inferred_scenario: 'casual', target_length: 'short', prompt_type: 'none', error: `sim: ${kind} went wrong` });
    // The caller's `call` retries model errors; style transfer itself asks once.
    expect(fake.requests).toHaveLength(1);
  });

  it('uses the partial template for about half of the tasks, and always the full one without it', async () => {
    const { styleTransfer, fake } = transfer(() => answer('dedupe my csv'), { partialTemplate: PARTIAL });
    const n = 400;
    let partial = 0;
    for (let i = 0; i < n; i += 1) {
      const result = await adapt(styleTransfer, QUERY, persona, `persona_${i}/q1`, 3);
      const prompt = fake.requests.at(-1)!.messages[0]!.content;
      expect(result.applied).toBe(true);
      if (result.prompt_type === 'partial') {
        partial += 1;
        expect(prompt).toBe(`PARTIAL ${PERSONA_LINES} | ${QUERY} | short | 3`);
      } else {
        expect(result.prompt_type).toBe('full');
        expect(prompt.startsWith('FULL\n')).toBe(true);
      }
      // The same task draws the same template again.
      expect((await adapt(styleTransfer, QUERY, persona, `persona_${i}/q1`, 3)).prompt_type).toBe(result.prompt_type);
    }
    expectBinomial(partial, n, 0.5);

    const { styleTransfer: fullOnly } = transfer(() => answer('dedupe my csv'));
    for (let i = 0; i < 50; i += 1) expect((await adapt(fullOnly, QUERY, persona, `persona_${i}/q1`)).prompt_type).toBe('full');
  });

  it('is lazy: nothing is asked before subscription, and each subscription asks again', async () => {
    const { styleTransfer, fake } = transfer(() => answer('dedupe my csv'));
    const observable = styleTransfer.adapt(QUERY, persona, 3, rngFor(1, 'k', 'p'), callModel);
    expect(fake.requests).toHaveLength(0);
    await lastValueFrom(observable);
    await lastValueFrom(observable);
    expect(fake.requests).toHaveLength(2);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('createStyleTransfer with the sim model', () => {
  const QUERIES = [
    'Write a Python function that removes duplicate emails from a CSV file.',
    'Explain how compound interest works with a small example.',
    'Draft a polite email asking my landlord to fix the heating.',
    'What should I pack for a week of hiking in Scotland in October?',
    'Summarise the main causes of the French Revolution in a few paragraphs.',
    'Give me a weekly meal plan for a vegetarian family of four on a budget.',
    'How do I set up a monthly budget spreadsheet with categories and totals?',
    'Compare renting and buying a flat for someone who may move in three years.',
  ];
  const sim = () => createStyleTransfer({ model: createSimModel({ provider: 'sim', model: 'sim-style' }), template: TEMPLATE, partialTemplate: PARTIAL, probability: 1, validationRetries: 2 });

  it('adapts every query: applied, non-empty, and casual personas start in lower case', async () => {
    const styleTransfer = sim();
    const casual: Features = { communication_style: 'casual', role: 'student' };
    const formal: Features = { communication_style: 'formal', role: 'lawyer' };
    for (const [i, query] of QUERIES.entries()) {
      for (const features of [casual, formal]) {
        const result = await adapt(styleTransfer, query, features, `p${i}/q`, 3);
        expect(result.applied, JSON.stringify(result)).toBe(true);
        expect(result.error).toBeUndefined();
        expect(result.adapted_query.trim()).not.toBe('');
        expect(LENGTHS).toContain(result.target_length);
        expect(['full', 'partial']).toContain(result.prompt_type);
        if (features === casual) {
          expect(result.adapted_query).toMatch(/^[a-z]/);
          expect(result.inferred_scenario).toBe('casual');
        } else {
          expect(result.adapted_query).toMatch(/^[A-Z]/);
          expect(result.inferred_scenario).toBe('work_task');
        }
      }
    }
  });

  test.prop([fc.constantFrom(...QUERIES), fc.string({ minLength: 1, maxLength: 10 }), fc.constantFrom(...LENGTHS)], { numRuns: 40 })(
    'is deterministic and keeps to the persona’s length preference',
    async (query, key, length) => {
      const styleTransfer = sim();
      const features: Features = { communication_style: 'casual', query_length_pref: length };
      const result = await adapt(styleTransfer, query, features, key);
      expect(await adapt(styleTransfer, query, features, key)).toEqual(result);
      expect(result).toMatchObject({ applied: true, target_length: length });
      expect(result.adapted_query).toMatch(/^[a-z]/);
    },
  );
});
