import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { SPLITS } from '../../src/export/samples.js';
import { checkRatios, parseSplit, personaPoint, splitOf, type SplitRatios } from '../../src/export/split.js';

/** Ratios that add up to 1: three non-negative weights, normalised. */
const ratios: fc.Arbitrary<SplitRatios> = fc
  .tuple(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }))
  .filter(([a, b, c]) => a + b + c > 0)
  .map(([a, b, c]) => {
    const sum = a + b + c;
    return { train: a / sum, validation: b / sum, test: 1 - a / sum - b / sum < 0 ? 0 : 1 - a / sum - b / sum };
  });

describe('parseSplit', () => {
  it('reads three ratios, or none', () => {
    expect(parseSplit('0.8,0.1,0.1')).toEqual({ train: 0.8, validation: 0.1, test: 0.1 });
    expect(parseSplit(' 0.7 , 0.3 , 0 ')).toEqual({ train: 0.7, validation: 0.3, test: 0 });
    expect(parseSplit('none')).toBeUndefined();
  });

  it('says what is wrong with the value', () => {
    expect(() => parseSplit('0.8,0.2')).toThrowErrorMatchingInlineSnapshot(`[TypeError: expected three ratios train,validation,test that add up to 1 (e.g. 0.8,0.1,0.1), or none; got \`0.8,0.2\`]`);
    expect(() => parseSplit('0.8,0.1,0.2')).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected the --split ratios to add up to 1, got 0.8 + 0.1 + 0.2 = 1.1]`);
    expect(() => parseSplit('80,10,10')).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`--split.train\` to be a number in [0, 1], got \`80\` (number)]`);
    expect(() => parseSplit('a,b,c')).toThrow(/expected three ratios/);
    expect(() => checkRatios({ train: -0.1, validation: 0.6, test: 0.5 })).toThrow(/split.train/);
  });
});

describe('splitOf', () => {
  test.prop([fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.string(), ratios])('is a function of (seed, persona): the same answer every time, and one of the splits that take something', (seed, persona, r) => {
    const split = splitOf(seed, persona, r);
    expect(splitOf(seed, persona, r)).toBe(split);
    expect(SPLITS).toContain(split);
    expect(r[split]).toBeGreaterThan(0);
  });

  test.prop([fc.integer({ min: 0, max: 1000 }), fc.string()])('a point in [0, 1)', (seed, persona) => {
    const point = personaPoint(seed, persona);
    expect(point).toBeGreaterThanOrEqual(0);
    expect(point).toBeLessThan(1);
  });

  test.prop([fc.integer({ min: 0, max: 2 ** 31 - 1 }), ratios], { numRuns: 30 })('shares stay within 5 standard deviations of the ratios over 4000 personas', (seed, r) => {
    const n = 4000;
    const counts = { train: 0, validation: 0, test: 0 };
    for (let i = 0; i < n; i += 1) counts[splitOf(seed, `persona_${i}`, r)] += 1;
    for (const name of SPLITS) {
      const sd = Math.sqrt(n * r[name] * (1 - r[name]));
      expect(Math.abs(counts[name] - n * r[name])).toBeLessThanOrEqual(5 * sd + 1);
    }
  });

  it('another seed gives another assignment', () => {
    const r = { train: 0.5, validation: 0.25, test: 0.25 };
    const personas = Array.from({ length: 200 }, (_, i) => `persona_${i}`);
    const a = personas.map((p) => splitOf(1, p, r));
    const b = personas.map((p) => splitOf(2, p, r));
    expect(a).not.toEqual(b);
    expect(personas.map((p) => splitOf(1, p, r))).toEqual(a);
  });
});
