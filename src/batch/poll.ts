// Waiting for a batch to finish: retrieve it with a growing pause between looks, abortable, on any clock.
import { ModelError } from '../errors.js';
import { sleep as pause } from '../sleep.js';
import { FINAL_STATUSES, type BatchInfo } from './provider.js';

/** How often to look: the first pause, the factor it grows by, the longest pause (milliseconds). */
export interface PollOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  /** Waits `ms` or rejects when `signal` aborts; a test passes a virtual clock. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Each look at the batch (its state, for progress). */
  readonly onState?: (batch: BatchInfo) => void;
}

/** setTimeout as a promise that an abort rejects (with an aborted ModelError) and clears. */
export const sleep = (ms: number, signal: AbortSignal): Promise<void> => pause(ms, signal, 'batch polling aborted');

/**
 * Retrieves the batch until its status is final and returns it: pauses of `initialMs`, then × `factor`
 * each look, at most `maxMs`. A failed look (a network error, a 5xx) is looked at again after the next
 * pause; one that cannot get better (a bad key, an unknown batch) rejects.
 *
 * @example
 * const done = await pollBatch((signal) => provider.retrieve(id, signal), { initialMs: 5000, maxMs: 60000, factor: 1.5 }, signal);
 */
export async function pollBatch(retrieve: (signal: AbortSignal) => Promise<BatchInfo>, options: PollOptions, signal: AbortSignal): Promise<BatchInfo> {
  const wait = options.sleep ?? sleep;
  let pause = options.initialMs;
  for (;;) {
    try {
      const batch = await retrieve(signal);
      options.onState?.(batch);
      if (FINAL_STATUSES.has(batch.status)) return batch;
    } catch (error) {
      if (!(error instanceof ModelError) || !error.transient) throw error;
    }
    await wait(pause, signal);
    pause = Math.min(options.maxMs, pause * options.factor);
  }
}
