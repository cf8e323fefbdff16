// The distractor: answer validation, layer and strategy draws, the semantic and legacy distractors, and the
// PersonaGym shapes of what they record.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { lastValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../src/config/load.js';
import { LAYERS, strategyFileSchema, type Config, type Layer, type RuleStrategyConfig, type StrategyFile } from '../../src/config/schema.js';
import { ConfigError, ModelError } from '../../src/errors.js';
import { callModel } from '../../src/models/call.js';
import { createSimModel } from '../../src/models/sim.js';
import type { ChatRequest } from '../../src/chat.js';
import { createDistractor, drawLayer, drawStrategies, type DistractorOptions, type NoiseResult, type NoisedText } from '../../src/distractor/distractor.js';
import { parseNoiseAnswer } from '../../src/prompts/distractor.js';
import { DEFAULT_STRATEGY_FILE, loadStrategyFile, setUpDistractor } from '../../src/distractor/setup.js';
import { rngFor } from '../../src/rng.js';
import { scripted } from '../helpers/fixtures.js';

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** |k − np| ≤ 5σ for k successes out of n Bernoulli(p) draws (exact when p is 0 or 1). */
function expectBinomial(k: number, n: number, p: number): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(k - n * p), `${k} of ${n} with p=${p} (5σ = ${(5 * sigma).toFixed(1)})`).toBeLessThanOrEqual(5 * sigma + 1e-9);
}

const TEMPLATES: Record<Layer, string> = {
  surface_noise: 'SURFACE {text} {strategies} {persona} {layer}',
  incomplete_info: 'INCOMPLETE {text} {strategies} {persona} {layer}',
  semantic_ambiguity: 'AMBIGUOUS {text} {strategies} {persona} {layer}',
};

const LAYER_INDEX: Record<Layer, number> = { surface_noise: 1, incomplete_info: 2, semantic_ambiguity: 3 };

const STRATEGY_FILE: StrategyFile = strategyFileSchema.parse({
  layer_weights: { surface_noise: 0.5, incomplete_info: 0.3, semantic_ambiguity: 0.2 },
  strategies: {
    surface_noise: { colloquial_speech: { probability: 0.4, description: 'casual wording' }, typo_misspelling: { probability: 0.25, description: 'a typo or two' } },
    incomplete_info: { missing_slots: { probability: 0.5, description: 'leave out a constraint' }, vague_slot_values: { probability: 0.6 } },
    semantic_ambiguity: { multi_intent: { probability: 0.6 }, self_contradiction: { probability: 0.7, description: 'conflicting requirements' } },
  },
});

/** The strategy file with every weight on one layer. */
const onlyLayer = (layer: Layer): StrategyFile => ({ ...STRATEGY_FILE, layer_weights: { [layer]: 1 } });

/** The distractor's request hints: what it asked the model to do. */
const askOf = (request: ChatRequest) => {
  const ask = request.hints?.distractor;
  if (ask === undefined) throw new Error('distractor request without hints');
  return ask;
};

/** A valid answer in the JSON the bundled templates ask for: the text in lower case with " pls" added. */
const validAnswer = (request: ChatRequest): string => {
  const ask = askOf(request);
  return JSON.stringify({ intent: 'book_table', slots: { people: '4' }, noisy_text: `${ask.text.toLowerCase()} pls`, applied_strategies: [ask.strategies[0], 'not_asked_for'], slots_dropped: [] });
};

function semantic(reply: Parameters<typeof scripted>[0], overrides: Partial<DistractorOptions> = {}, validationRetries = 2) {
  const fake = scripted(reply, { provider: 'fake', model: 'noiser' });
  const distractor = createDistractor({
    activationProbability: 1,
    rules: [],
    strategies: STRATEGY_FILE,
    semantic: { model: fake.model, templates: TEMPLATES, validationRetries, temperature: 0.5 },
    ...overrides,
  });
  return { distractor, fake };
}

const persona = { communication_style: 'casual', age: 31 };
const context = (key = 'text-1', purpose = 'noise/v0', seed = 42) => ({ persona, rng: rngFor(seed, key, purpose), call: callModel });

const TEXT = 'Book a table for 4 people at 7:30 tonight.';

// ---------------------------------------------------------------------------------------------------------
// PersonaGym's shapes

const LAYER_NAMES = ['surface_noise', 'incomplete_info', 'semantic_ambiguity'] as const;

const extractedSemanticsSchema = z.strictObject({
  intent: z.string(),
  slots: z.record(z.string(), z.unknown()),
  original_text: z.string(),
  compressed_text: z.string(),
  confidence: z.number().min(0).max(1),
});

/** PersonaGym's NoiseResult (the three layers, plus `skipped`, `none` and `error` with index 0). */
const noiseResultSchema = z
  .strictObject({
    original_text: z.string(),
    noisy_text: z.string(),
    layer: z.enum([...LAYER_NAMES, 'skipped', 'none', 'error']),
    layer_index: z.number().int().min(0).max(3),
    applied_strategies: z.array(z.string()),
    extracted_semantics: extractedSemanticsSchema.nullable(),
    metadata: z.record(z.string(), z.unknown()),
  })
  .refine((result) => result.layer_index === ((LAYER_NAMES as readonly string[]).indexOf(result.layer) + 1), { message: 'layer_index does not match layer', path: ['layer_index'] });

/** One element of PersonaGym's `noisy_versions`. */
const noisyVersionSchema = z.strictObject({
  noisy_text: z.string(),
  noise_type: z.string().min(1),
  noise_intensity: z.number().min(0),
  applied_strategies: z.array(z.string()).optional(),
});

