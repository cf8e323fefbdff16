// noise: texts in, noisy versions out (PersonaGym's NoiseResult), with bounded concurrency and in input order.
import { Observable, concatMap, map, mergeMap, range, toArray, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { RetryListener, UsageListener } from '../chat.js';
import type { Distractor, NoiseResult } from '../distractor/distractor.js';
import { noiseVersion } from '../distractor/turn.js';
import type { TextItem } from '../types.js';
import { retryingCall } from './retryingCall.js';

export interface NoiseOptions {
  readonly distractor: Distractor;
  readonly seed: number;
  /** Noisy versions per text, each from its own seeded draws. Default 1. */
  readonly versions?: number;
  /** Texts in flight at once. Default 16. */
  readonly concurrency?: number;
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  readonly onRetry?: RetryListener;
  readonly onUsage?: UsageListener;
  readonly scheduler?: SchedulerLike;
}

/**
 * Emits values in the order of their `index` (0, 1, 2, ...), holding back those that arrive early. The
 * buffer holds at most what is in flight upstream (bounded by the pull window).
 */
export function inOrder<T>(): OperatorFunction<{ readonly index: number; readonly value: T }, T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      const early = new Map<number, T>();
      let next = 0;
      return source.subscribe({
        next: ({ index, value }) => {
          early.set(index, value);
          while (early.has(next)) {
            const ready = early.get(next) as T;
            early.delete(next);
            next += 1;
            subscriber.next(ready);
          }
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      });
    });
}

/**
 * Noises each text `versions` times and emits, per text and in input order, its NoiseResults. Each
 * version draws from its own RNG seeded by (seed, text key, version), so results do not depend on
 * concurrency or on the other texts. Distractor model calls are retried as conversation calls are.
 *
 * ```
 * texts:   --a--b--c--|        (concurrency 2, versions 1)
 * results: -----A---BC|        (B waited for A; input order kept)
 * ```
 *
 * @example
 * pullThrough(readTexts(stream, { name }), 32, noise({ distractor, seed: 42, versions: 3, maxRetries: 3, retryDelayMs: 2000 }))
 */
export function noise(options: NoiseOptions): OperatorFunction<TextItem, readonly NoiseResult[]> {
  const versions = options.versions ?? 1;
  const concurrency = options.concurrency ?? 16;
  if (!Number.isInteger(versions) || versions < 1) throw new TypeError(`Expected \`versions\` to be a positive integer, got \`${String(versions)}\``);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be a positive integer, got \`${String(concurrency)}\``);
  const call = retryingCall(options);
  return (source) =>
    source.pipe(
      map((item, index) => ({ item, index })),
      mergeMap(
        ({ item, index }) =>
          range(0, versions).pipe(
            concatMap((version) => noiseVersion(options.distractor, item.text, { seed: options.seed, key: item.key, purpose: `noise/v${version}`, persona: item.persona, call })),
            toArray(),
            map((value) => ({ index, value })),
          ),
        concurrency,
      ),
      inOrder(),
    );
}
