// noise / inOrder: texts in, NoiseResults out, in input order, with bounded concurrency.
import { fc, test } from '@fast-check/vitest';
import { from, lastValueFrom, tap, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { strategyFileSchema, type Layer, type StrategyFile } from '../../src/config/schema.js';
import { FatalError, ModelError } from '../../src/errors.js';
import { createSimModel } from '../../src/models/sim.js';
import type { ChatModel, ChatRequest, ChatResponse, ModelModule, ModelRef, TokenUsage } from '../../src/chat.js';
import { createDistractor, type Distractor, type NoiseResult } from '../../src/distractor/distractor.js';
import { loadStrategyFile, DEFAULT_STRATEGY_FILE } from '../../src/distractor/setup.js';
import { inOrder, noise, type NoiseOptions } from '../../src/operators/noise.js';
import type { TextItem } from '../../src/types.js';
import { scripted } from '../helpers/fixtures.js';

const TEMPLATES: Record<Layer, string> = { surface_noise: '{text} {strategies} {persona}', incomplete_info: '{text} {strategies} {persona}', semantic_ambiguity: '{text} {strategies} {persona}' };

const STRATEGIES: StrategyFile = strategyFileSchema.parse({
  layer_weights: { surface_noise: 0.5, incomplete_info: 0.3, semantic_ambiguity: 0.2 },
  strategies: {
    surface_noise: { colloquial_speech: { probability: 0.5 }, typo_misspelling: { probability: 0.5 } },
    incomplete_info: { missing_slots: { probability: 0.5 }, vague_slot_values: { probability: 0.5 } },
    semantic_ambiguity: { multi_intent: { probability: 0.5 }, mind_changing: { probability: 0.5 } },
  },
});

const item = (text: string, i = 0): TextItem => ({ text, persona: { communication_style: 'casual' }, key: `id:${i}`, source: `texts.txt:${i + 1}` });

const askOf = (request: ChatRequest) => {
  const ask = request.hints?.distractor;
  if (ask === undefined) throw new Error('distractor request without hints');
  return ask;
};

/** A valid answer: the text in lower case with " pls" (keeps every number, so valid under every layer). */
const answer = (request: ChatRequest): string => JSON.stringify({ intent: 'x', noisy_text: `${askOf(request).text.toLowerCase()} pls` });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A fake model that answers after `delayOf(text)` ms and counts calls in flight. */
function timedModel(delayOf: (text: string) => number): { model: ChatModel; completed: string[]; maxInFlight: () => number; calls: () => number } {
  let inFlight = 0;
  let max = 0;
  let calls = 0;
  const completed: string[] = [];
  const model: ChatModel = {
    provider: 'fake',
    model: 'timed',
    async complete(request: ChatRequest): Promise<ChatResponse> {
      calls += 1;
      inFlight += 1;
      max = Math.max(max, inFlight);
      try {
        const { text } = askOf(request);
        await sleep(delayOf(text));
        completed.push(text);
        return { content: answer(request), usage: { input: 3, output: 2 } };
      } finally {
        inFlight -= 1;
      }
    },
  };
  return { model, completed, maxInFlight: () => max, calls: () => calls };
}

const semanticWith = (model: ChatModel, validationRetries = 1): Distractor =>
  createDistractor({ activationProbability: 1, rules: [], strategies: STRATEGIES, semantic: { model, templates: TEMPLATES, validationRetries } });

const base: Omit<NoiseOptions, 'distractor'> = { seed: 42, maxRetries: 2, retryDelayMs: 0 };

const run = (items: readonly TextItem[], options: NoiseOptions): Promise<(readonly NoiseResult[])[]> => lastValueFrom(from(items).pipe(noise(options), toArray()));

describe('inOrder', () => {
  const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

  it('emits values in index order, holding back the ones that arrive early', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('--c-a-d-(b|)', { a: { index: 0, value: 'A' }, b: { index: 1, value: 'B' }, c: { index: 2, value: 'C' }, d: { index: 3, value: 'D' } });
      expectObservable(source.pipe(inOrder())).toBe('----a---(bcd|)', { a: 'A', b: 'B', c: 'C', d: 'D' });
    });
  });

  it('passes values already in order straight through', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-c|', { a: { index: 0, value: 1 }, b: { index: 1, value: 2 }, c: { index: 2, value: 3 } });
      expectObservable(source.pipe(inOrder())).toBe('-a-b-c|', { a: 1, b: 2, c: 3 });
    });
  });

  it('passes an error through at once, dropping what it held back', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const boom = new Error('boom');
      const source = cold('-b-a-c-#', { a: { index: 0, value: 'A' }, b: { index: 1, value: 'B' }, c: { index: 3, value: 'C' } }, boom);
      expectObservable(source.pipe(inOrder())).toBe('---(ab)#', { a: 'A', b: 'B' }, boom);
    });
  });

  test.prop([fc.array(fc.string(), { maxLength: 30 }).chain((values) => fc.tuple(fc.constant(values), fc.shuffledSubarray([...values.keys()], { minLength: values.length, maxLength: values.length })))])(
    'restores the order of any permutation',
    async ([values, order]) => {
      const out = await lastValueFrom(from(order.map((index) => ({ index, value: values[index] as string }))).pipe(inOrder(), toArray()));
      expect(out).toEqual(values);
    },
  );
});

