// Query generation (supplement rounds): answer validation, the prompt and its retries with a fake model,
// and the sim provider's answers.
import { fc, test } from '@fast-check/vitest';
import { lastValueFrom } from 'rxjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { callModel } from '../../src/models/call.js';
import { RejectedAnswerError } from '../../src/prompts/ask.js';
import { DOMAINS, SCENARIOS, normalise } from '../../src/prompts/checks.js';
import { parseQueriesAnswer, type GeneratedQuery } from '../../src/prompts/queryGeneration.js';
import { createSimModel } from '../../src/models/sim.js';
import { createQueryGenerator, type QueryGeneratorOptions } from '../../src/queries/queryGenerator.js';
import type { Features } from '../../src/types.js';
import { scripted } from '../helpers/fixtures.js';

// ---------------------------------------------------------------------------------------------------------
// Helpers

const TEMPLATE = 'WRITE {count} for\n{persona}\nunlike:\n{avoid}\nas {"queries": [...]} ({other} kept)';
const persona: Features = { role: 'teacher', communication_style: 'formal' };
const PERSONA_LINES = '- Role: teacher\n- Communication Style: formal';

const queries = (...items: unknown[]): string => JSON.stringify({ queries: items });

function generator(reply: Parameters<typeof scripted>[0], overrides: Partial<QueryGeneratorOptions> = {}) {
  const fake = scripted(reply, { provider: 'fake', model: 'writer' });
  return { generator: createQueryGenerator({ model: fake.model, template: TEMPLATE, validationRetries: 2, temperature: 0.9, ...overrides }), fake };
}

const generate = (g: ReturnType<typeof createQueryGenerator>, count: number, avoid: readonly string[], features: Features = persona): Promise<GeneratedQuery[]> => lastValueFrom(g.generate(features, count, avoid, callModel));

const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected an error');
    },
    (error: unknown) => error,
  );

// ---------------------------------------------------------------------------------------------------------

