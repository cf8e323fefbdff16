// Seeded random numbers: one independent generator per (run seed, interaction key, purpose).
import { createHash } from 'node:crypto';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';

/** A small random source. Every random choice of a task draws from its own `Rng`, never from a shared one. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
}

/** One item of a non-empty list, drawn uniformly. */
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(0, items.length - 1)] as T;

/**
 * Creates the generator for one purpose of one task. The same (seed, key, purpose) always gives the same
 * sequence, whatever else the run does, so results do not depend on concurrency or completion order.
 *
 * @example
 * rngFor(42, 'persona_001/q1', 'target_turns').int(1, 5) // always the same number
 */
export function rngFor(seed: number, key: string, purpose: string): Rng {
  const generator = xoroshiro128plusFromState(hash128(`${seed}\u0000${key}\u0000${purpose}`));
  return {
    next: () => uniformFloat64(generator),
    int: (min, max) => uniformInt(generator, min, max),
  };
}

/**
 * 128-bit non-cryptographic hash of a string as four int32 (cyrb128, public domain): enough mixing to
 * seed independent generators and to key a hash table, at a fraction of the cost of node:crypto, which
 * showed up at ~7% of the engine's CPU time when every model call seeded a generator with sha256.
 */
export function hash128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i += 1) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 | 0, h2 | 0, h3 | 0, h4 | 0];
}

/** Short stable hex digest of a string, for derived ids (sha256: ids are forever, so no home-made hash). */
export function stableId(text: string, length = 12): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}
