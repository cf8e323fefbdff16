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

/**
 * Creates the generator for one purpose of one task. The same (seed, key, purpose) always gives the same
 * sequence, whatever else the run does, so results do not depend on concurrency or completion order.
 *
 * @example
 * rngFor(42, 'persona_001/q1', 'target_turns').int(1, 5) // always the same number
 */
export function rngFor(seed: number, key: string, purpose: string): Rng {
  const digest = createHash('sha256').update(`${seed}\u0000${key}\u0000${purpose}`).digest();
  const generator = xoroshiro128plusFromState([0, 4, 8, 12].map((offset) => digest.readInt32LE(offset)));
  return {
    next: () => uniformFloat64(generator),
    int: (min, max) => uniformInt(generator, min, max),
  };
}

/** Short stable hex digest of a string, for derived ids. */
export function stableId(text: string, length = 12): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}