describe('parseQueriesAnswer', () => {
  it('reads the queries with their domain and scenario, up to count', () => {
    const content = queries(
      { query: 'How do I grade essays faster?', domain: 'education', scenario: 'work_task' },
      { query: 'Plan a field trip to the science museum', domain: 'EDUCATION', scenario: ' Planning ' },
      { query: 'Third one', domain: 'education', scenario: 'learning' },
    );
    expect(parseQueriesAnswer(content, 2, [])).toEqual({
      ok: true,
      value: [
        { query: 'How do I grade essays faster?', domain: 'education', scenario: 'work_task' },
        { query: 'Plan a field trip to the science museum', domain: 'education', scenario: 'planning' },
      ],
    });
    expect(parseQueriesAnswer(content, 5, [])).toMatchObject({ ok: true, value: { length: 3 } });
    expect(parseQueriesAnswer(content, 1, [])).toMatchObject({ ok: true, value: [{ query: 'How do I grade essays faster?' }] });
  });

  it('normalises domain and scenario: unknown → others, missing → general and casual', () => {
    const parsed = parseQueriesAnswer(queries({ query: 'a', domain: 'astrology', scenario: 'daydreaming' }, { query: 'b' }, { query: 'c', domain: '', scenario: 7 }, { query: 'd', domain: 'Customer_Support', scenario: 'IN_A_RUSH' }), 4, []);
    expect(parsed).toEqual({
      ok: true,
      value: [
        { query: 'a', domain: 'others', scenario: 'others' },
        { query: 'b', domain: 'general', scenario: 'casual' },
        { query: 'c', domain: 'general', scenario: 'casual' },
        { query: 'd', domain: 'customer_support', scenario: 'in_a_rush' },
      ],
    });
  });

  it('accepts plain strings in the array', () => {
    expect(parseQueriesAnswer(queries('Grade my essays', { query: 'Plan a trip' }), 3, [])).toEqual({
      ok: true,
      value: [
        { query: 'Grade my essays', domain: 'general', scenario: 'casual' },
        { query: 'Plan a trip', domain: 'general', scenario: 'casual' },
      ],
    });
  });

  it('tolerates a code fence, and cleans each query', () => {
    expect(parseQueriesAnswer(`\`\`\`json\n${queries('  "Grade my essays"  ', 'Message: plan a trip')}\n\`\`\``, 3, [])).toMatchObject({ ok: true, value: [{ query: 'Grade my essays' }, { query: 'plan a trip' }] });
  });

  it('skips repeats of `avoid`, ignoring case and whitespace', () => {
    const avoid = ['How do I grade essays faster?', 'Plan a  field trip'];
    const parsed = parseQueriesAnswer(queries('how do I GRADE essays   faster?', '  plan a field\ttrip ', '"Plan a field trip"', 'Write a quiz on fractions'), 3, avoid);
    expect(parsed).toEqual({ ok: true, value: [{ query: 'Write a quiz on fractions', domain: 'general', scenario: 'casual' }] });
  });

  it('skips duplicates within the answer, keeping the first', () => {
    const parsed = parseQueriesAnswer(queries({ query: 'Write a quiz', domain: 'education' }, { query: 'write a  QUIZ', domain: 'writing' }, 'Plan a trip'), 3, []);
    expect(parsed).toMatchObject({ ok: true, value: [{ query: 'Write a quiz', domain: 'education' }, { query: 'Plan a trip' }] });
  });

  it('does not count skipped items towards count', () => {
    const parsed = parseQueriesAnswer(queries('', "I'm sorry, I can't write those.", 'Repeat me', 'repeat me', 5, null, { text: 'no query key' }, { query: ['x'] }, 'First new', 'Second new', 'Third new'), 2, ['REPEAT ME']);
    expect(parsed).toMatchObject({ ok: true, value: [{ query: 'First new' }, { query: 'Second new' }] });
  });

  it.each<[string, string]>([
    ['an empty item', '   '],
    ['a refusal', "I'm sorry, but I can't help with that."],
    ['an apology', 'I apologise, I cannot do this.'],
    ['an explanation', "Here's a new request for this person: plan a trip"],
  ])('skips %s', (_name, item) => {
    expect(parseQueriesAnswer(queries(item, 'Plan a trip'), 2, [])).toEqual({ ok: true, value: [{ query: 'Plan a trip', domain: 'general', scenario: 'casual' }] });
  });

  it.each<[string, string, RegExp]>([
    ['no JSON', 'Plan a trip\nGrade my essays', /no JSON/],
    ['no queries array', '{"query": "Plan a trip"}', /queries/],
    ['queries that is not an array', '{"queries": "Plan a trip"}', /queries/],
    ['an empty array', queries(), /no usable/],
    ['only repeats of avoid', queries('plan a TRIP', { query: 'Grade my essays' }), /no usable/],
    ['only refusals and empty items', queries("I'm sorry, I can't do that.", '', { query: '  ' }, 42), /no usable/],
  ])('rejects an answer with %s', (_name, content, reason) => {
    const parsed = parseQueriesAnswer(content, 3, ['Plan a trip', 'grade my essays']);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });

  const pool = ['Plan a trip', 'plan a trip', 'PLAN  a trip', 'Grade my essays', 'grade my essays ', 'Write a quiz', 'Sort my inbox', '', "I'm sorry, I can't.", 'Budget for June'];
  test.prop([fc.array(fc.oneof(fc.constantFrom(...pool), fc.string({ maxLength: 12 })), { maxLength: 12 }), fc.array(fc.constantFrom(...pool), { maxLength: 4 }), fc.integer({ min: 1, max: 6 })], { numRuns: 300 })(
    'keeps at most count new, distinct, non-empty queries, and rejects only when none is usable',
    (items, avoid, count) => {
      const parsed = parseQueriesAnswer(queries(...items), count, avoid);
      const avoided = new Set(avoid.map(normalise));
      if (!parsed.ok) {
        expect(parsed.reason).toMatch(/no usable/);
        return;
      }
      const found = parsed.value;
      expect(found.length).toBeGreaterThan(0);
      expect(found.length).toBeLessThanOrEqual(count);
      expect(new Set(found.map((q) => normalise(q.query))).size).toBe(found.length);
      for (const q of found) {
        expect(q.query.trim()).not.toBe('');
        expect(avoided.has(normalise(q.query))).toBe(false);
        expect(DOMAINS).toContain(q.domain);
        expect(SCENARIOS).toContain(q.scenario);
      }
      // As many as asked when the answer had that many distinct new plain ones.
      const plain = new Set(items.filter((item) => /^[A-Za-z ]+$/.test(item) && item.trim() !== '').map(normalise).filter((item) => !avoided.has(item)));
      expect(found.length).toBeGreaterThanOrEqual(Math.min(count, plain.size));
    },
  );
});

// ---------------------------------------------------------------------------------------------------------

