// NDJSON to a stream (stdout): honours write() backpressure and turns a closed pipe into a quiet stop.
import type { Writable } from 'node:stream';
import { lineWriter, type LineWriter } from './batcher.js';

/** The reader went away (`| head`): not an error, the run just stops producing. */
export class BrokenPipeError extends Error {
  override readonly name = 'BrokenPipeError';
}

/**
 * Writes batches to `stream`, waiting for 'drain' when `write()` returns false, and rejecting with
 * BrokenPipeError once the reader has closed the pipe (EPIPE), so the pipeline can stop instead of
 * paying for conversations nobody reads.
 */
export function streamTarget(stream: Writable): (text: string) => Promise<void> {
  let broken: Error | undefined;
  // A closed reader is a quiet stop; anything else (ENOSPC, EIO) is a real error and must not exit 0.
  const classify = (error: NodeJS.ErrnoException): Error =>
    error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED' ? new BrokenPipeError('output closed') : error;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    broken ??= classify(error);
  });
  return (text) =>
    new Promise<void>((resolve, reject) => {
      if (broken !== undefined || stream.destroyed) {
        reject(broken ?? new BrokenPipeError('output closed'));
        return;
      }
      const onError = (): void => {
        stream.off('drain', onDrain);
        reject(broken ?? new BrokenPipeError('output closed'));
      };
      const onDrain = (): void => {
        stream.off('error', onError);
        resolve();
      };
      // Node calls the write callback before it emits 'error', so classify here too.
      const accepted = stream.write(text, (error) => {
        if (!error) return;
        broken ??= classify(error);
        onError();
      });
      if (accepted) {
        resolve();
        return;
      }
      stream.once('drain', onDrain);
      stream.once('error', onError);
    });
}

/** Lines to a stream (stdout), batched; `push(JSON.stringify(value))` per record. */
export const streamWriter = (stream: Writable, options: { readonly chunkBytes?: number } = {}): LineWriter => lineWriter(streamTarget(stream), options);