const PERSONAGYM_RESULT = JSON.parse(
  '{"original_text":"Could you draft a short story about a scientist curing an incurable disease, realistically?","noisy_text":"Could you write a believable story about a researcher who manages to cure a disease, not too long.","layer":"incomplete_info","layer_index":2,"applied_strategies":["missing_slots","vague_slot_values"],"extracted_semantics":{"intent":"write_short_story","slots":{"topic":"scientist curing an incurable disease","format":"short story","style":"realistic"},"original_text":"Could you draft a short story about a scientist curing an incurable disease, realistically?","compressed_text":"Draft a realistic short story about a scientist curing an incurable disease.","confidence":1.0},"metadata":{}}',
) as unknown;
const PERSONAGYM_SKIPPED = JSON.parse('{"original_text":"x","noisy_text":"x","layer":"skipped","layer_index":0,"applied_strategies":[],"extracted_semantics":null,"metadata":{"reason":"activation_probability_check_failed"}}') as unknown;

// ---------------------------------------------------------------------------------------------------------

describe('parseNoiseAnswer', () => {
  const input = 'Can you help me write a cover letter for 2 jobs?';

  it('accepts the JSON the templates ask for, with its semantics and strategies', () => {
    const answer = parseNoiseAnswer(JSON.stringify({ intent: 'write_cover_letter', slots: { count: '2' }, noisy_text: 'can u help w a cover letter for 2 jobs', applied_strategies: ['colloquial_speech', 7], slots_dropped: ['tone'] }), input, 'surface_noise');
    expect(answer).toEqual({
      ok: true,
      noisyText: 'can u help w a cover letter for 2 jobs',
      applied: ['colloquial_speech'],
      semantics: { intent: 'write_cover_letter', slots: { count: '2' }, original_text: input, compressed_text: input, confidence: 1 },
      slotsDropped: ['tone'],
      // "tone" names no slot with a value from the input: nothing of the input was dropped.
      dropped: [],
      means: input,
    });
  });

  it('accepts JSON inside a ``` fence', () => {
    for (const fence of ['```json\n', '```\n', '```JSON ']) {
      const answer = parseNoiseAnswer(`${fence}{"noisy_text": "can u help w a cover letter for 2 jobs", "compressed_text": "cover letter, 2 jobs", "intent": "x"}\n\`\`\``, input, 'surface_noise');
      expect(answer).toMatchObject({ ok: true, noisyText: 'can u help w a cover letter for 2 jobs', semantics: { intent: 'x', compressed_text: 'cover letter, 2 jobs' } });
    }
  });

  it('accepts plain text, fenced or not, without semantics', () => {
    expect(parseNoiseAnswer('can u help w a cover letter for 2 jobs', input, 'surface_noise')).toEqual({ ok: true, noisyText: 'can u help w a cover letter for 2 jobs', applied: undefined, semantics: null, slotsDropped: [], dropped: [], means: input });
    expect(parseNoiseAnswer('```\ncan u help w a cover letter for 2 jobs\n```', input, 'surface_noise')).toMatchObject({ ok: true, noisyText: 'can u help w a cover letter for 2 jobs' });
  });

  it('strips a "Noisy version:" label and surrounding quotes', () => {
    for (const content of ['Noisy version: "can u help w a cover letter for 2 jobs"', 'noisy text:   can u help w a cover letter for 2 jobs', '"can u help w a cover letter for 2 jobs"', '“can u help w a cover letter for 2 jobs”', "Rewritten message: 'can u help w a cover letter for 2 jobs'"]) {
      expect(parseNoiseAnswer(content, input, 'surface_noise'), content).toMatchObject({ ok: true, noisyText: 'can u help w a cover letter for 2 jobs' });
    }
    expect(parseNoiseAnswer('{"noisy_text": "Noisy version: \\"help w cover letter for 2 jobs\\""}', input, 'surface_noise')).toMatchObject({ ok: true, noisyText: 'help w cover letter for 2 jobs' });
  });

  it.each<[string, string, RegExp]>([
    ['empty', '', /empty/],
    ['only whitespace', '  \n ', /empty/],
    ['empty JSON text', '{"noisy_text": ""}', /empty/],
    ['empty quotes', '""', /empty/],
    ['identical', input, /identical/],
    ['identical up to case and whitespace', '  can YOU help me write a cover   letter\nfor 2 jobs?  ', /identical/],
    ['identical in JSON', '{"noisy_text": "CAN YOU HELP ME WRITE A COVER LETTER FOR 2 JOBS?"}', /identical/],
    ['a refusal', "I'm sorry, I can't help with rewriting this for 2 jobs.", /refusal/],
    ['a refusal without apostrophe', 'Im sorry but that is not something I do (2)', /refusal/],
    ['an apology', 'I apologize, but I cannot do that for 2 jobs.', /refusal/],
    ['as an AI', 'As an AI, I do not type like people do, 2', /refusal/],
    ['a refusal in JSON', '{"noisy_text": "I cannot rewrite this message about 2 jobs."}', /refusal/],
    ['an explanation', "Here's the noisy version: can u help w a cover letter for 2 jobs", /explanation/],
    ['an explanation (here is)', 'Here is the rewritten message: can u help w a cover letter for 2 jobs', /explanation/],
    ['a "Sure," wrapper', 'Sure, can u help w a cover letter for 2 jobs', /explanation/],
    ['an account of the changes', 'can u help w a cover letter for 2 jobs (I have applied colloquial speech)', /explanation/],
    ['far longer than the input', `can u help w a cover letter for 2 jobs ${'and also some more words '.repeat(10)}`, /far longer/],
    ['JSON without noisy_text', '{"text": "can u help w a cover letter for 2 jobs"}', /noisy_text/],
    ['JSON with a non-string noisy_text', '{"noisy_text": ["can u help"]}', /noisy_text/],
    ['invalid JSON', '{"noisy_text": "can u help w a cover letter for 2 jobs",}', /invalid JSON/],
  ])('rejects %s', (_name, content, reason) => {
    const answer = parseNoiseAnswer(content, input, 'incomplete_info');
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.reason).toMatch(reason);
  });

  it('rejects an answer that lost a detail: under surface noise always, under the other layers unless it was reported as dropped', () => {
    const text = 'Book a table for 4 people at 7:30 on the 2nd.';
    const lost = 'book a table for four people at 7:30 on the 2nd';
    for (const layer of LAYERS) expect(parseNoiseAnswer(lost, text, layer), layer).toEqual({ ok: false, reason: expect.stringContaining('(4)') as unknown });
    expect(parseNoiseAnswer('book table for 4 ppl at 7.30 on the 2nd', text, 'surface_noise')).toMatchObject({ ok: false, reason: expect.stringMatching(/people, 7:30/) as unknown });
    // A typo inside a key term changes it; one in the words around the details does not.
    expect(parseNoiseAnswer('book a tabel for 4 people at 7:30 on the 2nd pls', text, 'surface_noise')).toMatchObject({ ok: false, reason: expect.stringContaining('(table)') as unknown });
    expect(parseNoiseAnswer('bok a table for 4 people at 7:30 on teh 2nd pls', text, 'surface_noise')).toMatchObject({ ok: true, dropped: [], means: text });
    // Reported by slot name (or by value) under a heavier layer: accepted, and the value is what was dropped.
    const reported = JSON.stringify({ slots: { party: '4', time: '7:30' }, slots_dropped: ['party'], noisy_text: lost, means: 'a table for some people at 7:30 on the 2nd' });
    expect(parseNoiseAnswer(reported, text, 'incomplete_info')).toMatchObject({ ok: true, dropped: ['4'], means: 'a table for some people at 7:30 on the 2nd' });
    expect(parseNoiseAnswer(JSON.stringify({ noisy_text: lost, slots_dropped: ['4'] }), text, 'semantic_ambiguity')).toMatchObject({ ok: true, dropped: ['4'], means: lost });
    // Surface noise may drop nothing, even when it says so.
    expect(parseNoiseAnswer(reported, text, 'surface_noise')).toMatchObject({ ok: false, reason: expect.stringMatching(/surface noise dropped a detail \(4\)/) as unknown });
  });

  it('checks every slot the model reported, not only the protected tokens', () => {
    const text = 'Find me a cheap hotel near the beach.';
    const answer = (noisy: string, extra: Record<string, unknown> = {}) => JSON.stringify({ slots: { price: 'cheap', place: 'near the beach' }, noisy_text: noisy, ...extra });
    expect(parseNoiseAnswer(answer('find me a hotel near teh beach'), text, 'surface_noise')).toMatchObject({ ok: false, reason: expect.stringContaining('cheap') as unknown });
    expect(parseNoiseAnswer(answer('find me a cheap hotel near the beach pls'), text, 'surface_noise')).toMatchObject({ ok: true });
    expect(parseNoiseAnswer(answer('find me a hotel near the beach', { slots_dropped: ['price'] }), text, 'incomplete_info')).toMatchObject({ ok: true, dropped: ['cheap'] });
  });

  it('compares details without regard to case or curly quotes', () => {
    const text = 'Translate "good morning" into Spanish for my Python app.';
    expect(parseNoiseAnswer('translate “good morning” into spanish for my python app pls', text, 'surface_noise')).toMatchObject({ ok: true });
    expect(parseNoiseAnswer('translate "good mornin" into spanish for my python app', text, 'surface_noise')).toMatchObject({ ok: false, reason: expect.stringContaining('"good morning"') as unknown });
  });

  const numbers = (text: string): string[] => text.match(/\d+(?:[.,:]\d+)*/g) ?? [];
  test.prop([fc.string({ maxLength: 60 }), fc.string({ maxLength: 120 }), fc.constantFrom(...LAYERS)], { numRuns: 300 })(
    'never accepts the input unchanged, an empty text, or (under surface noise) a text missing one of its numbers',
    (text, content, layer) => {
      const answer = parseNoiseAnswer(content, text, layer);
      if (!answer.ok) return;
      expect(answer.noisyText.trim()).not.toBe('');
      expect(answer.noisyText.toLowerCase().replace(/\s+/g, ' ').trim()).not.toBe(text.toLowerCase().replace(/\s+/g, ' ').trim());
      expect(answer.noisyText.length).toBeLessThanOrEqual(text.length * 3 + 80);
      if (layer === 'surface_noise') for (const number of numbers(text)) expect(answer.noisyText).toContain(number);
    },
  );

  // Regression (fixed): the refusal pattern only knows the ASCII apostrophe. Models very often answer with a typographic
  // one (’), and "I’m sorry, but I can’t help with that." is then accepted as the user's noisy message.
  it('rejects a refusal written with a typographic apostrophe (I’m sorry, I can’t)', () => {
    expect(parseNoiseAnswer('I’m sorry, but I can’t help with that.', 'Can you help me write a cover letter?', 'surface_noise').ok).toBe(false);
  });

  // Regression (fixed): an answer that starts like the JSON object but has no closing brace (an answer cut off by
  // max_completion_tokens, `{"noisy_text": "can u hel`) skips the JSON branch (it needs a `}`) and is
  // accepted as plain text: the user turn becomes `{"noisy_text": "...` with the JSON syntax in it.
  it('rejects JSON cut off before its closing brace', () => {
    expect(parseNoiseAnswer('{"noisy_text": "can u help w a cover letter', 'Can you help me write a cover letter?', 'surface_noise').ok).toBe(false);
  });

  // Regression (fixed): `clean` strips one leading and one trailing quote whether or not they are a pair around the whole
  // text, so a terse message that starts and ends with two separate quoted words is mangled:
  // '"let" vs "const"' becomes 'let" vs "const'.
  it('keeps a message that starts and ends with two separately quoted words', () => {
    expect(parseNoiseAnswer('"let" vs "const"', 'Should I use "let" or "const"?', 'incomplete_info')).toMatchObject({ ok: true, noisyText: '"let" vs "const"' });
  });

  // Regression (fixed): EXPLANATION's `i (?:have |'ve )?(?:applied|...)` needs a space right after "i", so "I've" can
  // never match it: "I've rewritten your message: ..." is accepted as the noisy text.
  it("rejects an account of the changes written with I've", () => {
    expect(parseNoiseAnswer("I've rewritten it: can u help w a cover letter", 'Can you help me write a cover letter?', 'surface_noise').ok).toBe(false);
  });

  // Regression (fixed): the same EXPLANATION branch matches anywhere in the text, so a user message that itself says
  // "I added" / "I have applied" / "I rewrote" (very common in real requests) is rejected as an explanation,
  // and such a text can never be noised: every retry is rejected and the turn ends up in layer `error`.
  it('accepts a noisy message in which the user says "I added ..." (as the input did)', () => {
    const text = 'I added an index on the email column but the query is still slow. Why?';
    expect(parseNoiseAnswer('i added an index on the email column but query still slow, why??', text, 'surface_noise')).toMatchObject({ ok: true });
  });
});

