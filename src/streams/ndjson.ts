// Demand-driven line reader for NDJSON files and stdin: reads a chunk only when the consumer asks for a line.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { ConfigError } from '../errors.js';

/** One line of input, with its 1-based line number, or the reason it could not be read as text. */
export type Line =
  | { readonly line: number; readonly text: string; readonly error?: undefined }
  | { readonly line: number; readonly text?: undefined; readonly error: string };

/**
 * What to do with a bad input line: report `FILE:LINE: message` through `onWarning` and go on, or, with
 * `strict`, end the stream with a ConfigError. One policy for personas, texts and query files.
 */
export function badLineReporter(options: { readonly strict?: boolean | undefined; readonly onWarning?: ((message: string) => void) | undefined }): (message: string) => void {
  return (message) => {
    if (options.strict === true) throw new ConfigError(`${message} (--strict stops at the first bad line)`);
    options.onWarning?.(message);
  };
}

export interface ReadLinesOptions {
  /** Longest line accepted, in bytes; a longer line is reported and skipped without being held in memory. Default 16 MiB. */
  readonly maxLineBytes?: number;
}

export interface ByteLinesOptions extends ReadLinesOptions {
  /** Byte offset of the source's first byte in its file (a stream opened with `start`): where offsets count from. Default 0. */
  readonly start?: number;
  /**
   * A `\r` not followed by `\n` ends a line too (classic Mac line endings), as Python's universal newlines
   * read them (PersonaGym reads its JSONL that way); such a line's `bytes` leave the `\r` out. Default false:
   * only `\n` ends a line.
   */
  readonly universal?: boolean;
}

/** One line of a byte stream, where it lies in the input, and its bytes. */
export interface ByteLine {
  /** 1-based line number within the source. */
  readonly line: number;
  /** Byte offset of the line's first byte: `start` plus the bytes before it. */
  readonly offset: number;
  /**
   * The line without its `\n` (a `\r` before it is kept), or empty when `overlong`. May be a view into the
   * source's chunk: valid until the next line is asked for; copy it to keep it.
   */
  readonly bytes: Buffer;
  /** Bytes the line takes in the input, its `\n` included: the next line starts at `offset + length`. */
  readonly length: number;
  /** Longer than maxLineBytes (the `\n` not counted): its bytes were never held, and `bytes` is empty. */
  readonly overlong: boolean;
  /** Ended by a `\n`; only the last line of the input can be false. */
  readonly terminated: boolean;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
/** Longest line read by default, in bytes (16 MiB): a persona, query or output line is far shorter. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Splits a byte stream into lines: byteLines, with its results made by `make`.
 * readLines and byteLines share this one loop; readLines passes a `make` that decodes, so it costs no
 * second async generator (one more promise per line) and no intermediate object per line.
 */
async function* splitLines<T>(
  source: AsyncIterable<Buffer | string>,
  maxLineBytes: number,
  start: number,
  universal: boolean,
  make: (line: number, offset: number, bytes: Buffer, length: number, overlong: boolean, terminated: boolean) => T,
): AsyncGenerator<T> {
  let offset = start;
  let lineNumber = 0;
  // The current line's pieces from earlier chunks (copies), and its byte count so far, kept or not.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overlong = false;
  // Universal: the pending bytes end with a `\r` that may be the first half of a `\r\n` split across chunks.
  let pendingCR = false;

  for await (const raw of source) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    if (chunk.length === 0) continue;
    let from = 0;
    if (pendingCR) {
      pendingCR = false;
      if (chunk[0] !== NEWLINE) {
        // The pending line ended at a lone `\r`: its bytes leave it out, its length counts it.
        const size = pendingBytes - 1;
        const bytes = overlong || size > maxLineBytes ? EMPTY : Buffer.concat(pending, pendingBytes).subarray(0, size);
        lineNumber += 1;
        const line = make(lineNumber, offset, bytes, pendingBytes, overlong || size > maxLineBytes, true);
        offset += pendingBytes;
        pending = [];
        pendingBytes = 0;
        overlong = false;
        yield line;
      }
    }
    // The next `\r` at or after `from` (universal only), searched again only once passed: O(chunk) in all.
    let cr = universal ? chunk.indexOf(CARRIAGE_RETURN) : -1;
    for (;;) {
      let end = chunk.indexOf(NEWLINE, from);
      if (cr !== -1 && cr < from) cr = chunk.indexOf(CARRIAGE_RETURN, from);
      // A `\r` before the newline and not right before it ends the line there, unless it is the chunk's
      // last byte: then the next chunk says whether a `\n` follows.
      if (cr !== -1 && (end === -1 || cr < end - 1)) end = cr === chunk.length - 1 ? -1 : cr;
      if (end === -1) break;
      const size = pendingBytes + end - from;
      let bytes: Buffer = EMPTY;
      if (overlong || size > maxLineBytes) overlong = true;
      else if (pending.length === 0) bytes = chunk.subarray(from, end);
      else {
        pending.push(chunk.subarray(from, end));
        bytes = Buffer.concat(pending, size);
      }
      lineNumber += 1;
      const line = make(lineNumber, offset, bytes, size + 1, overlong, true);
      offset += size + 1;
      pending = [];
      pendingBytes = 0;
      overlong = false;
      from = end + 1;
      yield line;
    }
    if (from < chunk.length) {
      pendingCR = universal && chunk[chunk.length - 1] === CARRIAGE_RETURN;
      pendingBytes += chunk.length - from;
      if (overlong) continue;
      // A last `\r` may turn out to be a lone one, which is not part of the line: give it its byte.
      if (pendingBytes - (pendingCR ? 1 : 0) > maxLineBytes) {
        overlong = true;
        pending = [];
      } else {
        // Copy: the stream may reuse its buffer, and a view would pin the whole chunk.
        pending.push(Buffer.from(chunk.subarray(from)));
      }
    }
  }
  if (pendingBytes > 0) {
    // A last `\r` with nothing after it is a lone one: it ends the line.
    const size = pendingCR ? pendingBytes - 1 : pendingBytes;
    const tooLong = overlong || size > maxLineBytes;
    const bytes = tooLong ? EMPTY : pending.length === 1 ? (pending[0] as Buffer).subarray(0, size) : Buffer.concat(pending, pendingBytes).subarray(0, size);
    yield make(lineNumber + 1, offset, bytes, pendingBytes, tooLong, pendingCR);
  }
}

