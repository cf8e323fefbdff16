// A round's requests cut into input files that each stay within the provider's limits.
import type { BatchLine, InputFile } from './provider.js';

export interface FileLimits {
  /** Requests per input file at most (OpenAI: 50 000). */
  readonly maxRequests: number;
  /** Bytes per input file at most, newlines included (OpenAI: 200 MB). */
  readonly maxBytes: number;
}

/**
 * Cuts `lines` into files of at most `maxRequests` lines and `maxBytes` bytes, in order; `name(i)` names
 * the i-th. A line longer than `maxBytes` on its own cannot go anywhere: it is an error, not a file.
 *
 * @example
 * splitFiles(lines, { maxRequests: 50_000, maxBytes: 200e6 }, (i) => `round-3-${i}.jsonl`)
 */
export function splitFiles(lines: readonly BatchLine[], limits: FileLimits, name: (index: number) => string): InputFile[] {
  if (!Number.isInteger(limits.maxRequests) || limits.maxRequests < 1) throw new TypeError(`Expected \`maxRequests\` to be a positive integer, got \`${String(limits.maxRequests)}\``);
  if (!(limits.maxBytes > 0)) throw new TypeError(`Expected \`maxBytes\` to be a positive number, got \`${String(limits.maxBytes)}\``);
  const files: InputFile[] = [];
  let current: BatchLine[] = [];
  let bytes = 0;
  const close = (): void => {
    if (current.length === 0) return;
    files.push({ name: name(files.length), lines: current, bytes });
    current = [];
    bytes = 0;
  };
  for (const line of lines) {
    const size = Buffer.byteLength(line.text) + 1;
    if (size > limits.maxBytes) throw new RangeError(`batch request ${line.customId} is ${size} bytes, over the ${limits.maxBytes}-byte file limit`);
    if (current.length >= limits.maxRequests || bytes + size > limits.maxBytes) close();
    current.push(line);
    bytes += size;
  }
  close();
  return files;
}

/** The text of an input file: its lines, each ended by a newline. */
export const fileText = (file: InputFile): string => file.lines.map((line) => `${line.text}\n`).join('');
