// The report's sample: distinct positions, in order, as many as asked (or all), the same for the same seed.
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { samplePositions } from '../../src/view/report.js';

describe('samplePositions', () => {
  test.prop([fc.nat({ max: 5000 }), fc.nat({ max: 300 }), fc.integer()])('k distinct ascending positions of [0, n), the same for the same seed', (n, k, seed) => {
    const sample = samplePositions(n, k, seed);
    expect(sample).toHaveLength(Math.min(n, k));
    expect(new Set(sample).size).toBe(sample.length);
    expect(sample.every((i, j) => Number.isInteger(i) && i >= 0 && i < n && (j === 0 || i > sample[j - 1]!))).toBe(true);
    expect(samplePositions(n, k, seed)).toEqual(sample);
  });

  test.prop([fc.integer()], { numRuns: 5 })('draws every position about as often (no end favoured)', (seed) => {
    const hits = new Array<number>(10).fill(0);
    for (let s = 0; s < 2000; s += 1) for (const i of samplePositions(10, 3, seed + s)) hits[i]! += 1;
    // 600 expected each; a fair sampler stays far inside these bounds.
    for (const count of hits) expect(count).toBeGreaterThan(450);
    for (const count of hits) expect(count).toBeLessThan(750);
  });
});