describe('drawLayer', () => {
  const N = 20_000;

  it('draws each layer with a frequency matching its weight', () => {
    const weights = { surface_noise: 0.5, incomplete_info: 0.3, semantic_ambiguity: 0.2 };
    const rng = rngFor(7, 'draw-layer', 'test');
    const counts: Record<Layer, number> = { surface_noise: 0, incomplete_info: 0, semantic_ambiguity: 0 };
    for (let i = 0; i < N; i += 1) counts[drawLayer(weights, rng)] += 1;
    for (const layer of LAYERS) expectBinomial(counts[layer], N, weights[layer]);
  });

  it('renormalises weights that do not sum to 1, and never draws a zero or missing weight', () => {
    const rng = rngFor(8, 'draw-layer', 'test');
    const counts: Record<Layer, number> = { surface_noise: 0, incomplete_info: 0, semantic_ambiguity: 0 };
    for (let i = 0; i < N; i += 1) counts[drawLayer({ surface_noise: 0, incomplete_info: 3 }, rng)] += 1;
    expect(counts).toEqual({ surface_noise: 0, incomplete_info: N, semantic_ambiguity: 0 });
    const more: Record<Layer, number> = { surface_noise: 0, incomplete_info: 0, semantic_ambiguity: 0 };
    for (let i = 0; i < N; i += 1) more[drawLayer({ surface_noise: 2, incomplete_info: 0, semantic_ambiguity: 6 }, rng)] += 1;
    expect(more.incomplete_info).toBe(0);
    expectBinomial(more.semantic_ambiguity, N, 0.75);
  });

  it('refuses weights that are all zero', () => {
    expect(() => drawLayer({ surface_noise: 0 }, rngFor(1, 'k', 'p'))).toThrow(TypeError);
  });

  test.prop([fc.integer(), fc.string()])('is deterministic per seed and key', (seed, key) => {
    const draws = (rng: ReturnType<typeof rngFor>) => Array.from({ length: 20 }, () => drawLayer(STRATEGY_FILE.layer_weights, rng));
    expect(draws(rngFor(seed, key, 'layer'))).toEqual(draws(rngFor(seed, key, 'layer')));
  });
});

