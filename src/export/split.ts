// Train/validation/test split by persona: a seeded hash of the persona id picks the bucket, so no persona spans two splits.
import { hash128 } from '../rng.js';
import { SPLITS, type SplitName } from './samples.js';

/** Shares of train, validation and test; each in [0, 1], together 1. */
export interface SplitRatios {
  readonly train: number;
  readonly validation: number;
  readonly test: number;
}

const TOLERANCE = 1e-6;

/** Checks ratios up front and says what was wrong with the value itself. */
export function checkRatios(ratios: SplitRatios, what = 'split'): SplitRatios {
  for (const name of SPLITS) {
    const value = ratios[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) throw new TypeError(`Expected \`${what}.${name}\` to be a number in [0, 1], got \`${String(value)}\` (${typeof value})`);
  }
  const sum = ratios.train + ratios.validation + ratios.test;
  if (Math.abs(sum - 1) > TOLERANCE) throw new TypeError(`Expected the ${what} ratios to add up to 1, got ${ratios.train} + ${ratios.validation} + ${ratios.test} = ${Number(sum.toFixed(6))}`);
  return ratios;
}

/**
 * Parses `--split`: three ratios `train,validation,test` that add up to 1 (`0.8,0.1,0.1`), or `none`
 * (undefined: no split). Throws a TypeError that says what was wrong.
 *
 * @example
 * parseSplit('0.8,0.1,0.1') // { train: 0.8, validation: 0.1, test: 0.1 }
 */
export function parseSplit(value: string): SplitRatios | undefined {
  if (value.trim() === 'none') return undefined;
  const parts = value.split(',').map((part) => part.trim());
  const numbers = parts.map(Number);
  if (parts.length !== 3 || parts.some((part) => part === '') || numbers.some((n) => !Number.isFinite(n))) {
    throw new TypeError(`expected three ratios train,validation,test that add up to 1 (e.g. 0.8,0.1,0.1), or none; got \`${value}\``);
  }
  const [train, validation, test] = numbers as [number, number, number];
  return checkRatios({ train, validation, test }, '--split');
}

/**
 * A uniform number in [0, 1) from (seed, persona id): the same persona always lands in the same place for
 * a seed, whatever else the input holds and in whatever order, and nothing needs to be remembered.
 */
export function personaPoint(seed: number, personaId: string): number {
  const [a, b] = hash128(`${seed}\u0000${personaId}\u0000split`);
  // 53 bits: 32 from `a`, 21 from `b`.
  return ((a >>> 0) * 2 ** 21 + (b >>> 11)) / 2 ** 53;
}

/**
 * The split of a persona: its point in [0, 1) against the cumulative ratios. Every interaction of a persona
 * goes to the same split (split by persona, so nothing about a test persona leaks into training); a split
 * with ratio 0 gets nothing.
 *
 * @example
 * splitOf(42, 'persona_001', { train: 0.8, validation: 0.1, test: 0.1 }) // 'train' (always, for seed 42)
 */
export function splitOf(seed: number, personaId: string, ratios: SplitRatios): SplitName {
  const point = personaPoint(seed, personaId);
  let cumulative = 0;
  let last: SplitName = 'train';
  for (const name of SPLITS) {
    if (ratios[name] <= 0) continue;
    cumulative += ratios[name];
    last = name;
    if (point < cumulative) return name;
  }
  // Ratios that add up to a hair under 1: the remainder goes to the last split that takes anything.
  return last;
}