/**
 * The one place where bytes are split into lines, with where each lies: readLines, the query index
 * (src/streams/queries.ts) and resume (src/sinks/resume.ts) all build on it. Pulling is lazy: `for await`
 * reads the next chunk only when the lines already split are consumed. A line inside one chunk is a
 * view into it; a line across chunks is kept as a list of copied pieces, joined once when its `\n`
 * arrives. A line stops being kept as soon as it passes maxLineBytes and comes out `overlong`, its
 * length still counted. So memory stays at one chunk plus one line of at most maxLineBytes, whatever
 * the input. A missing final newline still ends a line (`terminated: false`); empty input has no lines.
 *
 * @example
 * for await (const { offset, length } of byteLines(createReadStream(path, { start }), { start })) index(offset, length);
 */
export function byteLines(source: AsyncIterable<Buffer | string>, options: ByteLinesOptions = {}): AsyncGenerator<ByteLine> {
  return splitLines(source, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, options.start ?? 0, options.universal === true, (line, offset, bytes, length, overlong, terminated): ByteLine => ({ line, offset, bytes, length, overlong, terminated }));
}

/**
 * Splits a byte stream into text lines: byteLines with universal newlines (`\n`, `\r\n` and a lone `\r`
 * end a line, as Python reads PersonaGym's JSONL), each line decoded as strict UTF-8. Lazy like
 * byteLines: one chunk plus one line in memory whatever the input size. Handles a missing final newline,
 * lines split across chunks, invalid UTF-8 (reported per line), a byte-order mark at the start of any
 * line (files joined with `cat` keep theirs), and over-long lines (reported, skipped). Blank lines are
 * yielded too; callers decide what they mean.
 *
 * @example
 * for await (const { line, text } of readLines(createReadStream('personas.ndjson'))) console.log(line, text);
 */
export function readLines(source: AsyncIterable<Buffer | string>, options: ReadLinesOptions = {}): AsyncGenerator<Line> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  return splitLines(source, maxLineBytes, 0, true, (line, _offset, bytes, _length, overlong): Line => {
    if (overlong) return { line, error: `line longer than ${maxLineBytes} bytes, skipped` };
    let text: string;
    try {
      text = decoder.decode(bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN ? bytes.subarray(0, -1) : bytes);
    } catch {
      return { line, error: 'invalid UTF-8' };
    }
    // A byte-order mark opens a file; one at the start of a later line is where two files were joined (`cat a b`).
    return { line, text: text.startsWith('\uFEFF') ? text.slice(1) : text };
  });
}

/** Opens `path` for reading, or stdin for `-` / undefined; the name is what error messages call it. */
export function openInput(path: string | undefined): { name: string; stream: Readable } {
  if (path === undefined || path === '-') return { name: 'stdin', stream: process.stdin };
  return { name: path, stream: createReadStream(path, { highWaterMark: 64 * 1024 }) };
}
