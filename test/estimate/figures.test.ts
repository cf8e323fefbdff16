// The estimate's arithmetic: renderings mixed by the pool's weights, carried over to the whole input, priced as ordered ranges.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { extrapolate, figuresOf, mix, usdOf, type Price, type Tally } from '../../src/estimate/figures.js';

const count = fc.integer({ min: 0, max: 1_000_000 });
const tally = fc.record({ calls: fc.integer({ min: 0, max: 1000 }), input: count, output: count });
const MODELS = ['openai/a', 'openai/b', 'openrouter/c'];
const tallies = fc.dictionary(fc.constantFrom(...MODELS), tally).map((record) => new Map(Object.entries(record)));
const price = fc.record({ input: fc.double({ min: 0, max: 100, noNaN: true }), output: fc.double({ min: 0, max: 100, noNaN: true }) });
const prices = fc.dictionary(fc.constantFrom(...MODELS), price);
const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

describe('mix', () => {
  it('weights each rendering by its share of the pool', () => {
    const a = new Map([['openai/a', { calls: 4, input: 100, output: 10 }], ['openai/user', { calls: 4, input: 400, output: 40 }]]);
    const b = new Map([['openai/b', { calls: 8, input: 300, output: 30 }], ['openai/user', { calls: 6, input: 600, output: 60 }]]);
    expect(mix([{ weight: 3, tallies: a }, { weight: 1, tallies: b }])).toEqual(
      new Map([
        ['openai/a', { calls: 3, input: 75, output: 7.5 }],
        ['openai/user', { calls: 4.5, input: 450, output: 45 }],
        ['openai/b', { calls: 2, input: 75, output: 7.5 }],
      ]),
    );
  });

  it('refuses weights that are negative, not finite, or all zero', () => {
    expect(() => mix([{ weight: -1, tallies: new Map() }])).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected each weight to be a finite number ≥ 0, got \`-1\`]`);
    expect(() => mix([{ weight: Number.NaN, tallies: new Map() }])).toThrow(/finite number/);
    expect(() => mix([{ weight: 0, tallies: new Map() }])).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected at least one rendering with a positive weight]`);
  });

  test.prop([fc.array(fc.record({ weight: fc.double({ min: 0.01, max: 10, noNaN: true }), tallies }), { minLength: 1, maxLength: 4 })])('each figure lies between the renderings\' smallest and largest', (renderings) => {
    const mixed = mix(renderings);
    for (const model of MODELS) {
      for (const field of ['calls', 'input', 'output'] as const) {
        const values = renderings.map(({ tallies: t }) => t.get(model)?.[field] ?? 0);
        const value = mixed.get(model)?.[field] ?? 0;
        expect(value).toBeGreaterThanOrEqual(Math.min(...values) - 1e-6);
        expect(value).toBeLessThanOrEqual(Math.max(...values) + 1e-6);
      }
    }
  });

  test.prop([tallies, fc.integer({ min: 1, max: 5 }), fc.double({ min: 0.01, max: 10, noNaN: true })])('renderings that agree mix to themselves, whatever the weights', (same, n, weight) => {
    const mixed = mix(Array.from({ length: n }, (_, i) => ({ weight: weight * (i + 1), tallies: same })));
    for (const [model, t] of same) for (const field of ['calls', 'input', 'output'] as const) expect(close(mixed.get(model)![field], t[field])).toBe(true);
  });
});

describe('extrapolate', () => {
  it('carries the sample over to the whole input', () => {
    expect(extrapolate(new Map([['openai/a', { calls: 2, input: 50, output: 4 }]]), 10, 25)).toEqual(new Map([['openai/a', { calls: 5, input: 125, output: 10 }]]));
  });

  it('is zero with nothing sampled, and refuses a sample larger than the input', () => {
    expect(extrapolate(new Map([['openai/a', { calls: 2, input: 50, output: 4 }]]), 0, 0)).toEqual(new Map([['openai/a', { calls: 0, input: 0, output: 0 }]]));
    expect(() => extrapolate(new Map(), 5, 4)).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`total\` to be an integer ≥ sampled (5), got \`4\`]`);
    expect(() => extrapolate(new Map(), -1, 4)).toThrow(/non-negative integer/);
  });

  test.prop([tallies, fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })])('grows with the input: more tasks never cost less', (t, sampled, more, extra) => {
    const smaller = extrapolate(t, sampled, sampled + more);
    const larger = extrapolate(t, sampled, sampled + more + extra);
    for (const [model, small] of smaller) {
      const large = larger.get(model)!;
      expect(large.calls).toBeGreaterThanOrEqual(small.calls);
      expect(large.input).toBeGreaterThanOrEqual(small.input);
      expect(large.output).toBeGreaterThanOrEqual(small.output);
    }
  });

  test.prop([tallies, fc.integer({ min: 1, max: 100 })])('a sample that is the whole input is carried over as it is', (t, n) => {
    expect(extrapolate(t, n, n)).toEqual(t);
  });
});

