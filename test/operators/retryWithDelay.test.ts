import { defer, of, throwError } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { LONG_RETRY_AFTER_MS } from '../../src/limits/pause.js';
import { retryAfterMs } from '../../src/models/openai.js';
import { retryDelay, retryWithDelay } from '../../src/operators/retryWithDelay.js';

const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
const transient = new ModelError('server', 'boom', { status: 500 });
const fixedRandom = () => 0.5;

describe('retryWithDelay', () => {
  it('passes values and completion through when nothing fails', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b|');
      expectObservable(source.pipe(retryWithDelay({ maxRetries: 3, delayMs: 10, random: fixedRandom }))).toBe('-a-b|');
    });
  });

  it('completes at once on an empty source', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('|').pipe(retryWithDelay({ maxRetries: 3, delayMs: 10 }))).toBe('|');
    });
  });

  it('retries a transient error after an equal-jitter backoff that doubles', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-#', undefined, transient);
      // random 0.5 → wait 0.75 · delay · 2^(n-1): 7.5→8, 15, 30
      const result = source.pipe(retryWithDelay({ maxRetries: 3, delayMs: 10, random: fixedRandom }));
      expectObservable(result).toBe('- 8ms - 15ms - 30ms -#', undefined, transient);
      expectSubscriptions(source.subscriptions).toBe(['^!', '- 8ms ^!', '- 8ms - 15ms ^!', '- 8ms - 15ms - 30ms ^!']);
    });
  });

  it('waits exactly the second that `Retry-After: 1` and an HTTP date a second ahead ask for', () => {
    const now = Date.UTC(2026, 11, 7, 12, 0, 0);
    for (const header of ['1', new Date(now + 1000).toUTCString()]) {
      newScheduler().run(({ expectObservable }) => {
        const limited = new ModelError('rate_limit', '429', { status: 429, retryAfterMs: retryAfterMs(new Headers({ 'retry-after': header }), now) });
        let attempt = 0;
        const source = defer(() => (attempt++ === 0 ? throwError(() => limited) : of('a')));
        expectObservable(source.pipe(retryWithDelay({ maxRetries: 2, delayMs: 10, random: () => 0.99 }))).toBe('1000ms (a|)');
      });
    }
  });

  describe('stopping (regression: a stop waited for the end of a long Retry-After)', () => {
    const limited = (ms: number) => new ModelError('rate_limit', '429', { status: 429, retryAfterMs: ms });
    /** A Drain-like stop the test sets at a virtual moment. */
    const stop = () => {
      const controller = new AbortController();
      const state = { deadline: undefined as number | undefined, signal: controller.signal };
      return { state, at: (deadline: number) => ((state.deadline = deadline), controller.abort()) };
    };

    it('ends a wait at once, as aborted, when the stop comes and the wait would outlast the deadline', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const { state, at } = stop();
        let attempt = 0;
        const source = defer(() => (attempt++ === 0 ? throwError(() => limited(300_000)) : of('a')));
        expectObservable(source.pipe(retryWithDelay({ maxRetries: 2, delayMs: 10, stopping: state }))).toBe('2000ms #', undefined, expect.objectContaining({ kind: 'aborted' }) as unknown);
        // The stop arrives 2 s into the 300 s wait, with 30 s of grace.
        cold('2000ms x').subscribe(() => at(32_000));
      });
    });

    it('lets a wait that ends within the grace finish', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const { state, at } = stop();
        let attempt = 0;
        const source = defer(() => (attempt++ === 0 ? throwError(() => limited(5000)) : of('a')));
        expectObservable(source.pipe(retryWithDelay({ maxRetries: 2, delayMs: 10, stopping: state }))).toBe('5000ms (a|)');
        cold('1000ms x').subscribe(() => at(31_000));
      });
    });

    it('does not start a wait past a deadline already set', () => {
      newScheduler().run(({ expectObservable }) => {
        const { state, at } = stop();
        at(1000);
        const source = throwError(() => limited(5000));
        expectObservable(source.pipe(retryWithDelay({ maxRetries: 2, delayMs: 10, stopping: state }))).toBe('#', undefined, expect.objectContaining({ kind: 'aborted' }) as unknown);
      });
    });
  });

  it('honours Retry-After instead of the backoff', () => {
    newScheduler().run(({ expectObservable }) => {
      const limited = new ModelError('rate_limit', '429', { status: 429, retryAfterMs: 3000 });
      let attempt = 0;
      const source = defer(() => (attempt++ === 0 ? throwError(() => limited) : of('a')));
      const result = source.pipe(retryWithDelay({ maxRetries: 2, delayMs: 10, random: () => 0 }));
      expectObservable(result).toBe('3000ms (a|)');
    });
  });

  it('does not retry permanent errors', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const denied = new ModelError('auth', '401', { status: 401 });
      const source = cold('-#', undefined, denied);
      expectObservable(source.pipe(retryWithDelay({ maxRetries: 5, delayMs: 10 }))).toBe('-#', undefined, denied);
      expectSubscriptions(source.subscriptions).toBe('^!');
    });
  });

  it('does not retry unknown errors (bugs are not transient)', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const bug = new TypeError('undefined is not a function');
      expectObservable(cold('#', undefined, bug).pipe(retryWithDelay({ maxRetries: 5, delayMs: 10 }))).toBe('#', undefined, bug);
    });
  });

  it('gives up after maxRetries and reports each retry', () => {
    const seen: [number, number][] = [];
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('#', undefined, transient);
      const result = source.pipe(retryWithDelay({ maxRetries: 2, delayMs: 100, random: () => 0, onRetry: (_e, n, ms) => seen.push([n, ms]) }));
      expectObservable(result).toBe('50ms 100ms #', undefined, transient);
    });
    expect(seen).toEqual([
      [1, 50],
      [2, 100],
    ]);
  });

  it('mirrors a never-ending source and unsubscribes from it', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a--');
      expectObservable(source.pipe(retryWithDelay({ maxRetries: 1, delayMs: 10 })), '^---!').toBe('-a--');
      expectSubscriptions(source.subscriptions).toBe('^---!');
    });
  });

  it('propagates an error thrown by the onRetry callback', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const oops = new Error('callback failed');
      const result = cold('#', undefined, transient).pipe(
        retryWithDelay({
          maxRetries: 2,
          delayMs: 10,
          onRetry: () => {
            throw oops;
          },
        }),
      );
      expectObservable(result).toBe('#', undefined, oops);
    });
  });

  it('checks its options up front', () => {
    expect(() => retryWithDelay({ maxRetries: -1, delayMs: 1 })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`maxRetries\` to be a non-negative integer, got \`-1\` (number)]`);
    expect(() => retryWithDelay({ maxRetries: 1, delayMs: Number.NaN })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`delayMs\` to be a non-negative number, got \`NaN\` (number)]`);
  });
});

