// pullThrough: demand-driven bridge from an async iterable into an RxJS pipeline, with bounded items in flight.
/* eslint-disable @typescript-eslint/require-await -- test sources are async generators over in-memory data: no await, like a stream whose data is ready */
import { fc, test } from '@fast-check/vitest';
import { concatMap, delay, lastValueFrom, map, mergeMap, of, pipe, take, tap, toArray, type OperatorFunction } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { pullThrough } from '../../src/streams/pull.js';

/** An async generator over `items` that records what it was asked for and whether its `finally` ran. */
function instrumented<T>(items: Iterable<T>, options: { failAfter?: number; error?: Error } = {}) {
  const state = { pulled: 0, closed: false };
  async function* source(): AsyncGenerator<T> {
    try {
      for (const item of items) {
        if (options.failAfter !== undefined && state.pulled === options.failAfter) throw options.error ?? new Error('source failed');
        state.pulled += 1;
        yield item;
      }
    } finally {
      state.closed = true;
    }
  }
  return { source: source(), state };
}

function* naturals(): Generator<number> {
  for (let i = 0; ; i += 1) yield i;
}

const identity = <T>(): OperatorFunction<T, T> => map((x: T) => x);
const run = <T, R>(source: AsyncIterable<T>, window: number, pipeline: OperatorFunction<T, R>): Promise<R[]> =>
  lastValueFrom(pullThrough(source, window, pipeline).pipe(toArray()));

