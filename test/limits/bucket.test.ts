// RateBucket: calls spaced so that no window, of a second or of a minute, sees more than the rate allows.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { BURST_MS, RateBucket } from '../../src/limits/bucket.js';
import { SAFETY } from '../../src/limits/limiter.js';

/** The most calls at `times` (sorted) that fall in any half-open window [t, t + width). */
function busiestWindow(times: readonly number[], width: number): number {
  let most = 0;
  let first = 0;
  for (let last = 0; last < times.length; last += 1) {
    while ((times[last] as number) - (times[first] as number) >= width) first += 1;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

/** Lets calls arriving at `arrivals` through the bucket, each as soon as it may go, in order. */
function admit(bucket: RateBucket, arrivals: readonly number[], size: (i: number) => number = () => 1): number[] {
  const sent: number[] = [];
  let now = 0;
  for (const [i, arrival] of arrivals.entries()) {
    now = Math.max(now, arrival);
    now += bucket.waitFor(size(i), now);
    expect(bucket.waitFor(size(i), now)).toBe(0);
    bucket.take(size(i), now);
    sent.push(now);
  }
  return sent;
}

describe('RateBucket', () => {
  it('lets the first call go at once and spaces the next ones evenly, BURST_MS early at most, with no saved-up burst', () => {
    const bucket = new RateBucket(600, 0); // one every 100 ms
    expect(bucket.waitFor(1, 0)).toBe(0);
    bucket.take(1, 0);
    expect(bucket.waitFor(1, 0)).toBe(100 - BURST_MS);
    expect(bucket.waitFor(1, 100 - BURST_MS)).toBe(0);
    bucket.take(1, 100 - BURST_MS);
    // Owed from 100, not from when it went: the spacing holds on average.
    expect(bucket.waitFor(1, 100 - BURST_MS)).toBe(100);
    // Idle for ten seconds saves BURST_MS at most: after one call, the next waits 100 - 2 × BURST_MS.
    bucket.take(1, 10_000);
    expect(bucket.waitFor(1, 10_000)).toBe(100 - 2 * BURST_MS);
  });

  it('charges the real cost once it is known: more pushes the next call back, less brings it forward but never as credit', () => {
    const bucket = new RateBucket(60_000, 0); // 1 a millisecond
    bucket.take(800, 0);
    expect(bucket.waitFor(1, 0)).toBe(800 - BURST_MS);
    bucket.adjust(-600, 50); // it used 200: owed until 200
    expect(bucket.waitFor(1, 50)).toBe(200 - BURST_MS - 50);
    bucket.adjust(1000, 60); // it used 1,000 more after all: owed until 1,200
    expect(bucket.waitFor(1, 60)).toBe(1200 - BURST_MS - 60);
    bucket.adjust(-100_000, 70); // a refund bigger than the debt is not credit: clear from now less BURST_MS
    expect(bucket.waitFor(1, 70)).toBe(0);
    bucket.take(100, 70);
    expect(bucket.waitFor(1, 70)).toBe(100 - 2 * BURST_MS);
  });

  it('refuses a rate that is not a positive number', () => {
    expect(() => new RateBucket(0, 0)).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`perMinute\` to be a positive number, got \`0\`]`);
    expect(() => new RateBucket(Number.NaN, 0)).toThrow(TypeError);
  });

  /** Arrival times: bursts of calls at the same instant, calls close together, long idle stretches. */
  const arrivals = fc
    .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 10_000 })), { minLength: 1, maxLength: 400 })
    .map((gaps) => gaps.map((_, i) => gaps.slice(0, i + 1).reduce((a, b) => a + b, 0)));

  const perMinute = fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 12_000 }));

  /** The most calls at `perMinute` that the bucket lets into a window of `width` ms: its share of the window plus the burst, rounded up. */
  const allowed = (perMinute: number, width: number): number => Math.ceil((perMinute * (width + 2 * BURST_MS)) / 60_000 - 1e-9);

  test.prop([perMinute, arrivals], { numRuns: 300 })('for any arrival pattern, no window of 1 s or of 60 s gets more calls than its share of the rate and the burst, rounded up', (perMinute, times) => {
    const sent = admit(new RateBucket(perMinute, 0), times);
    expect(busiestWindow(sent, 1000)).toBeLessThanOrEqual(allowed(perMinute, 1000));
    expect(busiestWindow(sent, 60_000)).toBeLessThanOrEqual(allowed(perMinute, 60_000));
  });

  test.prop([fc.integer({ min: 1, max: 12_000 }), arrivals], { numRuns: 300 })(
    'aimed at 95% of a configured limit (as the limiter aims), never over the configured limit in any 1 s or 60 s window, rounded up to a whole call',
    (configured, times) => {
      const sent = admit(new RateBucket(configured * SAFETY, 0), times);
      expect(busiestWindow(sent, 1000)).toBeLessThanOrEqual(Math.ceil(configured / 60));
      expect(busiestWindow(sent, 60_000)).toBeLessThanOrEqual(configured);
    },
  );

  test.prop([fc.integer({ min: 1000, max: 2_000_000 }), arrivals, fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1 })])(
    'for tokens: no 1 s or 60 s window gets more than its share of the rate and the burst, plus the one call that went last',
    (perMinute, times, sizes) => {
      const size = (i: number): number => sizes[i % sizes.length] as number;
      const sent = admit(new RateBucket(perMinute, 0), times, size);
      for (const width of [1000, 60_000]) {
        for (let first = 0; first < sent.length; first += 1) {
          let total = 0;
          for (let i = first; i < sent.length && (sent[i] as number) < (sent[first] as number) + width; i += 1) {
            total += size(i);
            expect(total - size(i)).toBeLessThanOrEqual((perMinute * (width + 2 * BURST_MS)) / 60_000 + 1e-6);
          }
        }
      }
    },
  );
});
