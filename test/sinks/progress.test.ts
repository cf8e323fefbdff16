import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import type { LimiterState } from '../../src/limits/limiter.js';
import { Progress, Timings, formatLine, type ProgressSource, type TopFailure } from '../../src/sinks/progress.js';

const state = (throttled: boolean): LimiterState => ({ limit: 4, inFlight: 4, waiting: throttled ? 3 : 0, pausedForMs: 0, pausedBy: undefined, breaker: 'closed', throttled });

type Overrides = Partial<{ interactions: number; begun: number; failures: number; rejected: number; retries: number; tokens: number; cost: number | undefined; read: number; size: number | undefined; throttled: string[]; exhausted: boolean; planned: number | undefined; counting: boolean; top: TopFailure | undefined; timings: Timings }>;

function source(overrides: Overrides = {}): ProgressSource {
  const o = { interactions: 120, begun: 140, failures: 3, rejected: 0, retries: 7, tokens: 48_000, cost: 0.42, read: 500, size: 1000 as number | undefined, throttled: [] as string[], exhausted: false, planned: 280 as number | undefined, counting: false, top: undefined as TopFailure | undefined, ...overrides };
  return {
    interactions: () => o.interactions,
    begun: () => o.begun,
    failures: () => o.failures,
    rejected: () => o.rejected,
    retries: () => o.retries,
    tokens: () => o.tokens,
    cost: () => o.cost,
    input: () => (o.size === undefined ? undefined : { read: o.read, size: o.size }),
    exhausted: () => o.exhausted,
    planned: () => o.planned,
    counting: () => o.counting,
    topFailure: () => o.top,
    ...(o.timings === undefined ? {} : { timings: o.timings }),
    limiters: () => new Map([['a', { name: 'openai/gpt-4o', state: state(o.throttled.includes('openai/gpt-4o')) }], ['b', { name: 'openai/gpt-4o-mini', state: state(o.throttled.includes('openai/gpt-4o-mini')) }]]),
  };
}

/** The figures at `now` of a run whose settled count went up steadily from `from` (ms) at `perSecond`, sampled every 250 ms. */
function steady(overrides: Overrides, options: { readonly concurrency: number; readonly perSecond: number; readonly now: number; readonly from?: number }) {
  const o = { interactions: 0, failures: 0, rejected: 0, ...overrides };
  let settled = 0;
  // A source whose counts move with the clock: the interactions settle at the rate, failures and rejections stay.
  const moving = new Progress({ ...source(o), interactions: () => settled }, 0, options.concurrency);
  for (let at = 250; at < options.now; at += 250) {
    settled = Math.floor((Math.max(0, at - (options.from ?? 0)) * options.perSecond) / 1000);
    moving.sample(at);
  }
  settled = Math.floor((Math.max(0, options.now - (options.from ?? 0)) * options.perSecond) / 1000);
  return moving.figures(options.now);
}

