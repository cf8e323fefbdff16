// The rule distractor looks like people and keeps the facts: protected tokens, honest labels, persona rates,
// one or two strategies by length, a minority of turns by default, heavier layers on the first turn only.
import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { lastValueFrom } from 'rxjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { strategyFileSchema, type Config, type RuleStrategyConfig, type StrategyFile } from '../../src/config/schema.js';
import { createDistractor, type NoiseResult, type NoisedText } from '../../src/distractor/distractor.js';
import { DEFAULT_RULES, DEFAULT_STRATEGY_FILE, loadStrategyFile, setUpDistractor } from '../../src/distractor/setup.js';
import { callModel } from '../../src/models/call.js';
import { holds, occurrences, protectedTokens } from '../../src/noise/slots.js';
import { rngFor } from '../../src/rng.js';

const QUERIES = (JSON.parse(readFileSync(new URL('../fixtures/noise/queries.json', import.meta.url), 'utf8')) as { queries: { text: string; slots: string[] }[] }).queries;
const CASUAL_TEEN = { communication_style: 'casual', age_band: 'u18' };
const FORMAL_EXPERT = { communication_style: 'formal', tech_proficiency: 'expert' };
const personas = fc.constantFrom({}, CASUAL_TEEN, FORMAL_EXPERT, { communication_style: 'concise', tech_proficiency: 'beginner' });

let bundled: StrategyFile;
let config: Config;
beforeAll(async () => {
  bundled = await loadStrategyFile(DEFAULT_STRATEGY_FILE);
  config = (await loadConfig(undefined)).config;
});

/** Every surface rule the schema knows, each likely to fire. */
const SURFACE: RuleStrategyConfig[] = ['typo', 'word_swap', 'word_deletion', 'word_insertion', 'synonym_replacement', 'colloquial_speech', 'punctuation_format', 'word_segmentation', 'incomplete_sentence', 'emotional_attitude', 'negative_expression', 'real_life_fragments'].map((name) => ({ name, probability: 0.6, intensity: 0.3, num_swaps: 2, deletion_rate: 0.2, insertion_rate: 0.2, replacement_rate: 0.3 }) as RuleStrategyConfig);
const HEAVY: RuleStrategyConfig[] = ['missing_slots', 'vague_slot_values', 'multi_intent', 'mind_changing'].map((name) => ({ name, probability: 0.5 }) as RuleStrategyConfig);

const context = (seed: number, key: string, purpose: string, persona = {}, initial?: boolean) => ({ persona, rng: rngFor(seed, key, purpose), call: callModel, ...(initial === undefined ? {} : { initial }) });
const texts = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...QUERIES.map((q) => q.text)) }, { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) });

describe('rule distractor: facts', () => {
  test.prop([texts, fc.integer(), personas], { numRuns: 120 })('noise() and result() with surface rules keep every protected token and drop nothing', async (text, seed, persona) => {
    const distractor = createDistractor({ activationProbability: 1, rules: SURFACE, strategies: bundled });
    const keep = protectedTokens(text);
    const noised = await lastValueFrom(distractor.noise(text, context(seed, 'k', 'noise/initial', persona)));
    const result = await lastValueFrom(distractor.result(text, context(seed, 'k', 'noise/v0', persona)));
    for (const out of [noised.sent, ...noised.versions.map((v) => v.noisy_text), result.noisy_text]) {
      for (const token of keep) expect(occurrences(out, token).length, `${token}: ${JSON.stringify(text)} → ${JSON.stringify(out)}`).toBeGreaterThanOrEqual(occurrences(text, token).length);
    }
    expect(noised.dropped).toEqual([]);
    expect(noised.means).toBe(text);
    expect(result.metadata).toEqual({ mode: 'rules' });
  });

  test.prop([fc.constantFrom(...QUERIES.map((q) => q.text)), fc.integer()], { numRuns: 80, examples: [['Create a weekly workout plan for a beginner with 30 minutes a day.', 825668283]] })('with heavier rules on a first message, what is lost is in `dropped`, and `means` is the request without the slips', async (text, seed) => {
    const distractor = createDistractor({ activationProbability: 1, rules: [...HEAVY, ...SURFACE.slice(0, 2)], strategies: bundled });
    const keep = protectedTokens(text);
    for (const noised of [await lastValueFrom(distractor.noise(text, context(seed, 'k', 'noise/initial')))]) {
      for (const token of keep.filter((t) => !holds(noised.sent, t))) {
        const words = token.match(/[\p{L}\p{N}]+/gu) ?? [];
        expect(noised.dropped.some((d) => holds(d, token, true)) || words.filter((w) => !holds(noised.sent, w, true)).every((w) => noised.dropped.some((d) => holds(d, w, true))), `${token} lost from ${JSON.stringify(noised.sent)}`).toBe(true);
      }
      for (const detail of noised.dropped) expect(holds(noised.means, detail, true)).toBe(false);
    }
  });

  it('measured on the labelled queries (4 versions each, as bench/noise-slots.js): no version alters a labelled slot', async () => {
    const distractors = {
      default: await setUpDistractor(config, '.'),
      typoAndSwap: createDistractor({ activationProbability: 1, rules: [{ name: 'typo', probability: 1, intensity: 0.1 }, { name: 'word_swap', probability: 1, num_swaps: 1 }], strategies: bundled }),
    };
    for (const [name, distractor] of Object.entries(distractors)) {
      const altered: string[] = [];
      for (const [q, { text, slots }] of QUERIES.entries()) {
        for (let v = 0; v < 4; v += 1) {
          const result = await lastValueFrom(distractor.result(text, context(42, `q${q}`, `noise/v${v}`, v % 2 === 0 ? CASUAL_TEEN : FORMAL_EXPERT)));
          if (slots.some((slot) => !result.noisy_text.includes(slot))) altered.push(result.noisy_text);
        }
      }
      expect(altered, `${name}: ${JSON.stringify(altered)}`).toEqual([]);
    }
  });
});

