// The batch record in --out: every file and batch id as it is created, and every result as it is downloaded, flushed to disk.
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { byteLines } from '../streams/ndjson.js';
import { customIdOfLine } from './lines.js';

export const JOURNAL_FILE = 'batches.ndjson';
export const RESULTS_FILE = 'batch-results.ndjson';

/** One line of batches.ndjson. `provider` is the endpoint's key (no secret in it). */
export type JournalEntry =
  | { readonly event: 'uploaded'; readonly round: number; readonly provider: string; readonly file_id: string; readonly requests: number; readonly bytes: number; readonly at: string }
  | { readonly event: 'creating'; readonly provider: string; readonly file_id: string; readonly at: string }
  | { readonly event: 'created'; readonly provider: string; readonly file_id: string; readonly batch_id: string; readonly at: string }
  | { readonly event: 'finished'; readonly batch_id: string; readonly status: string; readonly at: string }
  | { readonly event: 'downloaded'; readonly batch_id: string; readonly lines: number; readonly at: string };

/** A batch the provider may still be running for us: created (or maybe created) and not yet downloaded. */
export interface Unsettled {
  readonly provider: string;
  readonly fileId: string;
  /** Undefined when the run stopped between asking for the batch and hearing its id. */
  readonly batchId: string | undefined;
}

/** Reads an append-only file's whole lines, cutting a torn last line off the file itself (so appends start clean). */
async function wholeLines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? '' : Promise.reject(error)));
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) await truncate(path, Buffer.byteLength(text.slice(0, end)));
  return text.slice(0, end).split('\n').filter((line) => line !== '');
}

/**
 * Where each result line of batch-results.ndjson starts and how long it is, by custom id: read a line at
 * a time, so a resume over a large record keeps offsets in memory, not the results.
 */
async function indexResults(path: string): Promise<Map<string, { offset: number; length: number }>> {
  const index = new Map<string, { offset: number; length: number }>();
  let end = 0;
  try {
    for await (const line of byteLines(createReadStream(path))) {
      if (!line.terminated) break;
      end = line.offset + line.length;
      const id = line.overlong ? undefined : customIdOfLine(line.bytes.toString('utf8'));
      // The line without its newline.
      if (id !== undefined) index.set(id, { offset: line.offset, length: line.length - 1 });
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return index;
    throw error;
  }
  // A torn last line is cut, so the next append starts a line of its own.
  await truncate(path, end);
  return index;
}

/**
 * batches.ndjson and batch-results.ndjson in DIR, both append-only and fsynced after every append, so
 * that after a kill at any moment the record says which batches exist (a resume reattaches to them
 * instead of paying again) and which results arrived (a resumed conversation takes them again).
 */
export class BatchJournal {
  readonly #journal: FileHandle;
  readonly #results: FileHandle;
  #chain: Promise<void> = Promise.resolve();
  /** Where the results earlier runs downloaded into DIR are, by custom id. */
  readonly #previous: Map<string, { offset: number; length: number }>;
  readonly #resultsPath: string;
  /** Batches earlier runs left unsettled. */
  readonly unsettled: readonly Unsettled[];
  /** Rounds earlier runs submitted. */
  readonly rounds: number;

  private constructor(journal: FileHandle, results: FileHandle, resultsPath: string, previous: Map<string, { offset: number; length: number }>, unsettled: Unsettled[], rounds: number) {
    this.#journal = journal;
    this.#results = results;
    this.#resultsPath = resultsPath;
    this.#previous = previous;
    this.unsettled = unsettled;
    this.rounds = rounds;
  }

  /** Opens the record in `dir`: a resume reads what is there, a fresh run starts both files empty. */
  static async open(dir: string, resume: boolean): Promise<BatchJournal> {
    const journalPath = join(dir, JOURNAL_FILE);
    const resultsPath = join(dir, RESULTS_FILE);
    let previous = new Map<string, { offset: number; length: number }>();
    const unsettled: Unsettled[] = [];
    let rounds = 0;
    if (resume) {
      previous = await indexResults(resultsPath);
      const creating = new Map<string, Unsettled>();
      const created = new Map<string, Unsettled>();
      for (const line of await wholeLines(journalPath)) {
        let entry: JournalEntry;
        try {
          entry = JSON.parse(line) as JournalEntry;
        } catch {
          continue;
        }
        if (entry.event === 'uploaded') rounds = Math.max(rounds, entry.round);
        else if (entry.event === 'creating') creating.set(entry.file_id, { provider: entry.provider, fileId: entry.file_id, batchId: undefined });
        else if (entry.event === 'created') {
          creating.delete(entry.file_id);
          created.set(entry.batch_id, { provider: entry.provider, fileId: entry.file_id, batchId: entry.batch_id });
        } else if (entry.event === 'downloaded') created.delete(entry.batch_id);
      }
      unsettled.push(...creating.values(), ...created.values());
    }
    const mode = resume ? 'a' : 'w';
    return new BatchJournal(await open(journalPath, mode), await open(resultsPath, mode), resultsPath, previous, unsettled, rounds);
  }

  /** Results of earlier runs not yet taken. */
  get previousCount(): number {
    return this.#previous.size;
  }

  /**
   * Takes the result line an earlier run downloaded for `customId` (each is taken once), or undefined.
   * Read from disk on the spot: only lines written before this run opened the record are indexed.
   */
  takePrevious(customId: string): string | undefined {
    const where = this.#previous.get(customId);
    if (where === undefined) return undefined;
    this.#previous.delete(customId);
    const fd = openSync(this.#resultsPath, 'r');
    try {
      const bytes = Buffer.alloc(where.length);
      readSync(fd, bytes, 0, where.length, where.offset);
      return bytes.toString('utf8');
    } finally {
      closeSync(fd);
    }
  }

  /** Appends one entry and flushes it to disk before resolving. */
  record(entry: JournalEntry): Promise<void> {
    return this.#append(this.#journal, `${JSON.stringify(entry)}\n`);
  }

  /** Appends result lines (output and error lines as the provider wrote them) and flushes them. */
  results(lines: readonly string[]): Promise<void> {
    return lines.length === 0 ? Promise.resolve() : this.#append(this.#results, lines.map((line) => `${line}\n`).join(''));
  }

  #append(handle: FileHandle, text: string): Promise<void> {
    const next = this.#chain.then(async () => {
      await handle.appendFile(text, 'utf8');
      await handle.datasync();
    });
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.#chain;
    await Promise.all([this.#journal.close(), this.#results.close()]);
  }
}