describe('progress figures', () => {
  it('takes the total from the count of the input, and has no ETA before the settle rate means something', () => {
    // 120 settled in 10 s, but the window has not seen enough settlements: no ETA, no projected cost.
    const f = new Progress(source(), 0, 16).figures(10_000);
    expect(f).toEqual({ elapsed_s: 10, interactions: 120, failures: 3, rejected: 0, retries: 7, interactions_per_s: 12, tokens_per_s: 4800, cost_usd: 0.42, input_read: 0.5, total: 280, total_exact: true, counting: false, eta_s: null, projected_cost_usd: null, top_failure: null, throttled: [] });
  });

  it('gives the ETA from the recent settle rate once the window holds enough, and the projected cost with it', () => {
    // 10/s from 0 s: at 30 s, 300 settled of 1,000; 700 left at 10/s is 70 s.
    const f = steady({ planned: 1000, begun: 332, cost: 3, failures: 0 }, { concurrency: 16, perSecond: 10, now: 30_000 });
    expect(f.interactions).toBe(300);
    expect(f.eta_s).toBe(70);
    // $3 for 300 settled and 16 in flight counted as half done: $3 × 1000 / 308.
    expect(f.projected_cost_usd).toBeCloseTo(9.7403, 4);
  });

  it('measures the rate over a recent window, not since the start: a run that slowed down is not timed at its old pace', () => {
    // 20/s for the first 60 s (1,200), then 5/s: the average since the start would be about 13/s.
    let settled = 0;
    const progress = new Progress({ ...source({ planned: 4000, failures: 0 }), interactions: () => settled }, 0, 8);
    for (let at = 250; at <= 180_000; at += 250) {
      settled = at <= 60_000 ? at / 50 : 1200 + (at - 60_000) / 200;
      progress.sample(at);
    }
    const f = progress.figures(180_000);
    expect(f.interactions).toBe(1800);
    // 2,200 left at 5/s: 440 s (the since-start average, 10/s, would say 220 s).
    expect(f.eta_s).toBe(440);
  });

  it('regression (issue 23): near the end, the ETA is what the longest conversation in flight still needs, not what the rate says', () => {
    // 999 of 1,000 settled, 1 s conversations mostly, one in five took 20 s; the last one began 2 s ago.
    const timings = new Timings();
    for (let i = 0; i < 100; i += 1) {
      timings.begin(`done${i}`, 0);
      timings.end(`done${i}`, i % 5 === 0 ? 20_000 : 1000);
    }
    timings.begin('last', 98_000);
    const f = steady({ planned: 1000, begun: 1000, failures: 0, timings }, { concurrency: 4, perSecond: 9.995, now: 100_000 });
    // The rate (about 10/s) says 0 s for one conversation; the 20 s ones that ran 2 s took 18 s more.
    expect(f.interactions).toBe(999);
    expect(f.eta_s).toBe(18);
  });

  it('keeps the ETA back while a conversation in flight is older than half the window: only the short ones have settled', () => {
    const timings = new Timings();
    timings.begin('slow', 0);
    const f = steady({ planned: 100_000, begun: 1000, failures: 0, timings }, { concurrency: 8, perSecond: 20, now: 30_000 });
    // 600 settled over 30 s, but the slow one has run for 30 s: a window of twice that is needed.
    expect(f.interactions).toBe(600);
    expect(f.eta_s).toBeNull();
  });

  it('has no total while the input is being counted, and says so', () => {
    const f = new Progress(source({ planned: undefined, counting: true }), 0, 4).figures(1000);
    expect(f).toMatchObject({ total: null, total_exact: false, counting: true, eta_s: null });
    expect(formatLine(f)).toMatch(/^120 done \(counting the input's tasks\) {2}3 failed/);
  });

  it('knows the total of stdin once every task was read, and adds supplement tasks as they begin', () => {
    expect(new Progress(source({ planned: undefined, size: undefined, exhausted: false }), 0, 4).figures(1000)).toMatchObject({ total: null, counting: false });
    expect(new Progress(source({ planned: undefined, size: undefined, exhausted: true, begun: 140 }), 0, 4).figures(1000)).toMatchObject({ total: 140, total_exact: true });
    expect(new Progress(source({ planned: 100, begun: 130, interactions: 110 }), 0, 4).figures(1000)).toMatchObject({ total: 130 });
  });

  it('counts conversations the judge rejected as settled, and shows them', () => {
    const f = new Progress(source({ planned: 40, begun: 40, interactions: 10, failures: 0, rejected: 10 }), 0, 4).figures(5_000);
    expect(f).toMatchObject({ total: 40, rejected: 10 });
    expect(formatLine(f, 10)).toMatch(/^\[#####-----\] 50% .* 10 rejected /);
  });

  it('shows the most common failure once a task failed', () => {
    expect(new Progress(source({ failures: 0, top: { reason: 'x', count: 1 } }), 0, 4).figures(1000).top_failure).toBeNull();
    const f = new Progress(source({ failures: 5, top: { reason: 'server error (500): overloaded', count: 4 } }), 0, 4).figures(1000);
    expect(f.top_failure).toEqual({ reason: 'server error (500): overloaded', count: 4 });
    expect(formatLine(f)).toContain('  top failure: server error (500): overloaded (4)');
  });

  it('has no share for stdin, and no cost or projected cost when a model has no price', () => {
    const f = steady({ size: undefined, cost: undefined, planned: 1000, begun: 332, failures: 0 }, { concurrency: 16, perSecond: 10, now: 30_000 });
    expect(f).toMatchObject({ input_read: null, cost_usd: null, projected_cost_usd: null });
    expect(f.eta_s).not.toBeNull();
  });

  it('names the throttled models', () => {
    expect(new Progress(source({ throttled: ['openai/gpt-4o'] }), 0, 4).figures(1000).throttled).toEqual(['openai/gpt-4o']);
  });

  test.prop([fc.nat(10_000_000), fc.nat(10_000_000), fc.array(fc.nat(2000), { minLength: 1, maxLength: 60 }), fc.nat(1000), fc.option(fc.nat(100_000), { nil: undefined })])('keeps the share in [0, 1], the total at least what settled, the ETA and projected cost non-negative', (read, size, steps, begunExtra, planned) => {
    let settled = 0;
    const progress = new Progress({ ...source({ read, size, failures: 0, planned, begun: 0 }), interactions: () => settled, begun: () => settled + begunExtra }, 0, 4);
    let f = progress.figures(1);
    steps.forEach((step, i) => {
      settled += step;
      f = progress.figures((i + 1) * 1000);
    });
    if (f.total !== null) expect(f.total).toBeGreaterThanOrEqual(settled);
    expect(formatLine(f)).toMatch(/^(\[[#-]{20}\] (\d|[1-9]\d|100)% {2})?\d[\d,]*(\/[\d,]+)? done/);
    if (f.input_read !== null) {
      expect(f.input_read).toBeGreaterThanOrEqual(0);
      expect(f.input_read).toBeLessThanOrEqual(1);
    }
    if (f.eta_s !== null) expect(f.eta_s).toBeGreaterThanOrEqual(0);
    if (f.projected_cost_usd !== null) expect(f.projected_cost_usd).toBeGreaterThanOrEqual(f.cost_usd ?? 0);
  });
});

describe('progress line', () => {
  it('shows a bar, counts, rates, cost and projected cost, ETA, the top failure and throttled models', () => {
    const f = steady({ planned: 1000, begun: 332, cost: 3, failures: 2, top: { reason: 'request timed out', count: 2 }, throttled: ['openai/gpt-4o'] }, { concurrency: 16, perSecond: 10, now: 30_000 });
    expect(formatLine(f, 10)).toBe('[###-------] 30%  300/1,000 done  2 failed  7 retries  10/s  1,600 tok/s  $3.00 of ~$9.68  ETA 1m10s  top failure: request timed out (2)  throttled: openai/gpt-4o');
  });

  it('shows elapsed time instead of an ETA when the total is unknown', () => {
    expect(formatLine(new Progress(source({ size: undefined, cost: undefined, planned: undefined }), 0, 4).figures(3_700_000))).toBe('120 done  3 failed  7 retries  0/s  13 tok/s  1h01m elapsed');
  });
});
