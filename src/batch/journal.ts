// The batch record in --out: every file and batch id as it is created, and every result as it is downloaded, flushed to disk.
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
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
 * batches.ndjson and batch-results.ndjson in DIR, both append-only and fsynced after every append, so
 * that after a kill at any moment the record says which batches exist (a resume reattaches to them
 * instead of paying again) and which results arrived (a resumed conversation takes them again).
 */
export class BatchJournal {
  readonly #journal: FileHandle;
  readonly #results: FileHandle;
  #chain: Promise<void> = Promise.resolve();
  /** Results downloaded by earlier runs into DIR, by custom id (the raw output or error line). */
  readonly previous: Map<string, string>;
  /** Batches earlier runs left unsettled. */
  readonly unsettled: readonly Unsettled[];
  /** Rounds earlier runs submitted. */
  readonly rounds: number;

  private constructor(journal: FileHandle, results: FileHandle, previous: Map<string, string>, unsettled: Unsettled[], rounds: number) {
    this.#journal = journal;
    this.#results = results;
    this.previous = previous;
    this.unsettled = unsettled;
    this.rounds = rounds;
  }

  /** Opens the record in `dir`: a resume reads what is there, a fresh run starts both files empty. */
  static async open(dir: string, resume: boolean): Promise<BatchJournal> {
    const journalPath = join(dir, JOURNAL_FILE);
    const resultsPath = join(dir, RESULTS_FILE);
    const previous = new Map<string, string>();
    const unsettled: Unsettled[] = [];
    let rounds = 0;
    if (resume) {
      for (const line of await wholeLines(resultsPath)) {
        const id = customIdOfLine(line);
        if (id !== undefined) previous.set(id, line);
      }
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
    return new BatchJournal(await open(journalPath, mode), await open(resultsPath, mode), previous, unsettled, rounds);
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