describe('drawStrategies', () => {
  const N = 20_000;
  const file = strategyFileSchema.parse({
    layer_weights: { surface_noise: 1, incomplete_info: 1 },
    strategies: {
      surface_noise: { always: { mandatory: true, probability: 0 }, often: { probability: 0.7 }, seldom: { probability: 0.1 }, never: { probability: 0 } },
      incomplete_info: { a: { probability: 0.2 }, b: { probability: 0.5 }, c: { probability: 0 } },
    },
  });

  it('always includes the mandatory strategies and draws the others with their probability', () => {
    const rng = rngFor(3, 'draw-strategies', 'test');
    const counts = new Map<string, number>();
    let malformed = 0;
    for (let i = 0; i < N; i += 1) {
      const chosen = drawStrategies(file, 'surface_noise', rng);
      if (!chosen.includes('always') || new Set(chosen).size !== chosen.length) malformed += 1;
      for (const name of chosen) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect(malformed).toBe(0);
    expect(counts.get('always')).toBe(N);
    expect(counts.get('never')).toBeUndefined();
    expectBinomial(counts.get('often') ?? 0, N, 0.7);
    expectBinomial(counts.get('seldom') ?? 0, N, 0.1);
  });

  it('is never empty: when nothing fires one strategy is drawn uniformly, and the frequencies account for it', () => {
    const rng = rngFor(4, 'draw-strategies', 'test');
    const counts = new Map<string, number>();
    let empty = 0;
    for (let i = 0; i < N; i += 1) {
      const chosen = drawStrategies(file, 'incomplete_info', rng);
      if (chosen.length === 0) empty += 1;
      for (const name of chosen) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect(empty).toBe(0);
    // P(nothing fires) = 0.8 · 0.5 · 1 = 0.4, then each of the three is drawn with 1/3.
    const fallback = 0.8 * 0.5 * 1;
    expectBinomial(counts.get('a') ?? 0, N, 0.2 + fallback / 3);
    expectBinomial(counts.get('b') ?? 0, N, 0.5 + fallback / 3);
    expectBinomial(counts.get('c') ?? 0, N, fallback / 3);
  });

  it('draws the bundled file’s strategies with their probabilities (mandatory-free layers: with the fallback)', async () => {
    const bundled = await loadStrategyFile(DEFAULT_STRATEGY_FILE);
    const rng = rngFor(5, 'draw-strategies', 'bundled');
    for (const layer of LAYERS) {
      const table = Object.entries(bundled.strategies[layer] ?? {});
      const none = table.reduce((product, [, s]) => product * (s.mandatory ? 0 : 1 - s.probability), 1);
      const counts = new Map<string, number>();
      const n = 5000;
      for (let i = 0; i < n; i += 1) for (const name of drawStrategies(bundled, layer, rng)) counts.set(name, (counts.get(name) ?? 0) + 1);
      for (const [name, s] of table) expectBinomial(counts.get(name) ?? 0, n, s.mandatory ? 1 : s.probability + none / table.length);
    }
  });

  it('refuses a layer without strategies', () => {
    expect(() => drawStrategies(file, 'semantic_ambiguity', rngFor(1, 'k', 'p'))).toThrow(/no strategies/);
  });
});

describe('semantic distractor with a fake model', () => {
  it.each(LAYERS.map((layer) => [layer] as const))('gives a %s result with its layer index, the drawn strategies and the extracted semantics', async (layer) => {
    const { distractor, fake } = semantic(validAnswer, { strategies: onlyLayer(layer) });
    expect(distractor.type).toBe('semantic');
    for (let i = 0; i < 20; i += 1) {
      const requestsBefore = fake.requests.length;
      const result = await lastValueFrom(distractor.result(TEXT, context(`text-${i}`)));
      const request = fake.requests[requestsBefore]!;
      const ask = askOf(request);
      expect(ask).toMatchObject({ text: TEXT, layer });
      expect(result).toEqual<NoiseResult>({
        original_text: TEXT,
        noisy_text: `${TEXT.toLowerCase()} pls`,
        layer,
        layer_index: LAYER_INDEX[layer],
        applied_strategies: [ask.strategies[0]!],
        extracted_semantics: { intent: 'book_table', slots: { people: '4' }, original_text: TEXT, compressed_text: TEXT, confidence: 1 },
        // Under a heavier layer the turn's meaning is recorded (the model gave none: the noisy text itself).
        metadata: layer === 'surface_noise' ? {} : { means: `${TEXT.toLowerCase()} pls` },
      });
      expect(Object.keys(STRATEGY_FILE.strategies[layer] ?? {})).toEqual(expect.arrayContaining([...ask.strategies]));
      // The prompt is the layer's template with every placeholder filled in.
      expect(request.module).toBe('distractor');
      expect(request.messages).toHaveLength(1);
      const prompt = request.messages[0]!.content;
      expect(prompt.startsWith(TEMPLATES[layer].split(' ')[0]!)).toBe(true);
      expect(prompt).toContain(TEXT);
      expect(prompt).toContain('- Communication Style: casual');
      expect(prompt).toContain(`1. **${ask.strategies[0]}**:`);
      expect(prompt).not.toMatch(/\{(text|strategies|persona|layer)\}/);
      expect(prompt.endsWith(` ${layer}`)).toBe(true);
      expect(request.temperature).toBe(0.5);
    }
  });

  it('keeps applied_strategies within the strategies drawn, falling back to all of them when the model names none of them', async () => {
    const { distractor, fake } = semantic((request) => JSON.stringify({ noisy_text: `${askOf(request).text} ok?`, applied_strategies: ['made_up', 'also_made_up'] }));
    for (let i = 0; i < 30; i += 1) {
      const result = await lastValueFrom(distractor.result(TEXT, context(`k${i}`)));
      const ask = askOf(fake.requests.at(-1)!);
      expect(result.applied_strategies).toEqual(ask.strategies);
      expect(result.extracted_semantics).toBeNull();
      expect(noiseResultSchema.safeParse(result).success).toBe(true);
    }
  });

  it('retries a rejected answer, telling the model why, then gives layer error with the clean text', async () => {
    const { distractor, fake } = semantic((request) => askOf(request).text.toUpperCase(), {}, 2);
    const result = await lastValueFrom(distractor.result(TEXT, context()));
    expect(fake.requests).toHaveLength(3);
    const [first, second, third] = fake.requests;
    expect(first!.messages).toHaveLength(1);
    // The model sees its rejected answer, then why it was rejected.
    expect(second!.messages).toHaveLength(3);
    expect(second!.messages[0]).toEqual(first!.messages[0]);
    expect(second!.messages[1]).toMatchObject({ role: 'assistant' });
    expect(second!.messages[2]).toEqual({ role: 'user', content: expect.stringMatching(/rejected \(identical to the input\)/) as unknown });
    expect(third!.messages[2]!.content).toMatch(/identical to the input/);
    // A retry is asked at a slightly higher temperature.
    expect(second!.temperature).toBeCloseTo(0.6);
    expect(third!.temperature).toBeCloseTo(0.7);
    const ask = askOf(first!);
    expect(result).toEqual<NoiseResult>({
      original_text: TEXT,
      noisy_text: TEXT,
      layer: 'error',
      layer_index: 0,
      applied_strategies: [],
      extracted_semantics: null,
      metadata: { error: expect.stringMatching(/rejected 3 time\(s\), last: identical to the input/) as unknown, intended_layer: ask.layer, intended_strategies: ask.strategies },
    });
    expect(noiseResultSchema.safeParse(result).success).toBe(true);
  });

  it.each([0, 1, 4])('asks validationRetries + 1 times in all (validationRetries %i)', async (retries) => {
    const { distractor, fake } = semantic(() => "Here's the noisy version: hi", {}, retries);
    const result = await lastValueFrom(distractor.result(TEXT, context()));
    expect(fake.requests).toHaveLength(retries + 1);
    expect(result.layer).toBe('error');
    expect(result.metadata.error).toMatch(/explanation/);
  });

  it('accepts an answer after a rejection and records the rejected answers', async () => {
    const { distractor, fake } = semantic((request, call) => (call === 1 ? "I'm sorry, I can't do that." : validAnswer(request)));
    const result = await lastValueFrom(distractor.result(TEXT, context()));
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1]!.messages[1]).toMatchObject({ role: 'assistant' });
    expect(fake.requests[1]!.messages[2]!.content).toMatch(/a refusal/);
    expect(result).toMatchObject({ noisy_text: `${TEXT.toLowerCase()} pls`, metadata: { rejected_answers: 1 } });
    expect(result.layer_index).toBeGreaterThan(0);
  });

  it.each(['auth', 'unreachable', 'aborted'] as const)('lets a ModelError of kind %s end the run', async (kind) => {
    const { distractor } = semantic(() => {
      throw new ModelError(kind, `${kind} failure`);
    });
    await expect(lastValueFrom(distractor.result(TEXT, context()))).rejects.toMatchObject({ name: 'ModelError', kind });
    await expect(lastValueFrom(distractor.noise(TEXT, context()))).rejects.toBeInstanceOf(ModelError);
  });

  it.each(['server', 'rate_limit', 'timeout', 'malformed', 'bad_request'] as const)('leaves the text clean (layer error) after a ModelError of kind %s', async (kind) => {
    const { distractor, fake } = semantic(() => {
      throw new ModelError(kind, `sim: ${kind} failure`);
    });
    const result = await lastValueFrom(distractor.result(TEXT, context()));
    expect(fake.requests).toHaveLength(1);
    expect(result).toMatchObject({ original_text: TEXT, noisy_text: TEXT, layer: 'error', layer_index: 0, applied_strategies: [], extracted_semantics: null, metadata: { error: `sim: ${kind} failure` } });
    const noised = await lastValueFrom(distractor.noise(TEXT, context()));
    expect(noised).toMatchObject({ clean: TEXT, sent: TEXT, versions: [{ noisy_text: TEXT, noise_type: 'error', noise_intensity: 0 }] });
  });

  it('noise() sends the noisy text and records it as a version and as the full result', async () => {
    const { distractor } = semantic(validAnswer);
    const noised = await lastValueFrom(distractor.noise(TEXT, context()));
    expect(noised.clean).toBe(TEXT);
    expect(noised.sent).toBe(`${TEXT.toLowerCase()} pls`);
    expect(noised.semantic?.noisy_text).toBe(noised.sent);
    expect(noised.versions).toEqual([{ noisy_text: noised.sent, noise_type: noised.semantic?.layer, noise_intensity: noised.semantic?.layer_index, applied_strategies: noised.semantic?.applied_strategies }]);
  });

  it('refuses an activation probability outside [0, 1]', () => {
    for (const p of [-0.1, 1.5, Number.NaN]) expect(() => semantic(validAnswer, { activationProbability: p })).toThrow(TypeError);
  });
});

