// A query dataset in PersonaGym's query.jsonl format, indexed by byte offset and read on demand.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Rng } from '../rng.js';
import { DEFAULT_MAX_LINE_BYTES, badLineReporter, byteLines, type ByteLine } from './ndjson.js';
import { MAX_NESTING, nestsWithin } from './records.js';

/** One query of the dataset. */
export interface DatasetQuery {
  readonly queryId: string;
  readonly text: string;
  /** The line's `metadata`, kept for the interaction. */
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
}

/** Where PersonaGym looks for a query's text, in this order. */
const TEXT_KEYS = ['instruction', 'query', 'question', 'prompt', 'text', 'input'] as const;
const ID_KEYS = ['query_id', 'id', 'source_id', 'uid', 'uuid', 'qid'] as const;
const SOURCE_KEYS = ['dataset', 'source', 'file'] as const;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Reads one line of query.jsonl: the text from the first non-empty of instruction, query, question,
 * prompt, text, input (top level, then metadata), or `conversations[0].value`; the id as
 * `{dataset|source|file name}:{id}` when the line has one of query_id, id, source_id, uid, uuid, qid,
 * else `hash:` and 16 hex digits of sha1(file:index:text), as PersonaGym derives them. Returns a reason
 * string when the line has no text.
 */
export function parseQueryLine(json: unknown, file: string, index: number): DatasetQuery | string {
  if (!isRecord(json)) return 'expected a JSON object';
  if (!nestsWithin(json, MAX_NESTING)) return `nested more than ${MAX_NESTING} levels deep`;
  const metadata = isRecord(json.metadata) ? json.metadata : undefined;
  const field = (keys: readonly string[]): string | undefined => {
    for (const where of [json, metadata ?? {}]) {
      for (const key of keys) {
        const value = where[key];
        if ((typeof value === 'string' && value.trim() !== '') || typeof value === 'number') return String(value).trim();
      }
    }
    return undefined;
  };
  let text = field(TEXT_KEYS);
  if (text === undefined && Array.isArray(json.conversations) && isRecord(json.conversations[0])) {
    const value = json.conversations[0].value;
    if (typeof value === 'string' && value.trim() !== '') text = value.trim();
  }
  if (text === undefined) return `no query text (looked for ${TEXT_KEYS.join(', ')}, conversations[0].value)`;
  const id = field(ID_KEYS);
  const source = field(SOURCE_KEYS);
  const queryId = id !== undefined ? `${source ?? file}:${id}` : `hash:${createHash('sha1').update(`${file}:${index}:${text}`).digest('hex').slice(0, 16)}`;
  return { queryId, text, metadata };
}

export interface QueryDatasetOptions {
  /** Read at most this many valid queries (PersonaGym's `max_queries`). */
  readonly maxQueries?: number | undefined;
  readonly strict?: boolean;
  readonly onWarning?: (message: string) => void;
  /** Longest query line, in bytes; a longer one is reported as `FILE:LINE` and skipped without being held. Default 16 MiB. */
  readonly maxLineBytes?: number;
}

/**
 * A query dataset held as an index, not as text: one pass over the file records where each valid line
 * starts and how long it is (18 bytes a query), and a query is read from disk when it is assigned. So a
 * dataset of millions of queries costs tens of megabytes at most, and the persona stream's bounded
 * memory is not traded for the query file. Lines that are not queries are reported as `FILE:LINE` once,
 * while indexing.
 */
export class QueryDataset {
  /** Round-robin position (`selection.strategy: round_robin`). */
  private cursor = 0;

  private constructor(
    readonly paths: readonly string[],
    private readonly files: readonly FileHandle[],
    private readonly offsets: Float64Array,
    private readonly lengths: Uint32Array,
    private readonly fileOf: Uint16Array,
    /** Index of each entry within its own file, for PersonaGym's hash ids. */
    private readonly positions: Uint32Array,
    readonly size: number,
  ) {}

  /** Indexes one or more query files (PersonaGym's `paths.query_datasets`), in order, up to `maxQueries` in all. */
  static async open(paths: string | readonly string[], options: QueryDatasetOptions = {}): Promise<QueryDataset> {
    const list = typeof paths === 'string' ? [paths] : paths;
    if (list.length > 65_535) throw new ConfigError('too many query files');
    const max = options.maxQueries ?? Number.POSITIVE_INFINITY;
    let offsets = new Float64Array(1024);
    let lengths = new Uint32Array(1024);
    let fileOf = new Uint16Array(1024);
    let positions = new Uint32Array(1024);
    let size = 0;
    const files: FileHandle[] = [];
    try {
      for (const [fileIndex, path] of list.entries()) {
        if (size >= max) break;
        await QueryDataset.scan(path, max, options, (start, length, position) => {
          if (size === offsets.length) {
            offsets = grow(offsets, new Float64Array(size * 2));
            lengths = grow(lengths, new Uint32Array(size * 2));
            fileOf = grow(fileOf, new Uint16Array(size * 2));
            positions = grow(positions, new Uint32Array(size * 2));
          }
          offsets[size] = start;
          lengths[size] = length;
          fileOf[size] = fileIndex;
          positions[size] = position;
          size += 1;
          return size < max;
        });
        files.push(await open(path, 'r'));
      }
    } catch (error) {
      await Promise.all(files.map((file) => file.close()));
      throw error;
    }
    return new QueryDataset(list, files, offsets.subarray(0, size), lengths.subarray(0, size), fileOf.subarray(0, size), positions.subarray(0, size), size);
  }