describe('rule distractor: honest labels', () => {
  /** Rules that often find nothing to change: a swap needs two plain words, a deletion a skippable one. */
  const picky: RuleStrategyConfig[] = [
    { name: 'word_swap', probability: 0.7, num_swaps: 1 },
    { name: 'word_deletion', probability: 0.7, deletion_rate: 0.1 },
    { name: 'word_segmentation', probability: 0.5 },
  ];
  const hard = fc.oneof(fc.constantFrom('ok', 'Python', '42', 'CSV?', '"hello world"', 'help', 'yes please', 'Summarise quarterly figures'), texts);

  test.prop([hard, fc.integer()], { numRuns: 200 })('result() labels a strategy only when the text changed, and an unchanged text with none', async (text, seed) => {
    const distractor = createDistractor({ activationProbability: 1, rules: picky, strategies: bundled });
    const result: NoiseResult = await lastValueFrom(distractor.result(text, context(seed, 'k', 'noise/v0')));
    if (result.noisy_text === text) expect(result).toMatchObject({ layer: 'none', layer_index: 0, applied_strategies: [] });
    else expect(result.applied_strategies.length).toBeGreaterThan(0);
  });

  test.prop([hard, fc.integer()], { numRuns: 200 })('noise() makes no version equal to its text', async (text, seed) => {
    const distractor = createDistractor({ activationProbability: 1, rules: picky, strategies: bundled });
    const noised: NoisedText = await lastValueFrom(distractor.noise(text, context(seed, 'k', 'noise/initial')));
    for (const version of noised.versions) expect(version.noisy_text).not.toBe(text);
    if (noised.versions.length === 0) expect(noised.sent).toBe(text);
  });

  it('result() tries another rule when the ones drawn found nothing to change', async () => {
    // word_swap cannot change "Summarise quarterly figures" (the first word starts the sentence; the others are protected); a typo can.
    const distractor = createDistractor({ activationProbability: 1, rules: [{ name: 'word_swap', probability: 1 }, { name: 'punctuation_format', probability: 0 }], strategies: bundled });
    for (let v = 0; v < 20; v += 1) {
      const result = await lastValueFrom(distractor.result('Summarise it quickly.', context(1, 'k', `noise/v${v}`)));
      expect(result.noisy_text).not.toBe('Summarise it quickly.');
      expect(result.applied_strategies).toEqual([expect.stringMatching(/word_swap|punctuation_format/) as unknown]);
    }
  });
});

