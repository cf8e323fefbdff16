// Where outcomes go: the Sink every generate run writes into, and the one that writes to stdout.
import type { Writable } from 'node:stream';
import { judgedRejected, type Failure, type Outcome } from '../types.js';
import type { LineWriter } from './batcher.js';
import { streamWriter } from './stdout.js';
import type { UsageTotals } from './usage.js';

/** Takes each outcome of a run, in completion order; `write` resolves when the outcome is written. */
export interface Sink {
  write(outcome: Outcome): Promise<void>;
  /** Writes what is pending and releases the files. */
  close(): Promise<void>;
}

/**
 * Interactions as NDJSON on a stream (stdout), batched with the stream's backpressure; failures go to
 * `onFailure` (the command says them on stderr), since stdout carries data only. Conversations the judge
 * rejected are counted, not written (stdout carries the dataset; `--out` keeps them in rejected.ndjson).
 * Every outcome is counted in `totals`. A closed pipe rejects with BrokenPipeError.
 */
export class StreamSink implements Sink {
  readonly #lines: LineWriter;

  constructor(
    stream: Writable,
    readonly totals: UsageTotals,
    readonly onFailure: (failure: Failure) => void,
  ) {
    this.#lines = streamWriter(stream);
  }

  write(outcome: Outcome): Promise<void> {
    this.totals.outcome(outcome);
    if (judgedRejected(outcome)) return Promise.resolve();
    if (outcome.ok) return this.#lines.push(JSON.stringify(outcome.interaction));
    this.onFailure(outcome.failure);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.#lines.flush();
  }
}
