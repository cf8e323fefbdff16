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

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Splits a byte stream into lines. Pulling is lazy: `for await` reads the next chunk only when the
 * lines already split are consumed, so memory stays at one chunk plus one line whatever the input size.
 * Handles CRLF, a missing final newline, lines split across chunks, invalid UTF-8 (reported per line)
 * and over-long lines (reported, skipped). Blank lines are yielded too; callers decide what they mean.
 *
 * @example
 * for await (const { line, text } of readLines(createReadStream('personas.ndjson'))) console.log(line, text);
 */
export async function* readLines(source: AsyncIterable<Buffer | string>, options: ReadLinesOptions = {}): AsyncGenerator<Line> {
  const maxLineBytes = options.maxLineBytes ?? 16 * 1024 * 1024;
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overlong = false;
  let lineNumber = 0;

  const finish = (tail: Buffer): Line => {
    lineNumber += 1;
    if (overlong) {
      overlong = false;
      pending = [];
      pendingBytes = 0;
      return { line: lineNumber, error: `line longer than ${maxLineBytes} bytes, skipped` };
    }
    let bytes = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
    pending = [];
    pendingBytes = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN) bytes = bytes.subarray(0, -1);
    try {
      const text = decoder.decode(bytes);
      // A byte-order mark is only one at the very start of the input.
      return { line: lineNumber, text: lineNumber === 1 && text.startsWith('\uFEFF') ? text.slice(1) : text };
    } catch {
      return { line: lineNumber, error: 'invalid UTF-8' };
    }
  };

  for await (const raw of source) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    let start = 0;
    let newline = chunk.indexOf(NEWLINE, start);
    while (newline !== -1) {
      const piece = chunk.subarray(start, newline);
      if (!overlong && pendingBytes + piece.length > maxLineBytes) overlong = true;
      yield finish(overlong ? Buffer.alloc(0) : piece);
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length && !overlong) {
      const rest = chunk.subarray(start);
      if (pendingBytes + rest.length > maxLineBytes) {
        overlong = true;
        pending = [];
        pendingBytes = 0;
      } else {
        // Copy: the stream may reuse its buffer, and a subarray would pin the whole chunk.
        pending.push(Buffer.from(rest));
        pendingBytes += rest.length;
      }
    }
  }
  if (pendingBytes > 0 || overlong) yield finish(Buffer.alloc(0));
}

/** Opens `path` for reading, or stdin for `-` / undefined; the name is what error messages call it. */
export function openInput(path: string | undefined): { name: string; stream: Readable } {
  if (path === undefined || path === '-') return { name: 'stdin', stream: process.stdin };
  return { name: path, stream: createReadStream(path, { highWaterMark: 64 * 1024 }) };
}
