// Where export writes: buffered lines to stdout or to train/validation/test .jsonl files, and statistics.json replaced atomically.
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { ConfigError } from '../errors.js';
import { streamTarget } from '../sinks/stdout.js';
import { SPLITS, type SplitName } from './samples.js';

/** The files `export --out DIR` writes (`.jsonl`: OpenAI's upload wants that extension). */
export const EXPORT_FILES = { train: 'train.jsonl', validation: 'validation.jsonl', test: 'test.jsonl', statistics: 'statistics.json' } as const;

/**
 * Lines gathered into chunks of about `chunkBytes` and written one chunk at a time, waiting for the target
 * (which waits for 'drain'), so a slow reader slows the export instead of filling memory. A closed pipe
 * rejects with BrokenPipeError (see `streamTarget`).
 */
export class LineWriter {
  #parts: string[] = [];
  #bytes = 0;
  readonly #target: (text: string) => Promise<void>;
  readonly #chunkBytes: number;

  constructor(target: (text: string) => Promise<void>, chunkBytes = 256 * 1024) {
    this.#target = target;
    this.#chunkBytes = chunkBytes;
  }

  /** Queues one line; waits only when a chunk is full and goes out. */
  async write(line: string): Promise<void> {
    this.#parts.push(line, '\n');
    this.#bytes += line.length + 1;
    if (this.#bytes >= this.#chunkBytes) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const text = this.#parts.join('');
    this.#parts = [];
    this.#bytes = 0;
    await this.#target(text);
  }
}

/** One writer per split: stdout for every split, or one file each. */
export interface SplitOutput {
  write(split: SplitName, line: string): Promise<void>;
  /** Writes what is buffered and closes the files. */
  close(): Promise<void>;
}

/** Every split to one stream (stdout). */
export function streamOutput(stream: Writable): SplitOutput {
  const writer = new LineWriter(streamTarget(stream));
  return {
    write: (_split, line) => writer.write(line),
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
    writers[split] = new LineWriter(streamTarget(stream));
  }
  return {
    write: (split, line) => writers[split].write(line),
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

/** Writes JSON to `path` through a temporary file and a rename, so the file is whole or absent. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`, 'utf8');
  await rename(temporary, path);
}
