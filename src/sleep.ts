// A pause that an abort ends at once: the timer cleared, the wait rejected with an aborted ModelError.
import { ModelError } from './errors.js';

/** Resolves after `ms`, or rejects with `ModelError('aborted', message)` as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal, message = 'aborted'): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ModelError('aborted', message));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new ModelError('aborted', message));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
