// One line of an NDJSON file read in place by its byte offset: a page of conversations costs a page of reads, whatever the file's size.
import type { FileHandle } from 'node:fs/promises';

/** Longest line the viewer reads, in bytes (what the readers of the directory accept). */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
const CHUNK = 64 * 1024;

/**
 * The line that starts at byte `at` of the open file: `bytes` of it when the index says how long it is
 * (its newline included), else up to the next newline. Undefined when `at` is not where a line starts
 * (not 0 and not right after a newline), lies past the end, or the line is longer than MAX_LINE_BYTES: an
 * offset from a request reaches only the lines of this one file.
 */
export async function lineAt(handle: FileHandle, at: number, size: number, bytes?: number): Promise<Buffer | undefined> {
  if (!Number.isSafeInteger(at) || at < 0 || at >= size) return undefined;
  if (at > 0) {
    const before = Buffer.alloc(1);
    await handle.read(before, 0, 1, at - 1);
    if (before[0] !== 0x0a) return undefined;
  }
  if (bytes !== undefined && bytes > 0 && bytes <= MAX_LINE_BYTES + 1 && at + bytes <= size) {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, at);
    const line = buffer.subarray(0, bytesRead);
    const end = line.indexOf(0x0a);
    return end === -1 ? line : line.subarray(0, end);
  }
  const pieces: Buffer[] = [];
  let length = 0;
  for (let position = at; position < size && length <= MAX_LINE_BYTES; ) {
    const chunk = Buffer.alloc(Math.min(CHUNK, size - position));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) break;
    const end = chunk.subarray(0, bytesRead).indexOf(0x0a);
    if (end !== -1) {
      pieces.push(chunk.subarray(0, end));
      length += end;
      return length > MAX_LINE_BYTES ? undefined : Buffer.concat(pieces, length);
    }
    pieces.push(chunk.subarray(0, bytesRead));
    length += bytesRead;
    position += bytesRead;
  }
  return length > MAX_LINE_BYTES ? undefined : Buffer.concat(pieces, length);
}

/** A line's JSON, or undefined when it is not JSON (a torn last line). */
export function parseLine(line: Buffer | undefined): unknown {
  if (line === undefined) return undefined;
  try {
    return JSON.parse(line.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
