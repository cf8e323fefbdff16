// Where export writes: buffered lines to stdout or to train/validation/test .jsonl files.
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { ConfigError } from '../errors.js';
import { lineWriter, type LineWriter } from '../sinks/batcher.js';
import { streamTarget } from '../sinks/stdout.js';
import { SPLITS, type SplitName } from './samples.js';

/** The files `export --out DIR` writes (`.jsonl`: OpenAI's upload wants that extension). */
export const EXPORT_FILES = { train: 'train.jsonl', validation: 'validation.jsonl', test: 'test.jsonl', statistics: 'statistics.json' } as const;

/** Export writes a chunk of lines at a time (its loop writes one line after the other). */
const CHUNK_BYTES = 256 * 1024;

/** One writer per split: stdout for every split, or one file each. */
export interface SplitOutput {
  write(split: SplitName, line: string): Promise<void>;
  /** Writes what is buffered and closes the files. */
  close(): Promise<void>;
}

/** Every split to one stream (stdout). */
export function streamOutput(stream: Writable): SplitOutput {
  const writer = lineWriter(streamTarget(stream), { chunkBytes: CHUNK_BYTES });
  return {
    write: (_split, line) => writer.push(line),
    close: () => writer.flush(),
  };
}

/** Names of export's files already in DIR. */
export async function existingExport(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of Object.values(EXPORT_FILES)) {
    if (await stat(join(dir, name)).then(() => true, () => false)) found.push(name);
  }
  return found;
}

/**
 * train.jsonl, validation.jsonl and test.jsonl in DIR (all three, empty when a split gets nothing, so
 * scripts can count on them). A DIR that already holds export files is refused unless `force`; with
 * `force` they are all removed first, statistics.json included, so no file of the earlier export is left
 * beside the new ones (when statistics go elsewhere with `--stats`, or a `--strict` run stops early).
 */
export async function dirOutput(dir: string, force: boolean): Promise<SplitOutput> {
  await mkdir(dir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`--out ${dir}: cannot create the directory (${error.code ?? 'error'})`);
  });
  const existing = await existingExport(dir);
  if (existing.length > 0 && !force) throw new ConfigError(`--out ${dir}: the directory already holds ${existing.join(', ')}; use --force to overwrite them`);
  for (const name of existing) {
    await rm(join(dir, name), { force: true }).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(`--out ${dir}: cannot remove the earlier ${name} (${error.code ?? 'error'})`);
    });
  }
  const streams = {} as Record<SplitName, WriteStream>;
  const writers = {} as Record<SplitName, LineWriter>;
  for (const split of SPLITS) {
    const stream = createWriteStream(join(dir, EXPORT_FILES[split]));
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (error: NodeJS.ErrnoException) => reject(new ConfigError(`--out ${dir}: cannot write ${EXPORT_FILES[split]} (${error.code ?? 'error'})`)));
    });
    streams[split] = stream;
    writers[split] = lineWriter(streamTarget(stream), { chunkBytes: CHUNK_BYTES });
  }
  return {
    write: (split, line) => writers[split].push(line),
    close: async () => {
      for (const split of SPLITS) await writers[split].flush();
      await Promise.all(
        SPLITS.map(
          (split) =>
            new Promise<void>((resolve, reject) => {
              const stream = streams[split];
              stream.once('error', reject);
              stream.end(() => resolve());
            }),
        ),
      );
    },
  };
}
