// FacetStore: filters over typed arrays agree with a plain filter over the same interactions.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { NOT_RECORDED, type Filter } from '../../src/view/api.js';
import { Dictionary, FacetStore, MAX_FEATURE_VALUES, OTHER_VALUES } from '../../src/view/facets.js';
import type { Facets } from '../../src/view/interaction.js';

const name = fc.constantFrom('a', 'b', 'constructor', '__proto__', 'toString');
const facets: fc.Arbitrary<Facets & { rejections: string[] }> = fc.record({
  id: fc.string(),
  persona: fc.constantFrom('p_1', 'p_2', 'P_10', 'nurse_7'),
  queryId: fc.constant('q'),
  features: fc.uniqueArray(fc.tuple(fc.constantFrom('role', 'style', '__proto__'), name), { selector: ([k]) => k, maxLength: 3 }),
  model: fc.constantFrom('sim/m1', 'sim/m2'),
  endReason: fc.option(fc.constantFrom('user_stop', 'max_turns', '__proto__'), { nil: null }),
  guard: fc.uniqueArray(fc.tuple(name, fc.integer({ min: 1, max: 3 })), { selector: ([k]) => k, maxLength: 2 }),
  noised: fc.boolean(),
  noise: fc.constant([]),
  noisedTurns: fc.constant(0),
  round: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
  verdict: fc.option(fc.constantFrom('pass', 'fail'), { nil: null }),
  scores: fc.uniqueArray(fc.tuple(fc.constantFrom('helpful', 'persona'), fc.double({ min: 0, max: 5, noNaN: true })), { selector: ([k]) => k, maxLength: 2 }),
  turns: fc.integer({ min: 1, max: 5 }),
  userWords: fc.constant([]),
  rejections: fc.uniqueArray(fc.constantFrom('echo', 'assistant_voice'), { maxLength: 2 }),
});

const filterFields = {
  persona: fc.constantFrom('p_1', 'p', 'NURSE', 'zzz'),
  features: fc.dictionary(fc.constantFrom('role', 'style'), name, { minKeys: 1, maxKeys: 2 }),
  model: fc.constantFrom('sim/m1', 'sim/m3'),
  endReason: fc.constantFrom('user_stop', NOT_RECORDED, '__proto__'),
  reason: fc.constantFrom('a', 'echo', 'constructor'),
  noised: fc.constantFrom('yes' as const, 'no' as const),
  round: fc.constantFrom('main', '1', '2', 'x'),
  verdict: fc.constantFrom('pass', NOT_RECORDED),
  score: fc.constantFrom('helpful', 'persona', 'none'),
  scoreMin: fc.double({ min: 0, max: 5, noNaN: true }),
  scoreMax: fc.double({ min: 0, max: 5, noNaN: true }),
};
/** Zero to three conditions, so that a good share of filters match something. */
const filter: fc.Arbitrary<Filter> = fc
  .subarray(Object.keys(filterFields) as (keyof typeof filterFields)[], { maxLength: 3 })
  .chain((keys) => fc.record(Object.fromEntries(keys.map((key) => [key, filterFields[key]])) as { [K in keyof typeof filterFields]: (typeof filterFields)[K] }) as fc.Arbitrary<Filter>);

/** The oracle: the filter's meaning, over plain objects. */
function oracle(f: Facets & { rejections: string[] }, filter: Filter): boolean {
  if (filter.persona !== undefined && !f.persona.toLowerCase().includes(filter.persona.toLowerCase())) return false;
  for (const [k, v] of Object.entries(filter.features ?? {})) if (!f.features.some(([fk, fv]) => fk === k && fv === v)) return false;
  if (filter.model !== undefined && f.model !== filter.model) return false;
  if (filter.endReason !== undefined && (f.endReason ?? NOT_RECORDED) !== filter.endReason) return false;
  if (filter.reason !== undefined && !f.guard.some(([r]) => r === filter.reason) && !f.rejections.includes(filter.reason)) return false;
  if (filter.noised !== undefined && f.noised !== (filter.noised === 'yes')) return false;
  if (filter.round !== undefined && (f.round === null ? 'main' : String(f.round)) !== filter.round) return false;
  if (filter.verdict !== undefined && (f.verdict ?? NOT_RECORDED) !== filter.verdict) return false;
  if (filter.score !== undefined) {
    const score = f.scores.find(([n]) => n === filter.score)?.[1];
    if (score === undefined) return false;
    const s = Math.fround(score);
    if (s < Math.fround(filter.scoreMin ?? -Infinity) || s > Math.fround(filter.scoreMax ?? Infinity)) return false;
  }
  return true;
}

describe('FacetStore', () => {
  test.prop([fc.array(facets, { maxLength: 3000 }), filter, fc.nat({ max: 40 })])('select gives the matches the plain filter gives, in order, a page at a time', (items, f, page) => {
    const store = new FacetStore();
    items.forEach((item, i) => store.add(item, i * 100, 100, item.rejections));
    const expected = items.map((item, i) => (oracle(item, f) ? i : -1)).filter((i) => i >= 0);
    const { positions, matches } = store.select(f, page * 10, 10);
    expect(matches).toBe(expected.length);
    expect(positions).toEqual(expected.slice(page * 10, page * 10 + 10));
    expect(positions.map((i) => store.at[i])).toEqual(positions.map((i) => i * 100));
  });

  it('an empty filter is empty, a filter with any field is not', () => {
    expect(FacetStore.isEmpty({})).toBe(true);
    expect(FacetStore.isEmpty({ persona: undefined, features: {} })).toBe(true);
    expect(FacetStore.isEmpty({ model: 'x' })).toBe(false);
  });
});

describe('Dictionary', () => {
  it('gives values past its limit one shared code', () => {
    const dictionary = new Dictionary(MAX_FEATURE_VALUES);
    for (let i = 0; i < MAX_FEATURE_VALUES; i += 1) expect(dictionary.code(`v${i}`)).toBe(i + 1);
    const other = dictionary.code('new one');
    expect(dictionary.code('another new one')).toBe(other);
    expect(dictionary.value(other)).toBe(OTHER_VALUES);
    expect(dictionary.code('v3')).toBe(4);
    expect(dictionary.size).toBe(MAX_FEATURE_VALUES + 1);
  });

  it('treats __proto__ and constructor as ordinary values', () => {
    const dictionary = new Dictionary();
    expect(dictionary.find('constructor')).toBeUndefined();
    expect(dictionary.code('__proto__')).toBe(1);
    expect(dictionary.find('__proto__')).toBe(1);
  });
});
