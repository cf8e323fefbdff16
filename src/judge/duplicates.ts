// Near-duplicate conversations of one persona: MinHash signatures (bloom-filters) of the user's word shingles.
import { MinHash } from 'bloom-filters';
import { hash128, rngFor } from '../rng.js';

/** Hash functions per signature: the estimate's standard error is about 1/√128 ≈ 0.09. */
const HASHES = 128;
/**
 * Shingles are hashed into [0, 2^26): bloom-filters computes (a·x + b) mod c in doubles, exact only while
 * a·x stays under 2^53, so both stay under 2^26; c is the first prime above 2^26.
 */
const RANGE = 2 ** 26;
const PRIME = 67_108_879;

/**
 * The MinHash hash functions, drawn once from a fixed seed (bloom-filters' own factory draws them with
 * Math.random, so two runs would not agree on which conversations are near-duplicates).
 */
const FUNCTIONS = (() => {
  const rng = rngFor(0, 'minhash', 'coefficients');
  return Array.from({ length: HASHES }, () => ({ a: rng.int(1, RANGE - 1), b: rng.int(0, RANGE - 1), c: PRIME }));
})();

/** Word 3-grams (word 1-grams for shorter texts) of what the user wrote, hashed into [0, RANGE). */
export function shingles(texts: readonly string[]): number[] {
  const out = new Set<number>();
  for (const text of texts) {
    const words = text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
    const n = words.length >= 3 ? 3 : 1;
    for (let i = 0; i + n <= words.length; i += 1) out.add((hash128(words.slice(i, i + n).join(' '))[0] >>> 0) % RANGE);
  }
  return [...out];
}

/** A conversation's signature: the MinHash of the user's turns. */
export function signature(userTurns: readonly string[]): MinHash {
  const minHash = new MinHash(HASHES, FUNCTIONS);
  const values = shingles(userTurns);
  if (values.length > 0) minHash.bulkLoad(values);
  return minHash;
}

/** Estimated Jaccard similarity of two signatures (0 when either conversation had no words). */
export const similarityOf = (a: MinHash, b: MinHash): number => (a.isEmpty() || b.isEmpty() ? 0 : a.compareWith(b));

/** The estimated similarity above which two conversations of one persona are near-duplicates. */
export const NEAR_DUPLICATE = 0.8;

/**
 * Remembers the conversations of each persona, in the order they are shown, and says whether a new one is
 * a near-duplicate of one already seen. Memory: one signature (128 numbers) per conversation, for the most
 * recent `personas` personas only (input is grouped by persona, so a persona's conversations come
 * together).
 */
export class NearDuplicates {
  readonly #seen = new Map<string, { readonly id: string; readonly signature: MinHash }[]>();

  constructor(readonly personas = 4096) {}

  /** The id of an earlier conversation of the persona that this one nearly repeats, if any; then remembers it. */
  check(personaId: string, id: string, userTurns: readonly string[]): { readonly of: string; readonly similarity: number } | undefined {
    const mine = signature(userTurns);
    const earlier = this.#seen.get(personaId) ?? [];
    let found: { of: string; similarity: number } | undefined;
    for (const other of earlier) {
      const similarity = similarityOf(mine, other.signature);
      if (similarity >= NEAR_DUPLICATE && (found === undefined || similarity > found.similarity)) found = { of: other.id, similarity };
    }
    this.#seen.delete(personaId);
    this.#seen.set(personaId, [...earlier, { id, signature: mine }]);
    if (this.#seen.size > this.personas) this.#seen.delete(this.#seen.keys().next().value as string);
    return found;
  }
}
