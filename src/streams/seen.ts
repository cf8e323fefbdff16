// A compact set of task keys, to catch a persona × query that appears twice in one input.
import { hash128 } from '../rng.js';

/**
 * Remembers strings by a 64-bit hash in an open-addressing table of two Uint32Arrays: 16 bytes per key at
 * most (the table is kept at most half full), about 16 MB for a million keys, against ~100 MB for a
 * Set of the strings themselves. Two different keys share a hash with probability ~n²/2^65 (about 3e-8
 * for a million keys); such a key would be reported as a duplicate, never silently written twice.
 */
export class KeySet {
  #hi = new Uint32Array(1024);
  #lo = new Uint32Array(1024);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Adds `key`; false when it was already there. */
  add(key: string): boolean {
    const [a, b] = hash128(key);
    const hi = a >>> 0;
    // A zero `lo` marks an empty slot, so no stored hash may have one.
    const lo = b >>> 0 || 1;
    if (this.#insert(hi, lo)) {
      this.#size += 1;
      if (this.#size * 2 > this.#hi.length) this.#grow();
      return true;
    }
    return false;
  }

  /** Whether `key` was added. */
  has(key: string): boolean {
    const [a, b] = hash128(key);
    const hi = a >>> 0;
    const lo = b >>> 0 || 1;
    const mask = this.#hi.length - 1;
    for (let slot = (hi ^ lo) & mask; ; slot = (slot + 1) & mask) {
      if (this.#lo[slot] === 0) return false;
      if (this.#hi[slot] === hi && this.#lo[slot] === lo) return true;
    }
  }

  #insert(hi: number, lo: number): boolean {
    const mask = this.#hi.length - 1;
    for (let slot = (hi ^ lo) & mask; ; slot = (slot + 1) & mask) {
      if (this.#lo[slot] === 0) {
        this.#hi[slot] = hi;
        this.#lo[slot] = lo;
        return true;
      }
      if (this.#hi[slot] === hi && this.#lo[slot] === lo) return false;
    }
  }

  #grow(): void {
    const [oldHi, oldLo] = [this.#hi, this.#lo];
    this.#hi = new Uint32Array(oldHi.length * 2);
    this.#lo = new Uint32Array(oldLo.length * 2);
    for (let slot = 0; slot < oldLo.length; slot += 1) if (oldLo[slot] !== 0) this.#insert(oldHi[slot] as number, oldLo[slot] as number);
  }
}
