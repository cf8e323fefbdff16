// The background pass over a directory: rejections, failures, then every interaction line once, into facets (for filters) and counts (for the dashboard).
import { createReadStream } from 'node:fs';
import { byteLines } from '../streams/ndjson.js';
import { FacetStore } from './facets.js';
import { facetsOf, interactionKeys, rejectionKeys, rejectionOf } from './interaction.js';
import { MAX_LINE_BYTES } from './lines.js';
import { unhurried, type Pacer } from './pace.js';
import { DashboardStats } from './stats.js';

/** Someone waiting until `count` lines are in. */
interface Waiter {
  readonly count: number;
  readonly resolve: () => void;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function parse(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Where a conversation's rejected replies lie in guard-rejections.ndjson, and their reasons. */
export interface RejectionEntry {
  readonly reasons: Set<string>;
  /** [offset, bytes] of each line. */
  readonly lines: [number, number][];
}

export interface ScanPaths {
  readonly interactions: string;
  /** Absent files are passed over. */
  readonly failures?: string | undefined;
  readonly rejections?: string | undefined;
}

/**
 * Reads the directory once, in the background and in order: guard-rejections.ndjson (filed by conversation),
 * failures.ndjson (counted by kind), then interactions.ndjson line by line (JSON.parse, facets, counts).
 * Streams are read a chunk at a time, so the server answers between chunks; memory is the facets (tens
 * of bytes an interaction) and the distinct values. Nothing waits for the scan to show the first page.
 */
export class Scan {
  readonly store = new FacetStore();
  readonly stats = new DashboardStats();
  readonly rejections = new Map<string, RejectionEntry>();
  rejectionLines = 0;
  failureLines = 0;
  /** Interaction lines that are not interactions (torn, not JSON), skipped. */
  badLines = 0;
  done = false;
  rejectionsDone = false;
  #stopped = false;
  #waiting: Waiter[] = [];
  #rejectionsRead: Promise<void> | undefined;
  /** Requests waiting for guard-rejections.ndjson to be read. */
  #waitingForRejections = 0;
  /** Someone waits for the scan: it must not hold back for the server, which is busy with that very request. */
  readonly #urgent = (): boolean => this.#waiting.length > 0 || this.#waitingForRejections > 0;
  #resolveRejections: (() => void) | undefined;

  constructor(
    readonly paths: ScanPaths,
    /** Gives way to the server between lines. */
    readonly pacer: Pacer = unhurried(),
  ) {
    this.#rejectionsRead = new Promise((resolve) => (this.#resolveRejections = resolve));
  }

  /** Runs the pass to its end (call once; await it for a report, or leave it running for the viewer). */
  async run(): Promise<void> {
    try {
      if (this.paths.rejections !== undefined) await this.#lines(this.paths.rejections, (bytes, offset, length) => this.#rejection(bytes, offset, length));
      this.rejectionsDone = true;
      this.#resolveRejections?.();
      if (this.paths.failures !== undefined) await this.#lines(this.paths.failures, (bytes) => this.#failure(bytes));
      let sinceWake = 0;
      await this.#lines(this.paths.interactions, (bytes, offset, length) => {
        this.#interaction(bytes, offset, length);
        if ((sinceWake += 1) >= 1024) {
          sinceWake = 0;
          this.#wake();
        }
      });
    } finally {
      this.rejectionsDone = true;
      this.#resolveRejections?.();
      this.done = true;
      this.#wake();
    }
  }

  async #lines(path: string, each: (bytes: Buffer, offset: number, length: number) => void): Promise<void> {
    const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
    try {
      for await (const line of byteLines(stream, { maxLineBytes: MAX_LINE_BYTES })) {
        if (this.#stopped) break;
        if (line.overlong) {
          if (path === this.paths.interactions) this.badLines += 1;
          continue;
        }
        if (line.bytes.length === 0) continue;
        each(line.bytes, line.offset, line.length);
        const wait = this.pacer.gate(this.#urgent);
        if (wait !== undefined) await wait;
      }
    } catch (error) {
      // A file that vanished or cannot be read ends its part of the scan; an absent one was never asked for.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    } finally {
      stream.destroy();
    }
  }

  #rejection(bytes: Buffer, offset: number, length: number): void {
    const line = parse(bytes);
    const rejection = rejectionOf(line);
    if (rejection === undefined) return;
    this.rejectionLines += 1;
    this.stats.rejection(rejection.reason);
    for (const key of rejectionKeys(line)) {
      let entry = this.rejections.get(key);
      if (entry === undefined) this.rejections.set(key, (entry = { reasons: new Set(), lines: [] }));
      entry.reasons.add(rejection.reason);
      entry.lines.push([offset, length]);
    }
  }

  #failure(bytes: Buffer): void {
    const line = parse(bytes);
    if (!isRecord(line)) return;
    this.failureLines += 1;
    const error = isRecord(line.error) ? line.error : {};
    this.stats.failure(typeof error.kind === 'string' ? error.kind : typeof line.kind === 'string' ? line.kind : 'unknown');
  }

  #interaction(bytes: Buffer, offset: number, length: number): void {
    const facets = facetsOf(parse(bytes));
    if (facets === undefined) {
      this.badLines += 1;
      return;
    }
    this.store.add(facets, offset, length, this.rejectionReasons(facets));
    this.stats.add(facets);
  }

  /** Rejection reasons filed for a conversation (by its id, or its persona and query). */
  rejectionReasons(facets: { readonly id: string; readonly persona: string; readonly queryId: string }): string[] {
    const reasons = new Set<string>();
    for (const key of interactionKeys(facets)) for (const reason of this.rejections.get(key)?.reasons ?? []) reasons.add(reason);
    return [...reasons];
  }

  /** [offset, bytes] of the rejection lines filed for a conversation, once guard-rejections.ndjson has been read. */
  async rejectionLinesOf(facets: { readonly id: string; readonly persona: string; readonly queryId: string }): Promise<[number, number][]> {
    if (!this.rejectionsDone) {
      this.#waitingForRejections += 1;
      try {
        await this.#rejectionsRead;
      } finally {
        this.#waitingForRejections -= 1;
      }
    }
    const seen = new Set<number>();
    const lines: [number, number][] = [];
    for (const key of interactionKeys(facets)) {
      for (const line of this.rejections.get(key)?.lines ?? []) {
        if (seen.has(line[0])) continue;
        seen.add(line[0]);
        lines.push(line);
      }
    }
    return lines.sort((a, b) => a[0] - b[0]);
  }

  /** Resolves once `count` interactions are scanned, or the scan is over. */
  scanned(count: number): Promise<void> {
    if (this.done || this.store.count >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push({ count, resolve }));
  }

  #wake(): void {
    const still: Waiter[] = [];
    for (const waiter of this.#waiting) {
      if (this.done || this.store.count >= waiter.count) waiter.resolve();
      else still.push(waiter);
    }
    this.#waiting = still;
  }

  /** Stops at the next line (the server is closing). */
  stop(): void {
    this.#stopped = true;
  }
}