describe('retryDelay', () => {
  it('stays within [ceiling/2, ceiling] and caps at maxDelayMs', () => {
    for (const r of [0, 0.25, 0.999]) {
      const wait = retryDelay(transient, 10, { delayMs: 1000, maxDelayMs: 5000 }, () => r);
      expect(wait).toBeGreaterThanOrEqual(2500);
      expect(wait).toBeLessThanOrEqual(5000);
    }
  });

  it('never waits less than Retry-After', () => {
    for (const ms of [2000, LONG_RETRY_AFTER_MS, 3 * LONG_RETRY_AFTER_MS]) for (const r of [0, 0.5, 0.99]) expect(retryDelay(new ModelError('rate_limit', '429', { retryAfterMs: ms }), 1, { delayMs: 10 }, () => r)).toBeGreaterThanOrEqual(ms);
  });

  it('spreads the retries of a Retry-After that pauses the whole model, and takes a shorter one exactly', () => {
    const hinted = (ms: number) => new ModelError('rate_limit', '429', { retryAfterMs: ms });
    const spread = [0, 0.5, 0.99].map((r) => retryDelay(hinted(LONG_RETRY_AFTER_MS), 1, { delayMs: 10 }, () => r));
    expect(new Set(spread).size).toBe(3);
    for (const wait of spread) expect(wait - LONG_RETRY_AFTER_MS).toBeLessThanOrEqual(1000);
    for (const ms of [0, 1, 250, 999, 1000, 2000, LONG_RETRY_AFTER_MS - 1]) for (const r of [0, 0.5, 0.99]) expect(retryDelay(hinted(ms), 1, { delayMs: 10 }, () => r)).toBe(ms);
  });
});
