// No rule strategy alters a protected token, for any input and seed: surface ones keep every occurrence,
// the heavier ones keep it or report it as dropped. And the persona's rate of slips.
import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { afterAll, describe, expect, it } from 'vitest';
import { wordNet } from '../../src/noise/lexicon.js';
import { SLIP_RANGE, noiseLevel, slipRate } from '../../src/noise/persona.js';
import { holds, occurrences, protectedTokens } from '../../src/noise/slots.js';
import { STRATEGIES, type StrategyParams } from '../../src/noise/strategies.js';
import { rngFor } from '../../src/rng.js';

const lexicon = wordNet();
afterAll(() => lexicon.close());

const QUERIES = (JSON.parse(readFileSync(new URL('../fixtures/noise/queries.json', import.meta.url), 'utf8')) as { queries: { text: string }[] }).queries.map((q) => q.text);
/** The heavier layers' strategies: they may drop a protected token, and must then report it. */
const HEAVY = new Set(['missing_slots', 'vague_slot_values', 'context_dependency', 'unclear_priority', 'multi_intent', 'intent_ambiguity', 'self_contradiction', 'mind_changing']);

/** Pieces of real requests: slots of every kind, words around them, punctuation, fillers, line breaks. */
const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...QUERIES.flatMap((q) => q.split(' '))) },
  { weight: 2, arbitrary: fc.constantFrom('"good morning"', "'see you soon'", '`x = 1`', '~/.config/app.yaml', '--dry-run', 'v2.1', '$5', '10,000', '7:30', '3rd', 'next Friday', 'tomorrow', 'Python', 'PostgreSQL', 'postgresql', 'Lisbon', 'iPhone 15', 'CSV', 'ana@example.com', "Anna's", 'node_modules', 'C++') },
  { weight: 2, arbitrary: fc.constantFrom('a', 'the', 'to', 'of', 'is', 'you', 'please', 'so', 'in', 'for', 'by', 'with', 'on', 'can', 'could', 'going', 'want', 'okay', 'because', 'database', 'log', 'I', 'am') },
  { weight: 1, arbitrary: fc.constantFrom(',', '.', '?', '!', ':', '...', '(', ')', "'", '"', '-') },
);
const gap = fc.constantFrom(' ', ' ', ' ', ' ', '  ', '\n', '\t');
const composed = fc.array(fc.tuple(piece, gap), { maxLength: 30 }).map((pairs) => pairs.map(([word, space], i) => (i + 1 < pairs.length ? `${word}${space}` : word)).join(''));
const texts = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...QUERIES) },
  { weight: 4, arbitrary: composed },
  { weight: 1, arbitrary: fc.constantFrom(...QUERIES).map((q) => q.toLowerCase()) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) },
);
const rate = fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined });
const params: fc.Arbitrary<StrategyParams> = fc.record({ intensity: rate, num_swaps: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }), deletion_rate: rate, insertion_rate: rate, replacement_rate: rate });

describe('every rule strategy', () => {
  for (const name of Object.keys(STRATEGIES)) {
    test.prop([texts, fc.integer(), params], { numRuns: 150 })(`${name} alters no protected token${HEAVY.has(name) ? ' it does not report as dropped' : ''}`, (text, seed, strategyParams) => {
      const keep = protectedTokens(text, lexicon);
      const out = (STRATEGIES[name] as NonNullable<(typeof STRATEGIES)[string]>)(text, { rng: rngFor(seed, 'protection', name), params: strategyParams, lexicon, keep });
      if (!HEAVY.has(name)) expect(out.dropped).toEqual([]);
      for (const token of keep) {
        const kept = occurrences(out.text, token).length >= occurrences(text, token).length;
        // Reported: a dropped detail holds the token, or each of its words that is gone ("Tuesday to Thursday" → "Tuesday", "Thursday").
        const gone = (token.match(/[\p{L}\p{N}]+/gu) ?? []).filter((word) => !holds(out.text, word, true));
        const reported = out.dropped.some((detail) => holds(detail, token, true)) || (gone.length > 0 && gone.every((word) => out.dropped.some((detail) => holds(detail, word, true))));
        expect(kept || (HEAVY.has(name) && reported), `${JSON.stringify(token)} altered: ${JSON.stringify(text)} → ${JSON.stringify(out.text)}, dropped ${JSON.stringify(out.dropped)}`).toBe(true);
      }
      // What is reported as dropped came from the input.
      for (const detail of out.dropped) expect(holds(text, detail, true), `${detail} not in ${JSON.stringify(text)}`).toBe(true);
    });
  }

  it('finds protected tokens without being told them (no `keep`)', () => {
    const text = 'How do I deduplicate a CSV file by email in Python?';
    for (const name of ['typo', 'word_swap', 'word_deletion', 'synonym_replacement', 'word_segmentation']) {
      for (let seed = 0; seed < 20; seed += 1) {
        const out = (STRATEGIES[name] as NonNullable<(typeof STRATEGIES)[string]>)(text, { rng: rngFor(seed, 'k', name), params: { intensity: 1, num_swaps: 5, deletion_rate: 0.5, replacement_rate: 1 }, lexicon });
        for (const token of ['CSV', 'email', 'Python']) expect(out.text, `${name}, seed ${seed}`).toContain(token);
      }
    }
  });

  it('the heavier ones say what they dropped: missing_slots a trailing detail, vague_slot_values a value', () => {
    const text = 'Book a table for 4 people at 7:30 tonight near Union Square.';
    const context = (seed: number) => ({ rng: rngFor(seed, 'k', 'heavy'), params: {}, lexicon, keep: protectedTokens(text, lexicon) });
    const cut = STRATEGIES.missing_slots!(text, context(1));
    expect(cut.dropped.length).toBeGreaterThan(0);
    expect(cut.text.endsWith('.')).toBe(true);
    expect(`${cut.text.slice(0, -1)} ${cut.dropped.join(' ')}.`).toBe(text);
    const vague = STRATEGIES.vague_slot_values!(text, context(1));
    expect(vague.dropped).toEqual(['tonight', '4']);
    expect(vague.text).not.toMatch(/\b4\b|tonight/);
    expect(vague.text).toContain('7:30');
  });
});

describe('slipRate', () => {
  it('gives a formal expert fewer slips than an average user, and a casual teenager more', () => {
    const formalExpert = slipRate({ communication_style: 'formal', tech_proficiency: 'expert', age_band: '45-54' });
    const average = slipRate({ role: 'engineer' });
    const casualTeen = slipRate({ communication_style: 'casual', age_band: 'u18' });
    expect(formalExpert).toBeLessThan(average);
    expect(average).toBe(1);
    expect(casualTeen).toBeGreaterThan(average);
    expect([formalExpert, casualTeen]).toEqual([0.35, 1.82]);
    expect(noiseLevel(formalExpert)).toMatch(/^very light/);
    expect(noiseLevel(casualTeen)).toMatch(/^casual/);
  });

  test.prop([fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.array(fc.string({ maxLength: 8 }))))])('stays within its range for any features', (persona) => {
    const value = slipRate(persona);
    expect(value).toBeGreaterThanOrEqual(SLIP_RANGE[0]);
    expect(value).toBeLessThanOrEqual(SLIP_RANGE[1]);
  });
});