describe('activation probability', () => {
  const N = 2000;
  const texts = Array.from({ length: N }, (_, i) => ({ text: `please help me with task number ${i}`, key: `persona_${i}/q1` }));
  const ALL_RULES: RuleStrategyConfig[] = [
    { name: 'typo', probability: 1, intensity: 0.1 },
    { name: 'word_swap', probability: 1, num_swaps: 1 },
  ];

  async function noiseAll(distractor: ReturnType<typeof createDistractor>, seed: number): Promise<NoisedText[]> {
    return Promise.all(texts.map(({ text, key }) => lastValueFrom(distractor.noise(text, { persona: {}, rng: rngFor(seed, key, 'noise/initial'), call: callModel }))));
  }

  it.each([0, 0.3, 0.85, 1])('semantic: a share p = %f of the texts is noised', async (p) => {
    const { distractor, fake } = semantic(validAnswer, { activationProbability: p });
    const out = await noiseAll(distractor, 11);
    const noised = out.filter((o) => o.semantic?.layer !== 'skipped');
    expectBinomial(noised.length, N, p);
    // A skipped text is not sent to the model, and is recorded as PersonaGym records it.
    expect(fake.requests).toHaveLength(noised.length);
    for (const o of out.filter((o) => o.semantic?.layer === 'skipped')) {
      expect(o.sent).toBe(o.clean);
      expect(o.semantic).toEqual(skippedFor(o.clean));
    }
    for (const o of noised) expect(o.sent).not.toBe(o.clean);
  });

  it.each([0, 0.3, 0.85, 1])('legacy: a share p = %f of the texts is noised', async (p) => {
    const distractor = createDistractor({ activationProbability: p, rules: ALL_RULES, strategies: STRATEGY_FILE });
    const out = await noiseAll(distractor, 12);
    const noised = out.filter((o) => o.versions.length > 0);
    expectBinomial(noised.length, N, p);
    for (const o of noised) expect(o.versions.map((v) => v.noise_type)).toEqual(['typo', 'word_swap']);
    for (const o of out.filter((o) => o.versions.length === 0)) expect(o.sent).toBe(o.clean);
  });
});