describe('figuresOf', () => {
  it('prices each model, totals the priced ones and names the others', () => {
    const low = new Map([['openai/a', { calls: 2, input: 1e6, output: 0 }], ['openrouter/c', { calls: 1, input: 10, output: 10 }]]);
    const high = new Map([['openai/a', { calls: 4, input: 3e6, output: 1e6 }], ['openrouter/c', { calls: 2, input: 20, output: 20 }]]);
    const figures = figuresOf(low, high, (model) => (model === 'openai/a' ? { input: 1, output: 2 } : undefined));
    expect(figures).toEqual({
      models: [
        { model: 'openai/a', calls: { low: 2, high: 4 }, input: { low: 1e6, high: 3e6 }, output: { low: 0, high: 1e6 }, usd: { low: 1, high: 5 } },
        { model: 'openrouter/c', calls: { low: 1, high: 2 }, input: { low: 10, high: 20 }, output: { low: 10, high: 20 }, usd: undefined },
      ],
      usd: { low: 1, high: 5 },
      unpriced: ['openrouter/c'],
    });
  });

  test.prop([tallies, tallies, prices])('every range is ordered (low ≤ high), whichever rendering came out larger', (low, high, table) => {
    const figures = figuresOf(low, high, (model) => table[model]);
    for (const m of figures.models) {
      for (const range of [m.calls, m.input, m.output, ...(m.usd === undefined ? [] : [m.usd])]) expect(range.low).toBeLessThanOrEqual(range.high);
    }
    expect(figures.usd.low).toBeLessThanOrEqual(figures.usd.high);
  });

  test.prop([tallies, tallies, prices])('the total is the sum of the priced models, and the unpriced ones are named', (low, high, table) => {
    const figures = figuresOf(low, high, (model) => table[model]);
    const priced = figures.models.filter((m) => m.usd !== undefined);
    expect(close(figures.usd.low, priced.reduce((sum, m) => sum + m.usd!.low, 0))).toBe(true);
    expect(close(figures.usd.high, priced.reduce((sum, m) => sum + m.usd!.high, 0))).toBe(true);
    expect(figures.unpriced).toEqual(figures.models.filter((m) => m.usd === undefined).map((m) => m.model));
  });

  test.prop([tally, tally, price])('a model\'s range holds what each end costs', (a, b, p: Price) => {
    const figures = figuresOf(new Map([['openai/a', a]]), new Map([['openai/a', b]]), () => p);
    const usd = figures.models[0]!.usd!;
    expect(usd.low).toBe(Math.min(usdOf(a, p), usdOf(b, p)));
    expect(usd.high).toBe(Math.max(usdOf(a, p), usdOf(b, p)));
  });

  test.prop([tally, tally, price])('more tokens never cost less', (a, extra: Tally, p) => {
    const more = { calls: a.calls + extra.calls, input: a.input + extra.input, output: a.output + extra.output };
    expect(usdOf(more, p)).toBeGreaterThanOrEqual(usdOf(a, p));
  });
});
