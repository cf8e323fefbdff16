// One input file through the batch API: upload, create, poll, download; every id on disk before the next step.
import { ModelError } from '../errors.js';
import type { BatchJournal } from './journal.js';
import { customIdOfLine, missingLine } from './lines.js';
import { pollBatch, sleep, type PollOptions } from './poll.js';
import type { BatchInfo, BatchProvider, InputFile } from './provider.js';

/** What the steps of a file need: the record, how to poll, and where to tell about states. */
export interface StepOptions {
  readonly journal: BatchJournal;
  readonly poll: PollOptions;
  /** Attempts of each control-plane call (upload, create, download) on transient errors. */
  readonly attempts: number;
  readonly round: number;
  readonly onState?: (batch: BatchInfo) => void;
}

const now = (): string => new Date().toISOString();

/** Calls `step` until it succeeds, a permanent error, or `attempts` transient ones; `before` runs ahead of every retry. */
async function withRetries<T>(step: () => Promise<T>, options: StepOptions, signal: AbortSignal, before?: () => Promise<T | undefined>): Promise<T> {
  const wait = options.poll.sleep ?? sleep;
  let pause = options.poll.initialMs;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof ModelError) || !error.transient || attempt >= options.attempts) throw error;
    }
    await wait(pause, signal);
    pause = Math.min(options.poll.maxMs, pause * options.poll.factor);
    const found = await before?.();
    if (found !== undefined) return found;
  }
}

/**
 * Asks for the batch of an uploaded file and records its id. The intent is recorded first: a process killed
 * between asking and hearing the answer leaves `creating` behind, and the resume asks the provider
 * whether that batch exists before asking for another one; so does a retry here after a failed ask.
 */
async function createBatch(provider: BatchProvider, fileId: string, options: StepOptions, signal: AbortSignal): Promise<BatchInfo> {
  await options.journal.record({ event: 'creating', provider: provider.key, file_id: fileId, at: now() });
  const batch = await withRetries(() => provider.create(fileId, signal), options, signal, () => provider.findByInputFile(fileId, signal));
  await options.journal.record({ event: 'created', provider: provider.key, file_id: fileId, batch_id: batch.id, at: now() });
  return batch;
}

/**
 * Runs one input file: upload, create, poll, download. Resolves with one result line per request of the
 * file (output and error lines, and a made-up error line for a request the provider left without one).
 */
export async function runFile(provider: BatchProvider, file: InputFile, options: StepOptions, signal: AbortSignal): Promise<string[]> {
  const fileId = await withRetries(() => provider.upload(file, signal), options, signal);
  await options.journal.record({ event: 'uploaded', round: options.round, provider: provider.key, file_id: fileId, requests: file.lines.length, bytes: file.bytes, at: now() });
  const batch = await createBatch(provider, fileId, options, signal);
  return settleBatch(provider, batch.id, file.lines.map((line) => line.customId), options, signal);
}

/**
 * Waits for a batch to end, then downloads its output and error files and records the lines (flushed)
 * before saying it was downloaded. `ids`: the requests the batch holds; unknown after a crash, they are
 * read from its input file. A request with no line (the batch expired, failed or was cancelled) gets an
 * error line, so it goes into the next round as a retry.
 */
export async function settleBatch(provider: BatchProvider, batchId: string, ids: readonly string[] | undefined, options: StepOptions, signal: AbortSignal): Promise<string[]> {
  const done = await pollBatch((s) => provider.retrieve(batchId, s), { ...options.poll, onState: options.onState }, signal);
  await options.journal.record({ event: 'finished', batch_id: batchId, status: done.status, at: now() });
  const lines: string[] = [];
  for (const fileId of [done.outputFileId, done.errorFileId]) {
    if (fileId === undefined) continue;
    const text = await withRetries(() => provider.content(fileId, signal), options, signal);
    lines.push(...text.split('\n').filter((line) => line.trim() !== ''));
  }
  const answered = new Set(lines.map(customIdOfLine));
  const expected = ids ?? (await withRetries(() => provider.content(done.inputFileId, signal), options, signal)).split('\n').map(customIdOfLine).filter((id): id is string => id !== undefined);
  const code = done.status === 'expired' ? 'batch_expired' : done.status === 'cancelled' ? 'batch_cancelled' : 'batch_failed';
  for (const id of expected) if (!answered.has(id)) lines.push(missingLine(id, code, done.reason ?? `batch ${batchId} ${done.status}`));
  await options.journal.results(lines);
  await options.journal.record({ event: 'downloaded', batch_id: batchId, lines: lines.length, at: now() });
  return lines;
}