describe('pullThrough', () => {
  it('completes with nothing for an empty source, and does not need to close it', async () => {
    const { source, state } = instrumented<number>([]);
    expect(await run(source, 4, identity())).toEqual([]);
    expect(state).toEqual({ pulled: 0, closed: true });
  });

  it('passes one value through the pipeline', async () => {
    const { source } = instrumented(['a']);
    expect(await run(source, 1, map((s: string) => s.toUpperCase()))).toEqual(['A']);
  });

  it.each([1, 2, 3, 16])('passes many values through in order with window %i and an ordered pipeline', async (window) => {
    const { source, state } = instrumented([1, 2, 3, 4, 5, 6, 7]);
    expect(await run(source, window, concatMap((x: number) => of(x * 10).pipe(delay(0))))).toEqual([10, 20, 30, 40, 50, 60, 70]);
    expect(state).toEqual({ pulled: 7, closed: true });
  });

  it('accepts any async iterable, not only generators', async () => {
    const iterable: AsyncIterable<number> = {
      [Symbol.asyncIterator]() {
        let i = 0;
        return { next: () => Promise.resolve(i < 3 ? { done: false, value: i++ } : { done: true, value: undefined }) };
      },
    };
    expect(await run(iterable, 2, identity())).toEqual([0, 1, 2]);
  });

  it('reads nothing before it is subscribed (cold)', async () => {
    const { source, state } = instrumented([1, 2, 3]);
    const output = pullThrough(source, 2, identity());
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.pulled).toBe(0);
    expect(await lastValueFrom(output.pipe(toArray()))).toEqual([1, 2, 3]);
  });

  test.prop([fc.array(fc.integer(), { maxLength: 40 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.scheduler()])(
    'outputs the input multiset and never has more than `window` items pulled but not yet emitted',
    async (items, window, concurrency, s) => {
      let emitted = 0;
      let maxInFlight = 0;
      let closed = false;
      async function* source(): AsyncGenerator<number> {
        try {
          let pulled = 0;
          for (const item of items) {
            pulled += 1;
            maxInFlight = Math.max(maxInFlight, pulled - emitted);
            yield item;
          }
        } finally {
          closed = true;
        }
      }
      // Random completion order: the scheduler releases the work items in an order fast-check chooses.
      const work = (x: number) => s.schedule(Promise.resolve(x), `work ${x}`);
      const output: number[] = [];
      const done = new Promise<void>((resolve, reject) => {
        pullThrough(source(), window, mergeMap(work, concurrency)).subscribe({
          next: (x) => {
            emitted += 1;
            output.push(x);
          },
          error: reject,
          complete: resolve,
        });
      });
      await s.waitFor(done);
      expect([...output].sort((a, b) => a - b)).toEqual([...items].sort((a, b) => a - b));
      expect(maxInFlight).toBeLessThanOrEqual(window);
      expect(closed).toBe(true);
    },
  );

  test.prop([fc.array(fc.integer(), { maxLength: 25 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 10 })], { numRuns: 30 })(
    'with small random timer delays: same multiset, and never more than `window` items pulled but not yet out of the pipeline',
    async (items, window, concurrency, delays) => {
      let out = 0;
      let pulled = 0;
      let maxInFlight = 0;
      async function* source(): AsyncGenerator<number> {
        for (const item of items) {
          pulled += 1;
          maxInFlight = Math.max(maxInFlight, pulled - out);
          yield item;
        }
      }
      const work = async (x: number, i: number): Promise<number> => {
        await new Promise((resolve) => setTimeout(resolve, delays[i % delays.length]));
        return x;
      };
      // Counted at the end of the pipeline itself: the credit for the next pull is returned right after it.
      const pipeline = pipe(
        mergeMap(work, concurrency),
        tap(() => (out += 1)),
      );
      const output = await run(source(), window, pipeline);
      expect([...output].sort((a, b) => a - b)).toEqual([...items].sort((a, b) => a - b));
      expect(maxInFlight).toBeLessThanOrEqual(window);
    },
  );

  it.each([
    ['a synchronous', identity<string>()],
    ['an asynchronous', mergeMap(async (x: string) => Promise.resolve(x))],
  ])('with window 1 and %s pipeline, an item reaches the subscriber before the next one is pulled', async (_, pipeline) => {
    const { source, state } = instrumented(['a', 'b', 'c']);
    const pulledWhenReceived: number[] = [];
    await new Promise<void>((resolve, reject) => {
      pullThrough(source, 1, pipeline).subscribe({ next: () => pulledWhenReceived.push(state.pulled), error: reject, complete: resolve });
    });
    expect(pulledWhenReceived).toEqual([1, 2, 3]);
  });

  it('propagates a source error after the values before it', async () => {
    const error = new Error('disk on fire');
    const { source, state } = instrumented([1, 2, 3, 4], { failAfter: 2, error });
    const seen: number[] = [];
    await expect(lastValueFrom(pullThrough(source, 1, map((x: number) => (seen.push(x), x))))).rejects.toBe(error);
    expect(seen).toEqual([1, 2]);
    expect(state.closed).toBe(true);
  });

  it('propagates a pipeline error and closes the source (its finally runs)', async () => {
    const { source, state } = instrumented(naturals());
    const error = new Error('projection failed');
    const pipeline = mergeMap(async (x: number) => {
      await Promise.resolve();
      if (x === 3) throw error;
      return x;
    }, 2);
    await expect(run(source, 4, pipeline)).rejects.toBe(error);
    await vi.waitFor(() => expect(state.closed).toBe(true));
    const pulled = state.pulled;
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.pulled).toBe(pulled);
  });

  it('propagates an error thrown synchronously by a pipeline callback', async () => {
    const { source, state } = instrumented(naturals());
    const pipeline = map((x: number) => {
      if (x === 1) throw new TypeError('bad item');
      return x;
    });
    await expect(run(source, 3, pipeline)).rejects.toThrow('bad item');
    await vi.waitFor(() => expect(state.closed).toBe(true));
  });

  it.each([1, 3])('stops pulling on early unsubscribe (take(2), window %i) and runs the finally', async (window) => {
    const { source, state } = instrumented(naturals());
    expect(await lastValueFrom(pullThrough(source, window, identity<number>()).pipe(take(2), toArray()))).toEqual([0, 1]);
    await vi.waitFor(() => expect(state.closed).toBe(true));
    const pulled = state.pulled;
    expect(pulled).toBeLessThanOrEqual(2 + window);
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.pulled).toBe(pulled);
  });

  it('closes the source when the subscriber unsubscribes while work is in flight', async () => {
    const { source, state } = instrumented(naturals());
    const subscription = pullThrough(source, 2, mergeMap(() => new Promise<number>(() => undefined), 2)).subscribe();
    await vi.waitFor(() => expect(state.pulled).toBe(2));
    subscription.unsubscribe();
    await vi.waitFor(() => expect(state.closed).toBe(true));
    expect(state.pulled).toBe(2);
  });

  it('terminates on a never-ending source with take(n)', async () => {
    const { source, state } = instrumented(naturals());
    const out = await lastValueFrom(pullThrough(source, 5, mergeMap(async (x: number) => x * 2, 5)).pipe(take(10), toArray()));
    expect([...out].sort((a, b) => a - b)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    await vi.waitFor(() => expect(state.closed).toBe(true));
  });

  it('pulls lazily: with window 1 the next item is read only after the previous one is out', async () => {
    const { source, state } = instrumented([1, 2, 3]);
    const log: string[] = [];
    const pipeline = mergeMap(async (x: number) => {
      log.push(`work ${x} (pulled ${state.pulled})`);
      await new Promise((resolve) => setImmediate(resolve));
      return x;
    }, 4);
    await run(source, 1, pipeline);
    expect(log).toEqual(['work 1 (pulled 1)', 'work 2 (pulled 2)', 'work 3 (pulled 3)']);
  });

  it.each<[unknown]>([[0], [-1], [1.5], [Number.NaN], [Number.POSITIVE_INFINITY], ['2'], [undefined]])('rejects window %s with a TypeError', (window) => {
    const { source, state } = instrumented([1]);
    expect(() => pullThrough(source, window as number, identity())).toThrow(TypeError);
    expect(state.pulled).toBe(0);
  });

  it('says what was wrong with the window', () => {
    const { source } = instrumented([1]);
    expect(() => pullThrough(source, 0, identity())).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`window\` to be a positive integer, got \`0\` (number)]`);
    expect(() => pullThrough(source, '4' as unknown as number, identity())).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`window\` to be a positive integer, got \`4\` (string)]`);
  });
});
