// Demand-driven bridge from an async iterable into an RxJS pipeline: the only place input is read.
import { Observable, Subject, concatMap, from, map, startWith, takeWhile, type OperatorFunction } from 'rxjs';

/**
 * Runs `pipeline` over the items of `source`, pulling the next item only when an earlier one has come out
 * of the pipeline. RxJS has no backpressure (`mergeMap(f, n)` buffers every waiting outer value and
 * `from(asyncIterable)` reads as fast as it can), so the pipeline is closed into a loop instead: at most
 * `window` items are between the source and the output at any time, and memory does not grow with the input.
 *
 * The pipeline must emit exactly one value per item it receives (a result or a failure record): that
 * emission is what returns the credit for the next item. Emitting fewer stalls the flow early; more lets
 * it read ahead.
 *
 * ```
 * source:   a b c d e ...            (async iterable, window = 2)
 * pulled:   a b - - c - d e          (c is read only after a's result is out)
 * output:   - - A - - B - C D E
 * ```
 *
 * @example
 * pullThrough(readTasks(file), 8, mergeMap(runTask, 8)).subscribe(write)
 *
 * @param source items to process; `return()` is called on early unsubscribe, so files are closed.
 * @param window how many items may be in flight at once (≥ the pipeline's own concurrency).
 * @param pipeline operator turning each item into exactly one output.
 * @returns the pipeline's output; errors from the source or the pipeline end it.
 */
export function pullThrough<T, R>(source: AsyncIterable<T>, window: number, pipeline: OperatorFunction<T, R>): Observable<R> {
  if (!Number.isInteger(window) || window < 1) {
    throw new TypeError(`Expected \`window\` to be a positive integer, got \`${String(window)}\` (${typeof window})`);
  }
  return new Observable<R>((subscriber) => {
    const iterator = source[Symbol.asyncIterator]();
    const credits = new Subject<void>();
    let exhausted = false;
    const items$ = credits.pipe(
      startWith(...Array.from<void>({ length: window })),
      concatMap(() => (exhausted ? [] : from(iterator.next()))),
      takeWhile((result) => {
        if (result.done === true) exhausted = true;
        return result.done !== true;
      }),
      map((result) => result.value),
    );
    const subscription = items$.pipe(pipeline).subscribe({
      // The credit goes back only after the subscriber has taken the value, so a synchronous
      // source resumed by the credit cannot put window + 1 items in flight.
      next: (value) => {
        subscriber.next(value);
        if (!subscriber.closed) credits.next();
      },
      error: (error: unknown) => subscriber.error(error),
      complete: () => subscriber.complete(),
    });
    return () => {
      subscription.unsubscribe();
      credits.complete();
      if (!exhausted) void iterator.return?.()?.catch(() => undefined);
    };
  });
}

/**
 * Ends `source` quietly once `stopped()` is true: no item is yielded after that, and an error the source
 * throws after the stop (a destroyed input stream) ends it too instead of failing the run. Used for
 * Ctrl-C: stop reading, let what is in flight finish.
 */
export async function* stoppable<T>(source: AsyncIterable<T>, stopped: () => boolean): AsyncGenerator<T> {
  try {
    for await (const item of source) {
      if (stopped()) return;
      yield item;
    }
  } catch (error) {
    if (!stopped()) throw error;
  }
}