describe('noise', () => {
  it('emits results in input order when the model answers in reverse order', async () => {
    const texts = Array.from({ length: 8 }, (_, i) => `please summarise report ${i}`);
    // A model whose answers the test releases by hand: all eight calls are held, then answered last to first.
    const held: { text: string; answer: () => void }[] = [];
    const completed: string[] = [];
    const model: ChatModel = {
      provider: 'fake',
      model: 'held',
      complete: (request) =>
        new Promise<ChatResponse>((resolve) => {
          const { text } = askOf(request);
          held.push({
            text,
            answer: () => {
              completed.push(text);
              resolve({ content: answer(request), usage: { input: 1, output: 1 } });
            },
          });
        }),
    };
    const emitted: string[] = [];
    const done = lastValueFrom(
      from(texts.map((text, i) => item(text, i))).pipe(
        noise({ ...base, distractor: semanticWith(model), concurrency: 8 }),
        tap((results) => emitted.push(results[0]!.original_text)),
        toArray(),
      ),
    );
    while (held.length < texts.length) await tick();
    for (const call of [...held].reverse()) {
      call.answer();
      await tick();
      // Nothing is emitted before the first text's answer, which comes last.
      if (call.text !== texts[0]) expect(emitted).toEqual([]);
    }
    const out = await done;
    expect(completed).toEqual([...texts].reverse());
    expect(emitted).toEqual(texts);
    expect(out.map((results) => results.map((r) => r.original_text))).toEqual(texts.map((text) => [text]));
    for (const [i, results] of out.entries()) expect(results[0]).toMatchObject({ noisy_text: `${texts[i]} pls`, layer_index: expect.any(Number) as unknown });
  });

  it.each([1, 3])('gives %i results per text, each from its own draws', async (versions) => {
    const fake = scripted(answer, { provider: 'fake', model: 'scripted' });
    const texts = ['one thing to noise', 'another thing', 'a third'];
    const out = await run(
      texts.map((text, i) => item(text, i)),
      { ...base, distractor: semanticWith(fake.model), versions, concurrency: 2 },
    );
    expect(out).toHaveLength(texts.length);
    for (const [i, results] of out.entries()) {
      expect(results).toHaveLength(versions);
      for (const result of results) expect(result.original_text).toBe(texts[i]);
    }
    expect(fake.requests).toHaveLength(texts.length * versions);
  });

  it('draws the versions of a text independently (seeded by text key and version)', async () => {
    const fake = scripted(answer, { provider: 'fake', model: 'scripted' });
    const [results] = await run([item('please book me a table for tonight', 0)], { ...base, distractor: semanticWith(fake.model), versions: 12 });
    const draws = new Set(fake.requests.map((request) => JSON.stringify(askOf(request))));
    expect(results).toHaveLength(12);
    expect(draws.size).toBeGreaterThan(1);
  });

  it('gives a text the same results whatever the texts around it (seeded by its key)', async () => {
    const sim = createSimModel({ provider: 'sim', model: 'noiser' });
    const distractor = semanticWith(sim);
    const alone = await run([item('Book a table for 4 people at 7pm', 7)], { ...base, distractor, versions: 2 });
    const among = await run(
      [item('Plan a trip to Lisbon', 1), item('Book a table for 4 people at 7pm', 7), item('Explain recursion', 2)],
      { ...base, distractor, versions: 2 },
    );
    expect(among[1]).toEqual(alone[0]);
  });

  test.prop([fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 6 }), fc.integer({ min: 1, max: 2 }), fc.integer()], { numRuns: 12 })(
    'gives the same output for the same seed at concurrency 1 and 8 (latency jitter reorders completions)',
    async (texts, versions, seed) => {
      const sim = createSimModel({ provider: 'sim', model: 'noiser' }, { latencyMs: 1, jitterMs: 1, seed });
      const items = texts.map((text, i) => item(text, i));
      const at = (concurrency: number) => run(items, { ...base, seed, versions, concurrency, distractor: semanticWith(sim) });
      const serial = await at(1);
      expect(serial).toHaveLength(texts.length);
      expect(await at(8)).toEqual(serial);
    },
  );

  it('gives a different draw for a different seed', async () => {
    const sim = createSimModel({ provider: 'sim', model: 'noiser' });
    const items = ['Could you help me write a cover letter for a data analyst job?', 'How do I deduplicate a CSV file by email in Python?'].map((text, i) => item(text, i));
    const outs = await Promise.all([1, 2, 3, 4, 5, 6].map((seed) => run(items, { ...base, seed, versions: 2, distractor: semanticWith(sim) })));
    expect(new Set(outs.map((out) => JSON.stringify(out))).size).toBeGreaterThan(1);
  });

  it.each([1, 3, 5])('never has more than concurrency %i model calls in flight', async (concurrency) => {
    const timed = timedModel((text) => 1 + (text.length % 3));
    const texts = Array.from({ length: 24 }, (_, i) => `text number ${i} to noise`);
    const out = await run(
      texts.map((text, i) => item(text, i)),
      { ...base, distractor: semanticWith(timed.model), versions: 2, concurrency },
    );
    expect(out).toHaveLength(texts.length);
    expect(timed.calls()).toBe(texts.length * 2);
    expect(timed.maxInFlight()).toBe(concurrency);
  });

  it('refuses bad versions and concurrency', () => {
    const distractor = semanticWith(scripted(answer).model);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => noise({ ...base, distractor, versions: bad })).toThrow(TypeError);
      expect(() => noise({ ...base, distractor, concurrency: bad })).toThrow(TypeError);
    }
  });

  it('retries a transient model error and reports the usage of each successful call', async () => {
    const fake = scripted((request, call) => {
      if (call === 1) throw new ModelError('server', 'sim: injected 500', { status: 500 });
      return answer(request);
    });
    const usage: [ModelModule, ModelRef, TokenUsage][] = [];
    const retries: [ModelModule, unknown][] = [];
    const [[result]] = (await run([item('please book a table for tonight')], {
      ...base,
      distractor: semanticWith(fake.model),
      onUsage: (module, model, tokens) => usage.push([module, model, tokens]),
      onRetry: (module, error) => retries.push([module, error]),
    })) as [[NoiseResult]];
    expect(result).toMatchObject({ noisy_text: 'please book a table for tonight pls', layer_index: expect.any(Number) as unknown });
    expect(result.layer).not.toBe('error');
    expect(fake.requests.map((request) => request.attempt)).toEqual([1, 2]);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toEqual(['distractor', expect.objectContaining({ kind: 'server' })]);
    expect(usage).toEqual([['distractor', { provider: 'sim', model: 'scripted' }, { input: 10, output: 5 }]]);
  });

  it('leaves a text clean (layer error) once the retries are spent, and goes on with the next', async () => {
    const fake = scripted((request) => {
      if (askOf(request).text.startsWith('fail')) throw new ModelError('server', 'down');
      return answer(request);
    });
    const out = await run([item('fail this one', 0), item('keep this one', 1)], { ...base, maxRetries: 2, distractor: semanticWith(fake.model) });
    expect(out[0]?.[0]).toMatchObject({ layer: 'error', noisy_text: 'fail this one', metadata: { error: 'down' } });
    expect(out[1]?.[0]).toMatchObject({ noisy_text: 'keep this one pls' });
    expect(fake.requests.filter((request) => askOf(request).text.startsWith('fail')).map((request) => request.attempt)).toEqual([1, 2, 3]);
  });

  it('ends with the error of an auth failure', async () => {
    const fake = scripted(() => {
      throw new ModelError('auth', '401');
    });
    // As in a conversation: the auth failure ends the run as a FatalError that carries it.
    const error: unknown = await run([item('hello there friend')], { ...base, distractor: semanticWith(fake.model) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalError);
    expect(error).toMatchObject({ cause: { kind: 'auth' } });
    expect(fake.requests).toHaveLength(1);
  });
});

describe('noise with the bundled strategies and the sim model', () => {
  it('noises every text with a real layer', async () => {
    const strategies = await loadStrategyFile(DEFAULT_STRATEGY_FILE);
    const distractor = createDistractor({ activationProbability: 1, rules: [], strategies, semantic: { model: createSimModel({ provider: 'sim', model: 'noiser' }), templates: TEMPLATES, validationRetries: 2 } });
    const texts = ['Could you help me write a cover letter for a data analyst job?', 'How do I deduplicate a CSV file by email in Python?', 'Plan a 3-day trip to Lisbon under 500 euros.'];
    const out = await run(
      texts.map((text, i) => item(text, i)),
      { ...base, distractor, versions: 3 },
    );
    for (const results of out) for (const result of results) expect(['surface_noise', 'incomplete_info', 'semantic_ambiguity']).toContain(result.layer);
  });
});
