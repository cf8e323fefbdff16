// A compact set of task keys, to catch a persona × query that appears twice in one input.
import { hash128 } from '../rng.js';

/**
 * Remembers strings by a 64-bit hash in an open-addressing table of two Uint32Arrays (linear probing),
 * kept at most three quarters full and grown by half: 11 to 16 bytes per key, about 12 MB for a million
 * keys, against ~100 MB for a Set of the strings themselves. (Doubling at half full took 16 to 32
 * bytes a key, and 24 MB at its last growth before a million.) Two different keys share a hash with
 * probability ~n²/2^65 (about 3e-8 for a million keys); such a key would be reported as a duplicate,
 * never silently written twice.
 */
export class KeySet {
  #hi = new Uint32Array(1024);
  #lo = new Uint32Array(1024);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Bytes the table takes. */
  get bytes(): number {
    return this.#hi.byteLength + this.#lo.byteLength;
  }

  /** Adds `key`; false when it was already there. */
  add(key: string): boolean {
    const [a, b] = hash128(key);
    const hi = a >>> 0;
    // A zero `lo` marks an empty slot, so no stored hash may have one.
    const lo = b >>> 0 || 1;
    if (this.#insert(hi, lo)) {
      this.#size += 1;
      if (this.#size * 4 > this.#hi.length * 3) this.#grow();
      return true;
    }
    return false;
  }

  /** Whether `key` was added. */
  has(key: string): boolean {
    const [a, b] = hash128(key);
    const hi = a >>> 0;
    const lo = b >>> 0 || 1;
    const capacity = this.#hi.length;
    for (let slot = ((hi ^ lo) >>> 0) % capacity; ; slot = slot + 1 === capacity ? 0 : slot + 1) {
      if (this.#lo[slot] === 0) return false;
      if (this.#hi[slot] === hi && this.#lo[slot] === lo) return true;
    }
  }

  #insert(hi: number, lo: number): boolean {
    const capacity = this.#hi.length;
    for (let slot = ((hi ^ lo) >>> 0) % capacity; ; slot = slot + 1 === capacity ? 0 : slot + 1) {
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
    const capacity = Math.ceil(oldHi.length * 1.5);
    this.#hi = new Uint32Array(capacity);
    this.#lo = new Uint32Array(capacity);
    for (let slot = 0; slot < oldLo.length; slot += 1) if (oldLo[slot] !== 0) this.#insert(oldHi[slot] as number, oldLo[slot] as number);
  }
}