function skippedFor(text: string): NoiseResult {
  return { ...(PERSONAGYM_SKIPPED as NoiseResult), original_text: text, noisy_text: text };
}

describe('legacy distractor', () => {
  const rules: RuleStrategyConfig[] = [
    { name: 'typo', probability: 0.5, intensity: 0.2 },
    { name: 'word_swap', probability: 0.4, num_swaps: 1 },
    { name: 'word_deletion', probability: 0.3, deletion_rate: 0.1 },
    { name: 'word_insertion', probability: 0.6, insertion_rate: 0.1 },
  ];
  const distractor = createDistractor({ activationProbability: 1, rules, strategies: STRATEGY_FILE });
  const noiseWith = (text: string, seed: number, key: string) => lastValueFrom(distractor.noise(text, { persona: {}, rng: rngFor(seed, key, 'noise/initial'), call: callModel }));

  /** Text that is sometimes long enough (12 words) for a second strategy. */
  const legacyText = fc.oneof(fc.string({ minLength: 1, maxLength: 80 }), fc.array(fc.constantFrom('please', 'help', 'me', 'write', 'a', 'short', 'note', 'to', 'the', 'team', 'about', 'Friday', 'and', 'Python'), { minLength: 1, maxLength: 20 }).map((words) => words.join(' ')));
  test.prop([legacyText, fc.integer(), fc.string({ maxLength: 10 })], { numRuns: 200 })(
    'records PersonaGym versions {noisy_text, noise_type, noise_intensity}, each different from the text, and sends one of them (or the clean text)',
    async (text, seed, key) => {
      const noised = await noiseWith(text, seed, key);
      expect(distractor.type).toBe('legacy');
      expect(noised.clean).toBe(text);
      expect(noised.semantic).toBeUndefined();
      // One version per rule that changed the text, in the configured order; then, for a long text, the one sent with two rules.
      const single = noised.versions.filter((v) => v.applied_strategies === undefined);
      const stacked = noised.versions.filter((v) => v.applied_strategies !== undefined);
      const names = single.map((v) => v.noise_type);
      expect(names).toEqual(rules.map((r) => r.name).filter((name) => names.includes(name)));
      for (const version of single) {
        expect(Object.keys(version).sort()).toEqual(['noise_intensity', 'noise_type', 'noisy_text']);
        expect(version.noise_intensity).toBe(rules.find((r) => r.name === version.noise_type)?.probability);
      }
      expect(stacked.length).toBeLessThanOrEqual(1);
      for (const version of stacked) {
        expect(text.match(/\S+/g)?.length ?? 0).toBeGreaterThanOrEqual(12);
        expect(version.applied_strategies).toHaveLength(2);
        expect(version.noise_type).toBe(version.applied_strategies?.join('+'));
        expect(version.noisy_text).toBe(noised.sent);
      }
      for (const version of noised.versions) {
        expect(version.noisy_text).not.toBe(text);
        expect(noisyVersionSchema.safeParse(version).success).toBe(true);
      }
      if (noised.versions.length === 0) expect(noised.sent).toBe(text);
      else expect(noised.versions.map((v) => v.noisy_text)).toContain(noised.sent);
      // Surface rules keep every detail and change nothing of the meaning.
      expect(noised.dropped).toEqual([]);
      expect(noised.means).toBe(text);
      // Deterministic per seed and key.
      expect(await noiseWith(text, seed, key)).toEqual(noised);
    },
  );

  it('gives different draws for different seeds', async () => {
    const text = 'could you please explain how the garbage collector in the java virtual machine decides what to free';
    const outs = await Promise.all(Array.from({ length: 20 }, (_, seed) => noiseWith(text, seed, 'k')));
    expect(new Set(outs.map((o) => JSON.stringify(o))).size).toBeGreaterThan(5);
  });

  it('result(): applies the fired rules, the heavier first, one for a short text and two for a long one, and names the highest layer', async () => {
    const ruleMode = createDistractor({ activationProbability: 0, rules: [{ name: 'typo', probability: 1 }, { name: 'missing_slots', probability: 1 }], strategies: STRATEGY_FILE });
    const long = 'Please summarise this quarterly sales report for my manager before the meeting on Friday';
    for (let v = 0; v < 10; v += 1) {
      const result = await lastValueFrom(ruleMode.result(long, { persona: {}, rng: rngFor(1, 'k', `noise/v${v}`), call: callModel }));
      expect(result).toMatchObject({ original_text: long, layer: 'incomplete_info', layer_index: 2, applied_strategies: ['missing_slots', 'typo'], extracted_semantics: null, metadata: { mode: 'rules' } });
      expect(noiseResultSchema.safeParse(result).success).toBe(true);
      // What the cut took is reported as dropped; the request without the slips is what the text now means.
      const { dropped, means } = result.metadata as { dropped: string[]; means: string };
      expect(dropped.length).toBeGreaterThan(0);
      expect(long.startsWith(means)).toBe(true);
      expect(`${means} ${dropped.join(' ')}`).toBe(long);
    }
    const short = 'Please summarise this report for my manager';
    for (let v = 0; v < 10; v += 1) {
      const result = await lastValueFrom(ruleMode.result(short, { persona: {}, rng: rngFor(1, 'k', `noise/v${v}`), call: callModel }));
      expect(result.applied_strategies).toHaveLength(1);
      expect(result.noisy_text).not.toBe(short);
    }
  });
});

