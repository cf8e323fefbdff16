// index.ndjson read into memory as it streams in (12 bytes an interaction): where each interaction's line lies, so page k is k's reads.
import { createReadStream } from 'node:fs';
import { byteLines } from '../streams/ndjson.js';
import { unhurried, type Pacer } from './pace.js';

/** Someone waiting until `count` lines are in. */
interface Waiter {
  readonly count: number;
  readonly resolve: () => void;
}

/** Entries read between two looks at who is waiting for them (a page is 50). */
const BATCH = 256;

/** The 1-based number of the line at byte `at` among the first `count` ascending `offsets`, or 0 when none starts there. */
export function numberAt(offsets: Float64Array, count: number, at: number): number {
  let lo = 0;
  let hi = count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const offset = offsets[mid] as number;
    if (offset === at) return mid + 1;
    if (offset < at) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}

/**
 * The running index of a directory, loaded in the background: `offsets[i]` and `bytes[i]` locate
 * interaction i+1 in interactions.ndjson. A page asks for the entries it needs with `entries`, which
 * waits only until the load has reached them, so the first page of a directory of a million
 * interactions is there as soon as its first index lines are.
 */
export class Catalogue {
  count = 0;
  done = false;
  /** Index lines that could not be used (not JSON, or pointing outside the interactions), skipped. */
  bad = 0;
  #offsets = new Float64Array(4096);
  #bytes = new Uint32Array(4096);
  #waiting: Waiter[] = [];
  #stopped = false;

  constructor(
    readonly path: string,
    /** Size of interactions.ndjson when the viewer opened it: entries past it are skipped. */
    readonly interactionsSize: number,
    /** Gives way to the server between lines, unless a page is waiting for the load. */
    readonly pacer: Pacer = unhurried(),
  ) {}

  /** Reads the index to its end (call once, without awaiting, to load in the background). */
  async load(): Promise<void> {
    try {
      const stream = createReadStream(this.path, { highWaterMark: 256 * 1024 });
      let batch = 0;
      for await (const line of byteLines(stream, { maxLineBytes: 64 * 1024 })) {
        if (this.#stopped) {
          stream.destroy();
          break;
        }
        this.#add(line.bytes);
        if ((batch += 1) === BATCH) {
          batch = 0;
          this.#wake();
        }
        const wait = this.pacer.gate(() => this.#waiting.length > 0);
        if (wait !== undefined) {
          this.#wake();
          await wait;
        }
      }
    } catch {
      // An unreadable index ends the load: what was read is used, the rest is left to the scan.
    } finally {
      this.done = true;
      this.#wake();
    }
  }

  #add(bytes: Buffer): void {
    let entry: { offset?: unknown; bytes?: unknown };
    try {
      entry = JSON.parse(bytes.toString('utf8')) as { offset?: unknown; bytes?: unknown };
    } catch {
      this.bad += 1;
      return;
    }
    const { offset, bytes: length } = entry ?? {};
    if (typeof offset !== 'number' || typeof length !== 'number' || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 || offset + length > this.interactionsSize) {
      this.bad += 1;
      return;
    }
    if (this.count === this.#offsets.length) {
      const offsets = new Float64Array(this.count * 2);
      offsets.set(this.#offsets);
      this.#offsets = offsets;
      const sizes = new Uint32Array(this.count * 2);
      sizes.set(this.#bytes);
      this.#bytes = sizes;
    }
    this.#offsets[this.count] = offset;
    this.#bytes[this.count] = Math.min(length, 0xffffffff);
    this.count += 1;
  }

  #wake(): void {
    const still: Waiter[] = [];
    for (const waiter of this.#waiting) {
      if (this.done || this.count >= waiter.count) waiter.resolve();
      else still.push(waiter);
    }
    this.#waiting = still;
  }

  /** Entries [from, from + take), once the load has reached them (fewer at the end of the index). */
  async entries(from: number, take: number): Promise<{ at: number; bytes: number; n: number }[]> {
    const need = from + take;
    if (!this.done && this.count < need) await new Promise<void>((resolve) => this.#waiting.push({ count: need, resolve }));
    const out: { at: number; bytes: number; n: number }[] = [];
    for (let i = from; i < Math.min(need, this.count); i += 1) out.push({ at: this.#offsets[i] as number, bytes: this.#bytes[i] as number, n: i + 1 });
    return out;
  }

  /** The 1-based number of the entry at byte `at` (offsets ascend), or 0. */
  numberOf(at: number): number {
    return numberAt(this.#offsets, this.count, at);
  }

  /** Stops a load in progress at its next line. */
  stop(): void {
    this.#stopped = true;
  }
}
