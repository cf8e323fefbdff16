import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import type { LimiterState } from '../../src/limits/limiter.js';
import { figures, formatLine, type ProgressSource } from '../../src/sinks/progress.js';

const state = (throttled: boolean): LimiterState => ({ limit: 4, inFlight: 4, waiting: throttled ? 3 : 0, pausedForMs: 0, pausedBy: undefined, breaker: 'closed', throttled });

function source(overrides: Partial<{ interactions: number; begun: number; failures: number; rejected: number; retries: number; tokens: number; cost: number | undefined; read: number; size: number | undefined; throttled: string[]; exhausted: boolean }> = {}): ProgressSource {
  const o = { interactions: 120, begun: 140, failures: 3, rejected: 0, retries: 7, tokens: 48_000, cost: 0.42, read: 500, size: 1000 as number | undefined, throttled: [] as string[], exhausted: false, ...overrides };
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
    limiters: () => new Map([['a', { name: 'openai/gpt-4o', state: state(o.throttled.includes('openai/gpt-4o')) }], ['b', { name: 'openai/gpt-4o-mini', state: state(o.throttled.includes('openai/gpt-4o-mini')) }]]),
  };
}

describe('progress figures', () => {
  it('estimates the total from the tasks begun per byte read, and the ETA from the settling rate', () => {
    // 140 begun in half the file: ~280 in all; 123 settled in 10 s, 157 to go at 12.3/s.
    const f = figures(source(), 0, 10_000);
    expect(f).toEqual({ elapsed_s: 10, interactions: 120, failures: 3, rejected: 0, retries: 7, interactions_per_s: 12, tokens_per_s: 4800, cost_usd: 0.42, input_read: 0.5, total: 280, total_exact: false, eta_s: 13, throttled: [] });
  });

  it('knows the total exactly once every task of the input has been read', () => {
    // The share is conversations settled, not bytes read.
    const f = figures(source({ read: 1000, begun: 40, interactions: 10, failures: 0, exhausted: true }), 0, 5_000);
    expect(f).toMatchObject({ input_read: 1, total: 40, total_exact: true, eta_s: 15 });
    expect(formatLine(f, 10)).toMatch(/^\[###-------\] 25% {2}10\/40 done /);
  });

  it('regression: a small file read in one chunk is not an exact total while its tasks are still being expanded', () => {
    const f = figures(source({ read: 1000, begun: 40, interactions: 10, failures: 0, exhausted: false }), 0, 5_000);
    expect(f).toMatchObject({ input_read: 1, total: 40, total_exact: false });
    expect(formatLine(f, 10)).toMatch(/10\/~40 done/);
  });

  it('counts conversations the judge rejected as settled, and shows them', () => {
    // 10 accepted + 10 rejected of 40: half done, and the rate of the first 5 s leaves 5 s.
    const f = figures(source({ read: 1000, begun: 40, interactions: 10, failures: 0, rejected: 10, exhausted: true }), 0, 5_000);
    expect(f).toMatchObject({ total: 40, eta_s: 5, rejected: 10 });
    expect(formatLine(f, 10)).toMatch(/^\[#####-----\] 50% .* 10 rejected /);
  });

  it('has no ETA before the first conversation settles', () => {
    expect(figures(source({ interactions: 0, failures: 0 }), 0, 5_000).eta_s).toBeNull();
  });

  it('has no ETA or share for stdin, and no cost when a model has no price', () => {
    const f = figures(source({ size: undefined, cost: undefined }), 0, 2000);
    expect(f).toMatchObject({ input_read: null, eta_s: null, cost_usd: null });
  });

  it('names the throttled models', () => {
    expect(figures(source({ throttled: ['openai/gpt-4o'] }), 0, 1000).throttled).toEqual(['openai/gpt-4o']);
  });

  test.prop([fc.nat(10_000_000), fc.nat(10_000_000), fc.integer({ min: 1, max: 10_000_000 }), fc.nat(1000), fc.nat(1000)])('keeps the share in [0, 1], the total at least what settled, the ETA non-negative', (read, size, elapsed, begun, settled) => {
    const f = figures(source({ read, size, begun: Math.max(begun, settled), interactions: settled, failures: 0 }), 0, elapsed);
    if (f.total !== null) expect(f.total).toBeGreaterThanOrEqual(settled);
    expect(formatLine(f)).toMatch(/^(\[[#-]{20}\] (\d|[1-9]\d|100)% {2})?\d[\d,]*(\/~?[\d,]+)? done/);
    if (f.input_read !== null) {
      expect(f.input_read).toBeGreaterThanOrEqual(0);
      expect(f.input_read).toBeLessThanOrEqual(1);
    }
    if (f.eta_s !== null) expect(f.eta_s).toBeGreaterThanOrEqual(0);
  });
});

describe('progress line', () => {
  it('shows a bar, counts, rates, cost, ETA and throttled models', () => {
    const line = formatLine(figures(source({ throttled: ['openai/gpt-4o'] }), 0, 65_000), 10);
    expect(line).toBe('[####------] 43%  120/~280 done  3 failed  7 retries  1.8/s  738 tok/s  $0.42  ETA 1m23s  throttled: openai/gpt-4o');
  });

  it('shows elapsed time instead of an ETA when the input size is unknown', () => {
    expect(formatLine(figures(source({ size: undefined, cost: undefined }), 0, 3_700_000))).toBe('120 done  3 failed  7 retries  0/s  13 tok/s  1h01m elapsed');
  });
});