describe('PersonaGym metadata shapes', () => {
  it('the schemas accept PersonaGym’s own examples', () => {
    expect(noiseResultSchema.parse(PERSONAGYM_RESULT)).toEqual(PERSONAGYM_RESULT);
    expect(noiseResultSchema.parse(PERSONAGYM_SKIPPED)).toEqual(PERSONAGYM_SKIPPED);
    const example = PERSONAGYM_RESULT as NoiseResult;
    expect(noisyVersionSchema.parse({ noisy_text: example.noisy_text, noise_type: example.layer, noise_intensity: example.layer_index, applied_strategies: example.applied_strategies })).toBeDefined();
    expect(noisyVersionSchema.parse({ noisy_text: 'helo', noise_type: 'typo', noise_intensity: 0.3 })).toBeDefined();
  });

  it('the schemas are not vacuous', () => {
    const example = PERSONAGYM_RESULT as Record<string, unknown>;
    expect(noiseResultSchema.safeParse({ ...example, layer_index: 3 }).success).toBe(false);
    expect(noiseResultSchema.safeParse({ ...example, extracted_semantics: { intent: 'x' } }).success).toBe(false);
    expect(noiseResultSchema.safeParse({ ...example, layer: 'loud' }).success).toBe(false);
    const { metadata: _metadata, ...withoutMetadata } = example;
    expect(noiseResultSchema.safeParse(withoutMetadata).success).toBe(false);
    expect(noiseResultSchema.safeParse({ ...example, extra: 1 }).success).toBe(false);
    expect(noisyVersionSchema.safeParse({ noisy_text: 'x', noise_type: 'typo' }).success).toBe(false);
  });

  it('our results and versions parse with the same schemas: valid, error, skipped and legacy', async () => {
    const { distractor } = semantic((request, call) => (call % 3 === 0 ? askOf(request).text : validAnswer(request)), { activationProbability: 0.5 }, 0);
    const legacy = createDistractor({ activationProbability: 0.7, rules: [{ name: 'typo', probability: 0.5 }, { name: 'word_swap', probability: 0.5, num_swaps: 1 }], strategies: STRATEGY_FILE });
    const layers = new Set<string>();
    for (let i = 0; i < 60; i += 1) {
      const noised = await lastValueFrom(distractor.noise(TEXT, context(`k${i}`, 'noise/initial')));
      const result = noiseResultSchema.parse(noised.semantic);
      layers.add(result.layer);
      for (const version of noised.versions) noisyVersionSchema.parse(version);
      noiseResultSchema.parse(await lastValueFrom(distractor.result(TEXT, context(`k${i}`))));
      const legacyNoised = await lastValueFrom(legacy.noise(TEXT, context(`k${i}`, 'noise/initial')));
      for (const version of legacyNoised.versions) noisyVersionSchema.parse(version);
      noiseResultSchema.parse(await lastValueFrom(legacy.result(TEXT, context(`k${i}`))));
    }
    // Every kind of result was produced and checked.
    expect(layers).toEqual(new Set(['skipped', 'error', 'surface_noise', 'incomplete_info', 'semantic_ambiguity']));
  });
});

