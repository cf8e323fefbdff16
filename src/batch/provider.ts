// What a batch API offers (OpenAI's files and batches endpoints), as the round runner uses it.
import type { ChatModel, ChatRequest } from '../chat.js';

/** A batch's life as OpenAI names it; `completed`, `failed`, `expired` and `cancelled` are final. */
export type BatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

export const FINAL_STATUSES: ReadonlySet<string> = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** A batch as the provider reports it. */
export interface BatchInfo {
  readonly id: string;
  readonly status: string;
  readonly inputFileId: string;
  readonly outputFileId: string | undefined;
  readonly errorFileId: string | undefined;
  readonly counts: { readonly total: number; readonly completed: number; readonly failed: number } | undefined;
  /** Why a batch failed as a whole (its `errors.data[].message`), when it says. */
  readonly reason: string | undefined;
}

/** One request of a round: its id in the batch files, its JSONL line, and what it was made from (sim answers from that). */
export interface BatchLine {
  readonly customId: string;
  /** The whole JSONL line, newline excluded. */
  readonly text: string;
  readonly model: ChatModel;
  readonly request: ChatRequest;
}

/** One input file of a round: the lines of one model at one endpoint, within the per-file limits. */
export interface InputFile {
  readonly name: string;
  readonly lines: readonly BatchLine[];
  readonly bytes: number;
}

/**
 * A provider's batch endpoints. Every method may reject with a ModelError; `signal` aborts what is in
 * flight. `findByInputFile` answers, after a crash between asking for a batch and recording its id,
 * whether the provider created it.
 */
export interface BatchProvider {
  /** Groups requests by endpoint: lines of providers with different keys never share a file. */
  readonly key: string;
  upload(file: InputFile, signal: AbortSignal): Promise<string>;
  create(inputFileId: string, signal: AbortSignal): Promise<BatchInfo>;
  retrieve(batchId: string, signal: AbortSignal): Promise<BatchInfo>;
  /** A file's text (output, error or input file). */
  content(fileId: string, signal: AbortSignal): Promise<string>;
  findByInputFile(inputFileId: string, signal: AbortSignal): Promise<BatchInfo | undefined>;
}
