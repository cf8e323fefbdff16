import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { DistinctCounter, STANDARD_ERROR, wordsOf } from '../../src/export/distinct.js';

describe('wordsOf', () => {
  it('lower-cases and keeps letters, digits and apostrophes', () => {
    expect(wordsOf("Don't panic, it's 42 — Ça va?")).toEqual(["don't", 'panic', "it's", '42', 'ça', 'va']);
    expect(wordsOf('...')).toEqual([]);
  });
});

describe('DistinctCounter', () => {
  it('is empty at first', () => {
    const counter = new DistinctCounter();
    expect([counter.unique, counter.total, counter.estimated]).toEqual([0, 0, false]);
  });

  test.prop([fc.array(fc.string({ maxLength: 6 }), { maxLength: 300 })])('counts exactly below the cap: unique and total as a Set sees them', (values) => {
    const counter = new DistinctCounter();
    for (const value of values) counter.add(value);
    expect(counter.unique).toBe(new Set(values).size);
    expect(counter.total).toBe(values.length);
    expect(counter.estimated).toBe(false);
  });

  it('past the cap, says it estimates, and the HyperLogLog is within 3 standard errors (deterministic: the hash is fixed)', () => {
    const counter = new DistinctCounter(1000);
    for (let i = 0; i < 5000; i += 1) counter.add(`w${i}`);
    expect(counter.estimated).toBe(true);
    expect(counter.total).toBe(5000);
    // Repeats add to the total, not to the distinct count.
    for (let i = 0; i < 5000; i += 1) counter.add(`w${i}`);
    expect(counter.total).toBe(10_000);
    for (const n of [5000, 50_000, 300_000]) {
      const big = new DistinctCounter(0);
      for (let i = 0; i < n; i += 1) big.add(`value ${i}`);
      expect(Math.abs(big.unique - n) / n, `n = ${n}`).toBeLessThan(3 * STANDARD_ERROR);
    }
    expect(Math.abs(counter.unique - 5000) / 5000).toBeLessThan(3 * STANDARD_ERROR);
  });
});