  /** One pass over a file: `add(start, length, positionInFile)` for each valid query line; false from `add` stops. */
  private static async scan(path: string, max: number, options: QueryDatasetOptions, add: (start: number, length: number, position: number) => boolean): Promise<void> {
    let count = 0;
    const name = basename(path);
    const report = badLineReporter(options);
    const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const consider = ({ line: lineNumber, bytes, offset, overlong }: ByteLine): boolean => {
      if (max <= 0) return false;
      if (overlong) {
        report(`${path}:${lineNumber}: line longer than ${maxLineBytes} bytes, skipped`);
        return true;
      }
      const text = bytes.toString('utf8').trim();
      if (text === '') return true;
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (error) {
        report(`${path}:${lineNumber}: invalid JSON: ${(error as Error).message}`);
        return true;
      }
      const parsed = parseQueryLine(json, name, count);
      if (typeof parsed === 'string') {
        report(`${path}:${lineNumber}: ${parsed}`);
        return true;
      }
      count += 1;
      // The length without the newline (a CR is kept, and trimmed when read back).
      return add(offset, bytes.length, count - 1);
    };
    let stream: ReturnType<typeof createReadStream> | undefined;
    try {
      stream = createReadStream(path);
      // Leaving the loop ends byteLines, which stops reading the file.
      for await (const line of byteLines(stream, { maxLineBytes, universal: true })) if (!consider(line)) break;
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(`${path}: cannot read query file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    } finally {
      stream?.destroy();
    }
  }

  /** The query at `index` (0-based, in file order among valid lines). */
  async get(index: number): Promise<DatasetQuery> {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`query index ${index} outside [0, ${this.size})`);
    const fileIndex = this.fileOf[index] as number;
    const path = this.paths[fileIndex] as string;
    const buffer = Buffer.alloc(this.lengths[index] as number);
    await (this.files[fileIndex] as FileHandle).read(buffer, 0, buffer.length, this.offsets[index] as number);
    let parsed: DatasetQuery | string;
    try {
      // trim() as when indexing: it also drops a byte order mark on the first line.
      parsed = parseQueryLine(JSON.parse(buffer.toString('utf8').trim()) as unknown, basename(path), this.positions[index] as number);
    } catch {
      parsed = 'not JSON';
    }
    if (typeof parsed === 'string') throw new ConfigError(`${path}: a query line changed on disk while the run was reading it`);
    return parsed;
  }

  /**
   * `count` distinct queries for one persona, drawn with its RNG (a partial Fisher–Yates shuffle over the
   * index, O(count)): deterministic for a seed, never the same line twice, and never the same text
   * twice (a duplicate text in the dataset is passed over). Fewer when the dataset has fewer.
   */
  async assign(count: number, rng: Rng): Promise<DatasetQuery[]> {
    const swaps = new Map<number, number>();
    const chosen: DatasetQuery[] = [];
    const texts = new Set<string>();
    for (let i = 0; i < this.size && chosen.length < count; i += 1) {
      const j = rng.int(i, this.size - 1);
      const picked = swaps.get(j) ?? j;
      swaps.set(j, swaps.get(i) ?? i);
      const query = await this.get(picked);
      if (texts.has(query.text)) continue;
      texts.add(query.text);
      chosen.push(query);
    }
    return chosen;
  }

  /**
   * `count` queries in file order from a cursor shared by all personas (`round_robin`): each query goes to
   * one persona until the dataset runs out, then the cursor wraps around. Deterministic for a given input order.
   */
  async nextInOrder(count: number): Promise<DatasetQuery[]> {
    const chosen: DatasetQuery[] = [];
    const texts = new Set<string>();
    for (let n = 0; n < Math.min(count, this.size); n += 1) {
      const query = await this.get(this.cursor);
      this.cursor = (this.cursor + 1) % this.size;
      if (!texts.has(query.text)) {
        texts.add(query.text);
        chosen.push(query);
      }
    }
    return chosen;
  }

  /**
   * The same dataset with a round-robin cursor of its own, where this one's is now: a second pass over the
   * personas (the progress total's count, streams/count.ts) assigns what the run will without moving the
   * run's cursor. It shares the open files: do not use it after `close`, and do not close it.
   */
  fork(): QueryDataset {
    const fork = new QueryDataset(this.paths, this.files, this.offsets, this.lengths, this.fileOf, this.positions, this.size);
    fork.cursor = this.cursor;
    return fork;
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((file) => file.close()));
  }
}

function grow<T extends Float64Array | Uint32Array | Uint16Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
