// mergeMapLending: mergeMap with `concurrency` slots, where an inner that is only waiting lends its slot to the next value.
import { Observable, Subscription, from, type ObservableInput, type OperatorFunction } from 'rxjs';

/**
 * Frees the calling inner's slot while it waits (for a Retry-After, a backoff), so the next buffered value
 * may start; returns the function that takes the slot back when the wait is over. Lending twice, or after
 * the inner ended, does nothing.
 */
export type Lend = () => () => void;

/**
 * Like `mergeMap(project, concurrency)`, except that an inner may lend its slot while it does nothing
 * but wait. A value starts only while fewer than `concurrency` inners hold a slot; with loans out, more
 * are subscribed (those waiting), and inners taking their slots back may make the holders more than
 * `concurrency` for a while, during which nothing new starts. Values are buffered in arrival order while
 * every slot is taken, as mergeMap buffers them, so the inners subscribed at once are bounded by the
 * source: bound it (`pullThrough` does).
 *
 * ```
 * source:  a--b--c---|           (concurrency 1)
 * inner a: ---[lend .....reclaim]--A|
 * inner b:     ----B|
 * result:  ---------B--------A---C|
 * ```
 *
 * @example
 * tasks$.pipe(mergeMapLending((task, lend) => call(task).pipe(retryWithDelay({ maxRetries: 3, delayMs: 1000, lend })), 16))
 * // 16 calls in flight, not 16 conversations of which some sit out a Retry-After
 *
 * @param project maps a value and its slot's `lend` to an inner observable.
 * @param concurrency slots.
 * @returns an operator emitting every inner's values as they come.
 */
export function mergeMapLending<T, R>(project: (value: T, lend: Lend) => ObservableInput<R>, concurrency: number): OperatorFunction<T, R> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be a positive integer, got \`${String(concurrency)}\` (${typeof concurrency})`);
  return (source) =>
    new Observable<R>((subscriber) => {
      const buffer: T[] = [];
      /** Inners holding a slot. */
      let working = 0;
      /** Inners subscribed, holding a slot or not. */
      let active = 0;
      let sourceDone = false;
      let draining = false;
      const inners = new Subscription();

      const start = (value: T): void => {
        working += 1;
        active += 1;
        let holding = true;
        let ended = false;
        const lend: Lend = () => {
          if (!holding || ended) return () => undefined;
          holding = false;
          working -= 1;
          drain();
          let reclaimed = false;
          return () => {
            if (reclaimed || ended) return;
            reclaimed = true;
            holding = true;
            working += 1;
          };
        };
        let inner: Observable<R>;
        try {
          inner = from(project(value, lend));
        } catch (error) {
          subscriber.error(error);
          return;
        }
        const subscription = new Subscription();
        inners.add(subscription);
        subscription.add(
          inner.subscribe({
            next: (result) => subscriber.next(result),
            error: (error: unknown) => subscriber.error(error),
            complete: () => {
              ended = true;
              if (holding) working -= 1;
              active -= 1;
              inners.remove(subscription);
              drain();
            },
          }),
        );
      };

      // One loop at a time: an inner that completes at once, or lends at once, asks for another drain
      // while this one is starting values; the running loop picks that up instead of recursing.
      const drain = (): void => {
        if (draining) return;
        draining = true;
        try {
          while (buffer.length > 0 && working < concurrency && !subscriber.closed) start(buffer.shift() as T);
        } finally {
          draining = false;
        }
        if (sourceDone && active === 0 && buffer.length === 0) subscriber.complete();
      };

      const sourceSubscription = source.subscribe({
        next: (value) => {
          buffer.push(value);
          drain();
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          drain();
        },
      });
      return () => {
        sourceSubscription.unsubscribe();
        inners.unsubscribe();
      };
    });
}