describe('rule distractor: like people', () => {
  const N = 400;
  const versionsOver = async (persona: object, rules: readonly RuleStrategyConfig[]) => {
    const distractor = createDistractor({ activationProbability: 1, rules, strategies: bundled });
    let noised = 0;
    for (let i = 0; i < N; i += 1) {
      const { text } = QUERIES[i % QUERIES.length]!;
      const out = await lastValueFrom(distractor.noise(text, context(7, `t${i}`, 'noise/initial', persona)));
      if (out.sent !== text) noised += 1;
    }
    return noised;
  };

  it('a formal expert slips less often than an average user, and a casual teenager more often', async () => {
    const [expert, average, teen] = [await versionsOver(FORMAL_EXPERT, DEFAULT_RULES), await versionsOver({}, DEFAULT_RULES), await versionsOver(CASUAL_TEEN, DEFAULT_RULES)];
    // P(some rule fires) with the default rules: 1 − Π(1 − p·rate): rate 0.35 → 0.23, 1 → 0.55, 1.82 → 0.84.
    expect(expert).toBeLessThan(average);
    expect(average).toBeLessThan(teen);
    expect(expert / N).toBeLessThan(0.35);
    expect(teen / N).toBeGreaterThan(0.7);
  });

  it('makes fewer typos per text for a formal expert than for a casual teenager', async () => {
    const typos = async (persona: object) => {
      const distractor = createDistractor({ activationProbability: 1, rules: [{ name: 'typo', probability: 1, intensity: 0.3 }], strategies: bundled });
      let changed = 0;
      for (let i = 0; i < 100; i += 1) {
        const text = 'could you please explain how the garbage collector decides which objects to free and when it runs';
        const out = await lastValueFrom(distractor.noise(text, context(3, `t${i}`, 'noise/initial', persona)));
        changed += out.sent.split(' ').filter((word, j) => word !== text.split(' ')[j]).length;
      }
      return changed;
    };
    expect(await typos(FORMAL_EXPERT)).toBeLessThan(await typos(CASUAL_TEEN));
  });

  it('sends one strategy on a short text, and at most two on a long one', async () => {
    const distractor = createDistractor({ activationProbability: 1, rules: SURFACE.map((rule) => ({ ...rule, probability: 1 })), strategies: bundled });
    let stacked = 0;
    for (let i = 0; i < 60; i += 1) {
      const short = await lastValueFrom(distractor.noise('ok but what about csv', context(5, `s${i}`, 'noise/initial')));
      expect(short.versions.every((v) => v.applied_strategies === undefined)).toBe(true);
      const long = await lastValueFrom(distractor.noise('Could you please help me write a Python script that deduplicates 10,000 rows in a CSV file by email address?', context(5, `l${i}`, 'noise/initial')));
      const sent = long.versions.find((v) => v.noisy_text === long.sent);
      expect((sent?.applied_strategies ?? [sent?.noise_type]).length).toBeLessThanOrEqual(2);
      if (sent?.applied_strategies?.length === 2) stacked += 1;
    }
    expect(stacked).toBeGreaterThan(30);
  });

  it('by default (config/default.yaml) noises a minority of turns', async () => {
    const distractor = await setUpDistractor(config, '.');
    let noised = 0;
    const n = 1000;
    for (let i = 0; i < n; i += 1) {
      const { text } = QUERIES[i % QUERIES.length]!;
      const out = await lastValueFrom(distractor.noise(text, context(11, `t${i}`, 'noise/initial', {})));
      if (out.sent !== text) noised += 1;
    }
    // activation 0.3 × P(one of PersonaGym's four rules fires) ≈ 0.3 × 0.55 ≈ 0.16.
    expect(config.distractor.activation_probability).toBe(0.3);
    expect(noised / n).toBeGreaterThan(0.08);
    expect(noised / n).toBeLessThan(0.3);
  });

  it('uses the heavier rules on the first message only, unless heavy_layers is every_turn', async () => {
    const text = 'Book a table for 4 people at 7:30 tonight near Union Square.';
    const rules: RuleStrategyConfig[] = [{ name: 'vague_slot_values', probability: 1 }, { name: 'multi_intent', probability: 1 }];
    const firstOnly = createDistractor({ activationProbability: 1, rules, strategies: bundled });
    const everyTurn = createDistractor({ activationProbability: 1, rules, strategies: bundled, heavyLayers: 'every_turn' });
    for (let i = 0; i < 20; i += 1) {
      expect((await lastValueFrom(firstOnly.noise(text, context(1, `k${i}`, 'noise/initial', {}, true)))).sent).not.toBe(text);
      expect(await lastValueFrom(firstOnly.noise(text, context(1, `k${i}`, 'noise/turn/1', {}, false)))).toMatchObject({ sent: text, versions: [], dropped: [], means: text });
      const later = await lastValueFrom(everyTurn.noise(text, context(1, `k${i}`, 'noise/turn/1', {}, false)));
      expect(later.sent).not.toBe(text);
      expect(later.means).not.toBe(text);
    }
  });
});

describe('strategy file', () => {
  it('decides which rules are heavier: a rule the file does not place counts as surface noise, as PersonaGym\'s legacy names do', async () => {
    const text = 'Book a table for 4 people at 7:30 tonight near Union Square.';
    const unplaced: StrategyFile = strategyFileSchema.parse({ layer_weights: { surface_noise: 1 }, strategies: { surface_noise: { typo: {} } } });
    const rules: RuleStrategyConfig[] = [{ name: 'missing_slots', probability: 1 }];
    const followUp = async (strategies: StrategyFile) => lastValueFrom(createDistractor({ activationProbability: 1, rules, strategies }).noise(text, context(1, 'k', 'noise/turn/1', {}, false)));
    // Placed in incomplete_info by the bundled file: not on a follow-up.
    expect((await followUp(bundled)).sent).toBe(text);
    // Not placed by this file: surface noise, so allowed on a follow-up.
    expect((await followUp(unplaced)).sent).not.toBe(text);
  });
});