describe('createQueryGenerator with a fake model', () => {
  it('fills the template: persona lines, count, and the queries to avoid as "- ..." lines', async () => {
    const { generator: g, fake } = generator(() => queries({ query: 'Write a quiz on fractions', domain: 'education', scenario: 'work_task' }));
    expect(await generate(g, 2, ['Plan a trip', 'Grade my essays'])).toEqual([{ query: 'Write a quiz on fractions', domain: 'education', scenario: 'work_task' }]);
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request!.module).toBe('query_generation');
    expect(request!.temperature).toBe(0.9);
    expect(request!.messages).toEqual([{ role: 'user', content: `WRITE 2 for\n${PERSONA_LINES}\nunlike:\n- Plan a trip\n- Grade my essays\nas {"queries": [...]} ({other} kept)` }]);
    expect(request!.hints).toEqual({ persona, queryGeneration: { count: 2, avoid: ['Plan a trip', 'Grade my essays'] } });
  });

  it('says "(none yet)" when there is nothing to avoid', async () => {
    const { generator: g, fake } = generator(() => queries('Write a quiz'));
    await generate(g, 1, []);
    expect(fake.requests[0]!.messages[0]!.content).toBe(`WRITE 1 for\n${PERSONA_LINES}\nunlike:\n(none yet)\nas {"queries": [...]} ({other} kept)`);
  });

  it('leaves placeholders and $ patterns in the queries to avoid as they are', async () => {
    const { generator: g, fake } = generator(() => queries('Write a quiz'));
    await generate(g, 1, ['What is {count}?', 'Use $& and $1 in a regex']);
    expect(fake.requests[0]!.messages[0]!.content).toContain('unlike:\n- What is {count}?\n- Use $& and $1 in a regex\nas');
  });

  it('asks again with the rejected answer and the reason', async () => {
    const { generator: g, fake } = generator((_request, call) => (call === 1 ? queries('Plan a trip') : queries('Write a quiz', 'Sort my inbox')));
    expect((await generate(g, 2, ['plan a trip'])).map((q) => q.query)).toEqual(['Write a quiz', 'Sort my inbox']);
    expect(fake.requests).toHaveLength(2);
    const [first, second] = fake.requests;
    expect(second!.messages).toEqual([first!.messages[0], { role: 'assistant', content: queries('Plan a trip') }, { role: 'user', content: expect.stringMatching(/rejected \(no usable new query/) as unknown }]);
    expect(second!.temperature).toBeCloseTo(1.0);
  });

  it('errors with the last reason after validationRetries rejected retries', async () => {
    const { generator: g, fake } = generator(() => 'no JSON here', { validationRetries: 1 });
    const error = await failure(generate(g, 2, []));
    expect(error).toBeInstanceOf(RejectedAnswerError);
    expect((error as Error).message).toMatch(/query_generation answer rejected 2 time\(s\), last: no JSON object/);
    expect(fake.requests).toHaveLength(2);
  });

  it('passes model errors through (the caller retries them)', async () => {
    const { generator: g, fake } = generator(() => {
      throw new ModelError('server', 'boom', { status: 500 });
    });
    const error = await failure(generate(g, 2, []));
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).kind).toBe('server');
    expect(fake.requests).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('createQueryGenerator with the sim model', () => {
  const sim = () => createQueryGenerator({ model: createSimModel({ provider: 'sim', model: 'sim-writer' }), template: TEMPLATE, validationRetries: 2 });
  /** Queries the sim writes for teachers, to draw lists to avoid from. */
  let written: string[] = [];

  beforeAll(async () => {
    const g = sim();
    const all = new Set<string>();
    for (let i = 0; i < 40; i += 1) for (const q of await generate(g, 5, [], { ...persona, name: `t${i}` })) all.add(q.query);
    written = [...all];
  });

  it('writes count distinct queries in the persona’s role', async () => {
    const found = await generate(sim(), 5, [], persona);
    expect(found).toHaveLength(5);
    expect(new Set(found.map((q) => normalise(q.query))).size).toBe(5);
    expect(written.length).toBeGreaterThan(30);
    expect(written.some((q) => q.includes('as a teacher'))).toBe(true);
  });

  test.prop([fc.integer({ min: 1, max: 5 }), fc.nat(), fc.integer({ min: 0, max: 40 }), fc.boolean(), fc.nat(100)], { numRuns: 60 })(
    'gives count distinct queries, none of them one to avoid',
    async (count, start, size, upper, name) => {
      // A window of what the sim writes for teachers, some of it in upper case, and one unrelated request.
      const avoid = Array.from({ length: Math.min(size, written.length) }, (_, i) => written[(start + i) % written.length]!).map((q, i) => (upper && i % 2 === 0 ? q.toUpperCase() : q));
      avoid.push('Write a quiz on fractions');
      const found = await generate(sim(), count, avoid, { ...persona, name: `p${name}` });
      expect(found).toHaveLength(count);
      const avoided = new Set(avoid.map(normalise));
      expect(new Set(found.map((q) => normalise(q.query))).size).toBe(count);
      for (const q of found) {
        expect(avoided.has(normalise(q.query)), q.query).toBe(false);
        expect(q.query.trim()).not.toBe('');
        expect(DOMAINS).toContain(q.domain);
        expect(SCENARIOS).toContain(q.scenario);
      }
    },
  );

  it('is deterministic for the same persona, count and avoid list', async () => {
    const avoid = written.slice(0, 10);
    expect(await generate(sim(), 4, avoid)).toEqual(await generate(sim(), 4, avoid));
  });

  it('never repeats a query across supplement rounds that pass on what came before', async () => {
    const g = sim();
    const used: string[] = [];
    for (let round = 0; round < 8; round += 1) {
      const found = await generate(g, 3, used);
      expect(found).toHaveLength(3);
      for (const q of found) expect(used.map(normalise)).not.toContain(normalise(q.query));
      used.push(...found.map((q) => q.query));
    }
  });
});