describe('setUpDistractor and loadStrategyFile', () => {
  let dir: string;
  let config: Config;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'personaflow-distractor-'));
    config = (await loadConfig(undefined)).config;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const withDistractor = (overrides: Partial<Config['distractor']>): Config => ({ ...config, distractor: { ...config.distractor, ...overrides } });
  const sim = { model: createSimModel({ provider: 'sim', model: 'distractor-sim' }), temperature: 0.7, maxCompletionTokens: 256 };

  it('loads the bundled strategy file: every weighted layer has strategies', async () => {
    const file = await loadStrategyFile(DEFAULT_STRATEGY_FILE);
    expect(file.layer_weights).toEqual({ surface_noise: 0.5, incomplete_info: 0.3, semantic_ambiguity: 0.2 });
    for (const layer of LAYERS) {
      const table = file.strategies[layer] ?? {};
      expect(Object.keys(table).length).toBeGreaterThan(0);
      for (const strategy of Object.values(table)) {
        expect(strategy.probability).toBeGreaterThanOrEqual(0);
        expect(strategy.probability).toBeLessThanOrEqual(1);
        expect(strategy.description).toBeTruthy();
      }
    }
  });

  it('builds the legacy distractor by default and the semantic one when asked', async () => {
    const legacy = await setUpDistractor(config, dir);
    expect(legacy.type).toBe('legacy');
    expect(legacy.applyTo).toEqual({ initial_query: true, follow_up_feedback: true });
    const semanticOne = await setUpDistractor(config, dir, { semantic: true, model: sim });
    expect(semanticOne.type).toBe('semantic');
    await expect(setUpDistractor(config, dir, { semantic: true })).rejects.toThrow(TypeError);
  });

  it('names the file, the line and the YAML path of a bad value', async () => {
    const path = join(dir, 'bad-probability.yaml');
    await writeFile(path, ['layer_weights:', '  surface_noise: 1', 'strategies:', '  surface_noise:', '    typo_misspelling:', '      description: typos', '      probability: 1.5', ''].join('\n'));
    const error = await loadStrategyFile(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(`${path}:7: strategies.surface_noise.typo_misspelling.probability:`);
    expect((error as Error).message).toContain('1.5');
    // The same through setUpDistractor, with the file from --strategy or from distractor.strategy_path (next to the config).
    await expect(setUpDistractor(config, dir, { semantic: true, model: sim, strategyFile: path })).rejects.toThrow(`${path}:7: strategies.surface_noise.typo_misspelling.probability`);
    await expect(setUpDistractor(withDistractor({ use_semantic: true, strategy_path: 'bad-probability.yaml' }), dir, { model: sim })).rejects.toThrow(`${path}:7:`);
  });

  it('refuses a weighted layer without strategies, and weights that are all zero', async () => {
    const missing = join(dir, 'missing-layer.yaml');
    await writeFile(missing, ['layer_weights:', '  surface_noise: 0.6', '  incomplete_info: 0.4', 'strategies:', '  surface_noise:', '    typo_misspelling: { probability: 0.5 }', ''].join('\n'));
    await expect(loadStrategyFile(missing)).rejects.toThrow(ConfigError);
    await expect(loadStrategyFile(missing)).rejects.toThrow(`${missing}: strategies.incomplete_info: the layer has weight 0.4 but no strategies`);
    const empty = join(dir, 'empty-layer.yaml');
    await writeFile(empty, ['layer_weights: { surface_noise: 1 }', 'strategies:', '  surface_noise: {}', ''].join('\n'));
    await expect(loadStrategyFile(empty)).rejects.toThrow(/strategies\.surface_noise: the layer has weight 1 but no strategies/);
    const zero = join(dir, 'zero.yaml');
    await writeFile(zero, ['layer_weights: { surface_noise: 0, incomplete_info: 0 }', 'strategies:', '  surface_noise: { typo: {} }', ''].join('\n'));
    await expect(loadStrategyFile(zero)).rejects.toThrow(/layer_weights: at least one layer needs a weight above 0/);
    // A layer with weight 0 needs no strategies.
    const unweighted = join(dir, 'unweighted.yaml');
    await writeFile(unweighted, ['layer_weights: { surface_noise: 1, incomplete_info: 0 }', 'strategies:', '  surface_noise: { typo: {} }', ''].join('\n'));
    await expect(loadStrategyFile(unweighted)).resolves.toMatchObject({ strategies: { surface_noise: { typo: { probability: 0.5, mandatory: false } } } });
  });

  it('reports a missing strategy file and invalid YAML with the file name', async () => {
    const nowhere = join(dir, 'nowhere.yaml');
    await expect(loadStrategyFile(nowhere)).rejects.toThrow(`${nowhere}: cannot read distractor strategy file`);
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'layer_weights:\n  surface_noise: [1\n');
    await expect(loadStrategyFile(broken)).rejects.toThrow(new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+: invalid YAML`));
  });

  it('the sim model makes valid, non-error semantic results offline', async () => {
    const distractor = await setUpDistractor(config, dir, { semantic: true, model: sim });
    const texts = [
      'Could you draft a short story about a scientist curing an incurable disease, realistically?',
      'Book a table for 4 people at 7:30 tonight, somewhere quiet.',
      'How do I deduplicate a CSV file by email in Python?',
      'Explain recursion to a 10 year old.',
      'Plan a 3-day trip to Lisbon under 500 euros.',
    ];
    const layers = new Set<string>();
    for (const [i, text] of texts.entries()) {
      for (let v = 0; v < 4; v += 1) {
        const result = await lastValueFrom(distractor.result(text, { persona, rng: rngFor(42, `t${i}`, `noise/v${v}`), call: callModel }));
        expect(noiseResultSchema.parse(result)).toEqual(result);
        expect(LAYERS as readonly string[]).toContain(result.layer);
        expect(result.noisy_text).not.toBe(text);
        expect(result.extracted_semantics?.original_text).toBe(text);
        layers.add(result.layer);
      }
    }
    expect(layers.size).toBeGreaterThan(1);
  });
});
