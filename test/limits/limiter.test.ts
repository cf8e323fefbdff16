// The per-model limiter in virtual time: buckets, adaptive concurrency, pauses on evidence, circuit breaker.
import { fc, test } from '@fast-check/vitest';
import { VirtualTimeScheduler, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { FatalError, ModelError } from '../../src/errors.js';
import { estimateTokens, limited } from '../../src/limits/limited.js';
import { BURST_MS } from '../../src/limits/bucket.js';
import { ModelLimiter, SAFETY, type Permit } from '../../src/limits/limiter.js';
import { DENSE_REFUSALS, LONG_RETRY_AFTER_MS } from '../../src/limits/pause.js';
import type { ChatModel } from '../../src/chat.js';

/** A limiter on virtual time, and a log of when each acquire was granted. */
function setup(options: Partial<ConstructorParameters<typeof ModelLimiter>[1]> = {}) {
  const scheduler = new VirtualTimeScheduler();
  const limiter = new ModelLimiter('sim/test', { maxConcurrency: 4, ...options, scheduler });
  const granted: Array<{ id: number; at: number; permit: Permit }> = [];
  const errors: Array<{ id: number; error: unknown; at: number }> = [];
  const acquire = (id: number, tokens = 10, at = 0): void => {
    scheduler.schedule(() => {
      limiter.acquire(tokens).subscribe({ next: (permit) => granted.push({ id, at: scheduler.now(), permit }), error: (error: unknown) => errors.push({ id, error, at: scheduler.now() }) });
    }, at);
  };
  const at = (delay: number, work: () => void): void => void scheduler.schedule(work, delay);
  const permitOf = (id: number): Permit => {
    const found = granted.find((g) => g.id === id);
    if (found === undefined) throw new Error(`acquire ${id} was not granted`);
    return found.permit;
  };
  return { scheduler, limiter, granted, errors, acquire, at, permitOf, run: () => scheduler.flush() };
}

describe('ModelLimiter', () => {
  it('spaces calls to the requests-per-minute limit', () => {
    // Configured limits are aimed at with a 5% margin: 2 / SAFETY a minute configured is 2 a minute sent.
    const t = setup({ rpm: 2 / SAFETY, maxConcurrency: 10 });
    for (let i = 0; i < 4; i += 1) t.acquire(i);
    t.at(1, () => {
      for (const g of t.granted) g.permit.release({ ok: true });
    });
    t.run();
    // One at once, then one every 30 s (each BURST_MS early at most): no burst of a minute's worth.
    const expected = [0, 30_000 - BURST_MS, 60_000 - BURST_MS, 90_000 - BURST_MS];
    expect(t.granted.map((g) => g.id)).toEqual([0, 1, 2, 3]);
    for (const [i, g] of t.granted.entries()) expect(Math.abs(g.at - (expected[i] as number))).toBeLessThanOrEqual(1);
  });

  it('holds calls back by tokens per minute, estimated first and corrected by the real usage', () => {
    // 1,000 tokens a second: a call estimated at 800 tokens keeps the next one waiting 800 ms (less BURST_MS).
    const t = setup({ tpm: 60_000 / SAFETY, maxConcurrency: 10 });
    t.acquire(0, 800);
    t.acquire(1, 800, 100);
    // The first call used only 200 tokens: 600 come back at t=50, so the second goes at 200, not 800.
    t.at(50, () => t.permitOf(0).release({ ok: true, tokens: 200 }));
    t.run();
    expect(t.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, 200 - BURST_MS]]);
  });

  it('lets at most `limit` calls in flight', () => {
    const t = setup({ maxConcurrency: 4 });
    for (let i = 0; i < 6; i += 1) t.acquire(i);
    t.run();
    expect(t.granted.map((g) => g.id)).toEqual([0, 1, 2, 3]);
    expect(t.limiter.state).toMatchObject({ limit: 4, inFlight: 4, waiting: 2 });
    t.permitOf(0).release({ ok: true });
    expect(t.granted.map((g) => g.id)).toEqual([0, 1, 2, 3, 4]);
  });

  /** Runs `n` calls one after the other; `overloaded(i)` says which get a 429. */
  const drive = (t: ReturnType<typeof setup>, n: number, overloaded: (i: number, limit: number) => boolean, from = 0): number[] => {
    const limits: number[] = [];
    for (let i = from; i < from + n; i += 1) {
      t.acquire(i);
      t.run();
      const limit = t.limiter.state.limit;
      t.permitOf(i).release(overloaded(i, limit) ? { ok: false, overloaded: true } : { ok: true });
      limits.push(t.limiter.state.limit);
    }
    return limits;
  };

  it('follows a real limit down: refusals that fall with the load halve the limit until they stop', () => {
    const t = setup({ maxConcurrency: 64, breakerThreshold: 1_000_000 });
    // A server that takes 10 calls in flight: above that, the excess share is refused.
    const limits = drive(t, 2000, (i, limit) => (i % 64) / 64 < Math.max(0, 1 - 10 / limit));
    expect(limits.at(-1)).toBeLessThanOrEqual(16);
    expect(Math.min(...limits)).toBeGreaterThanOrEqual(4);
  });

  it('is not talked down by random 429s that do not depend on its load', () => {
    const t = setup({ maxConcurrency: 64, breakerThreshold: 1_000_000 });
    // One call in ten refused, whatever the limit.
    const limits = drive(t, 3000, (i) => i % 10 === 3);
    const late = limits.slice(-1000);
    expect(late.reduce((sum, l) => sum + l, 0) / late.length).toBeGreaterThan(40);
  });

  it('grows back when refusals stop', () => {
    const t = setup({ maxConcurrency: 64, breakerThreshold: 1_000_000 });
    drive(t, 300, (i, limit) => limit > 8 && i % 2 === 0);
    const low = t.limiter.state.limit;
    // Additive increase: one more per window of max(8, limit) completions.
    const limits = drive(t, 3000, () => false, 300);
    expect(low).toBeLessThan(64);
    expect(limits.every((limit, i) => i === 0 || limit - (limits[i - 1] as number) <= 1)).toBe(true);
    expect(t.limiter.state.limit).toBe(64);
  });

  test.prop([fc.array(fc.constantFrom('ok', 'overload', 'fail'), { maxLength: 200 }), fc.integer({ min: 1, max: 64 })])(
    'keeps the limit within [1, maxConcurrency] whatever the outcomes',
    (outcomes, max) => {
      const t = setup({ maxConcurrency: max, breakerThreshold: 1_000_000 });
      for (const [i, outcome] of outcomes.entries()) {
        t.acquire(i);
        t.run();
        const permit = t.granted.find((g) => g.id === i)?.permit;
        permit?.release(outcome === 'ok' ? { ok: true } : { ok: false, overloaded: outcome === 'overload' });
        expect(t.limiter.state.limit).toBeGreaterThanOrEqual(1);
        expect(t.limiter.state.limit).toBeLessThanOrEqual(max);
        expect(t.limiter.state.inFlight).toBeLessThanOrEqual(Math.max(1, t.limiter.state.limit) + max);
      }
    },
  );

  it("learns the provider's limit from x-ratelimit headers, and waits for the reset when nothing remains", () => {
    const t = setup({ maxConcurrency: 10 });
    t.acquire(0);
    // 120 a minute (114 aimed at): one every ~526 ms from then on.
    t.at(1, () => t.permitOf(0).release({ ok: true, rateLimit: { limitRequests: 120 } }));
    for (let i = 1; i < 4; i += 1) t.acquire(i, 10, 2);
    t.at(100, () => {
      for (const g of t.granted.slice(1)) g.permit.release({ ok: true });
    });
    t.run();
    const gaps = t.granted.slice(1).map((g, i, all) => g.at - (i === 0 ? 2 : (all[i - 1] as { at: number }).at));
    // The first gap may be BURST_MS short (the bucket was new), the others are the spacing, to the millisecond.
    expect(Math.abs((gaps[1] as number) - (60_000 / 114 - BURST_MS))).toBeLessThanOrEqual(1);
    expect(gaps.slice(2).every((gap) => Math.abs(gap - 60_000 / 114) <= 1)).toBe(true);

    const u = setup({ maxConcurrency: 10 });
    u.acquire(0);
    u.at(5, () => u.permitOf(0).release({ ok: true, rateLimit: { remainingRequests: 0, resetRequestsMs: 2000 } }));
    u.acquire(1, 10, 6);
    u.run();
    expect(u.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, 2005]]);
  });

  it('a lone refusal with `Retry-After: 1` delays no other caller', () => {
    const t = setup({ maxConcurrency: 8, breakerThreshold: 100 });
    t.acquire(0);
    t.at(10, () => t.permitOf(0).release({ ok: false, overloaded: true, retryAfterMs: 1000 }));
    t.acquire(1, 10, 20);
    t.acquire(2, 10, 500);
    t.run();
    expect(t.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, 20], [2, 500]]);
    expect(t.limiter.state).toMatchObject({ pausedForMs: 0, pausedBy: undefined });
  });

  it(`makes every caller wait out a Retry-After of ${LONG_RETRY_AFTER_MS / 1000} s or more: a quota, not a window`, () => {
    const t = setup({ maxConcurrency: 8, breakerThreshold: 100 });
    t.acquire(0);
    t.at(10, () => t.permitOf(0).release({ ok: false, overloaded: true, retryAfterMs: LONG_RETRY_AFTER_MS }));
    t.at(11, () => expect(t.limiter.state.pausedBy).toBe('retry_after'));
    t.acquire(1, 10, 20);
    t.acquire(2, 10, 500);
    t.run();
    expect(t.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, LONG_RETRY_AFTER_MS + 10], [2, LONG_RETRY_AFTER_MS + 10]]);
  });

  it(`pauses every caller when ${DENSE_REFUSALS} of the last 16 calls were refused, for the hint of the last refusal`, () => {
    const t = setup({ maxConcurrency: 32, breakerThreshold: 1000 });
    for (let i = 0; i < 16; i += 1) t.acquire(i);
    // Four answers, then refusals with `Retry-After: 1`: the twelfth makes the window dense.
    t.at(10, () => {
      for (let i = 0; i < 4; i += 1) t.permitOf(i).release({ ok: true });
      for (let i = 4; i < 4 + DENSE_REFUSALS - 1; i += 1) t.permitOf(i).release({ ok: false, overloaded: true, retryAfterMs: 1000 });
      expect(t.limiter.state.pausedBy).toBeUndefined();
    });
    t.at(20, () => {
      t.permitOf(4 + DENSE_REFUSALS - 1).release({ ok: false, overloaded: true, retryAfterMs: 1000 });
      expect(t.limiter.state).toMatchObject({ pausedBy: 'dense_refusals', pausedForMs: 1000 });
    });
    t.acquire(100, 10, 30);
    t.run();
    expect(t.granted.find((g) => g.id === 100)?.at).toBe(1020);
  });

  test.prop([fc.array(fc.boolean(), { minLength: 1, maxLength: 300 }).filter((refused) => refused.every((r, i) => !r || refused.slice(Math.max(0, i - 15), i + 1).filter(Boolean).length < DENSE_REFUSALS))])(
    'never pauses the model for short hints while fewer than the dense share of recent calls were refused',
    (refused) => {
      const t = setup({ maxConcurrency: 4, breakerThreshold: 1_000_000 });
      for (const [i, r] of refused.entries()) {
        t.acquire(i);
        t.run();
        t.permitOf(i).release(r ? { ok: false, overloaded: true, retryAfterMs: 1000 } : { ok: true });
        expect(t.limiter.state.pausedBy).toBeUndefined();
      }
    },
  );

  it('pauses every caller when a refusal says nothing remains in the x-ratelimit headers', () => {
    const t = setup({ maxConcurrency: 8, breakerThreshold: 100 });
    t.acquire(0);
    t.at(10, () => t.permitOf(0).release({ ok: false, overloaded: true, retryAfterMs: 1000, rateLimit: { remainingTokens: 0, resetTokensMs: 7000 } }));
    t.acquire(1, 10, 20);
    t.run();
    expect(t.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, 7010]]);
  });

  it('keeps the slot of a call refused with a Retry-After until then, so the line does not rush in to be refused', () => {
    const t = setup({ maxConcurrency: 2, breakerThreshold: 100 });
    for (let i = 0; i < 5; i += 1) t.acquire(i);
    t.at(10, () => t.permitOf(0).release({ ok: false, overloaded: true, retryAfterMs: 300 }));
    t.at(20, () => t.permitOf(1).release({ ok: true }));
    t.at(400, () => t.permitOf(2).release({ ok: true }));
    t.run();
    // 1's success frees its slot at once (2 goes at 20); 0's 429 holds its slot until 310 (then 3 goes).
    expect(t.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, 0], [2, 20], [3, 310], [4, 400]]);
  });

  it('keeps that slot without a timer: with nobody waiting, nothing is left scheduled to hold the run open', () => {
    const t = setup({ maxConcurrency: 2, breakerThreshold: 100 });
    t.acquire(0);
    t.run();
    t.permitOf(0).release({ ok: false, overloaded: true, retryAfterMs: 300 });
    expect(t.scheduler.actions).toHaveLength(0);
    expect(t.limiter.state).toMatchObject({ inFlight: 0, throttled: false });
    // One slot of two is kept until 300: a second caller still goes at once, a third waits for 300.
    t.acquire(1, 10, 10);
    t.acquire(2, 10, 20);
    t.run();
    expect(t.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, 10], [2, 300]]);
  });

  it('frees the slot of an overload without Retry-After, and of other failures, at once', () => {
    const t = setup({ maxConcurrency: 1, breakerThreshold: 100 });
    for (let i = 0; i < 3; i += 1) t.acquire(i);
    t.at(10, () => t.permitOf(0).release({ ok: false, overloaded: true }));
    t.at(20, () => t.permitOf(1).release({ ok: false, failing: true, retryAfterMs: 200 }));
    t.run();
    expect(t.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, 10], [2, 20]]);
  });

  it('opens the breaker after failures in a row with no success for a cool-down, probes one call at a time, and closes on success', () => {
    const t = setup({ maxConcurrency: 4, breakerThreshold: 3, breakerCooldownMs: 1000 });
    for (let i = 0; i < 6; i += 1) t.acquire(i);
    // Three failures in a row soon after the start (the last success, or the start, less than a cool-down ago): still closed.
    t.at(5, () => {
      for (let i = 0; i < 3; i += 1) t.permitOf(i).release({ ok: false, failing: true });
    });
    t.at(6, () => expect(t.limiter.state.breaker).toBe('closed'));
    // More failures once a cool-down has passed without a success: open, and a pause for everyone.
    t.at(1500, () => {
      for (let i = 3; i < 6; i += 1) t.permitOf(i).release({ ok: false, failing: true });
      expect(t.limiter.state.breaker).toBe('open');
    });
    for (let i = 6; i < 9; i += 1) t.acquire(i, 10, 1501);
    t.run();
    expect(t.limiter.state.breaker).toBe('half-open');
    // Nothing during the cool-down; then a single probe.
    expect(t.granted.filter((g) => g.id >= 6).map((g) => [g.id, g.at])).toEqual([[6, 2500]]);
    t.permitOf(6).release({ ok: true });
    expect(t.limiter.state.breaker).toBe('closed');
    expect(t.granted.map((g) => g.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('gives up with a FatalError when probes keep failing past give_up', () => {
    const t = setup({ maxConcurrency: 1, breakerThreshold: 1, breakerCooldownMs: 1000, breakerGiveUpMs: 10_000 });
    for (let i = 0; i < 500; i += 1) t.acquire(i);
    // Every call fails soon after it is granted: after a cool-down without a success the breaker opens,
    // probes after 1, 2, 4, 8 s keep failing, and past give_up the calls still waiting fail.
    const failing = (): void => {
      for (const g of t.granted.splice(0)) t.at(1, () => g.permit.release({ ok: false, overloaded: true }));
    };
    for (let ms = 0; ms < 40_000; ms += 10) t.at(ms, failing);
    t.run();
    expect(t.errors.length).toBeGreaterThan(0);
    expect(t.errors.every((e) => e.error instanceof FatalError)).toBe(true);
    expect(String((t.errors[0]?.error as Error).message)).toMatch(/sim\/test: every call failed for \d+ s/);
    // Once dead, new callers are refused at once.
    let refused: unknown;
    t.limiter.acquire(1).subscribe({ error: (error: unknown) => (refused = error) });
    expect(refused).toBeInstanceOf(FatalError);
  });

  describe('waits: capped, and said with what and until when (regression: a 100-hour reset stalled the run silently)', () => {
    const notices = (options: Partial<ConstructorParameters<typeof ModelLimiter>[1]> = {}) => {
      const said: string[] = [];
      return { said, t: setup({ maxWaitMs: 600_000, onNotice: (message) => said.push(message), ...options }) };
    };

    it('ignores a reset header over max_wait_s on an answer, and says so once', () => {
      const { said, t } = notices();
      t.acquire(0);
      t.acquire(1);
      t.at(1, () => t.permitOf(0).release({ ok: true, rateLimit: { remainingRequests: 0, resetRequestsMs: 100 * 3_600_000 } }));
      t.at(2, () => t.permitOf(1).release({ ok: true, rateLimit: { remainingRequests: 0, resetRequestsMs: 100 * 3_600_000 } }));
      t.acquire(2, 10, 3);
      t.run();
      expect(t.granted.find((g) => g.id === 2)?.at).toBe(3);
      expect(said).toEqual(['sim/test: ignoring an x-ratelimit-reset header of 100 h 0 min, over personaflow.max_wait_s (10 min 0 s)']);
    });

    it('waits out a reset within max_wait_s, saying until when', () => {
      const { said, t } = notices();
      t.acquire(0);
      t.at(1000, () => t.permitOf(0).release({ ok: true, rateLimit: { remainingRequests: 0, resetRequestsMs: 360_000 } }));
      t.acquire(1, 10, 2000);
      t.run();
      expect(t.granted.find((g) => g.id === 1)?.at).toBe(361_000);
      expect(said).toEqual([`sim/test: waiting 6 min 0 s, until ${new Date(361_000).toISOString().slice(0, 19)}Z: x-ratelimit-remaining is 0, so every call to this model waits for the reset the headers name`]);
    });

    it('says a long Retry-After once, not once per refused call, and not a short one at all', () => {
      const { said, t } = notices();
      for (let i = 0; i < 3; i += 1) t.acquire(i);
      t.at(10, () => t.permitOf(0).release({ ok: false, overloaded: true, retryAfterMs: 1000 }));
      t.at(20, () => t.permitOf(1).release({ ok: false, overloaded: true, retryAfterMs: 90_000 }));
      t.at(30, () => t.permitOf(2).release({ ok: false, overloaded: true, retryAfterMs: 80_000 }));
      t.run();
      expect(said).toEqual([`sim/test: waiting 1 min 30 s, until ${new Date(90_020).toISOString().slice(0, 19)}Z: a refusal's Retry-After, which pauses every call to this model`]);
    });
  });

  it('regression: stop(deadline) fails at once the calls that would wait past it, and lets the others go', () => {
    const t = setup({ maxConcurrency: 2 });
    t.acquire(0);
    t.at(1000, () => t.permitOf(0).release({ ok: true, rateLimit: { remainingRequests: 0, resetRequestsMs: 540_000 } }));
    t.acquire(1, 10, 1500);
    // The run stops at 2 s with 30 s of grace: the 9-minute pause outlasts it.
    t.at(2000, () => t.limiter.stop(32_000));
    t.acquire(2, 10, 3000);
    t.run();
    expect(t.errors.map((e) => [e.id, e.at, (e.error as ModelError).kind])).toEqual([
      [1, 2000, 'aborted'],
      [2, 3000, 'aborted'],
    ]);
    expect(t.granted.map((g) => g.id)).toEqual([0]);
    // Nothing is left scheduled to hold the process open for the rest of the pause.
    expect(t.scheduler.now()).toBe(3000);
  });

  it('after stop, a call that can go within the grace still goes', () => {
    const t = setup({ maxConcurrency: 1 });
    t.acquire(0);
    t.acquire(1);
    t.at(10, () => t.limiter.stop(30_000));
    t.at(500, () => t.permitOf(0).release({ ok: true }));
    t.run();
    expect(t.granted.map((g) => [g.id, g.at])).toEqual([[0, 0], [1, 500]]);
    expect(t.errors).toEqual([]);
  });

  it('forgets a caller that gives up its place in line', () => {
    const t = setup({ maxConcurrency: 1 });
    t.acquire(0);
    t.run();
    const subscription = t.limiter.acquire(1).subscribe(() => t.granted.push({ id: 99, at: 0, permit: { release: () => undefined } }));
    expect(t.limiter.state.waiting).toBe(1);
    subscription.unsubscribe();
    expect(t.limiter.state.waiting).toBe(0);
    t.permitOf(0).release({ ok: true });
    expect(t.granted.map((g) => g.id)).toEqual([0]);
  });
});

describe('limited', () => {
  const model = (complete: ChatModel['complete']): ChatModel => ({ provider: 'sim', model: 'm', complete });

  it('tells the limiter what happened: tokens, overloads and Retry-After', async () => {
    const limiter = new ModelLimiter('sim/m', { maxConcurrency: 4 });
    const ok = limited(model(() => Promise.resolve({ content: 'hi', usage: { input: 5, output: 7 } })), limiter);
    await ok.complete({ module: 'assistant', messages: [{ role: 'user', content: 'x' }] }, new AbortController().signal);
    expect(limiter.state).toMatchObject({ inFlight: 0, limit: 4 });
    const rateLimited = limited(model(() => Promise.reject(new ModelError('rate_limit', '429', { status: 429, retryAfterMs: 1500, rateLimit: { remainingRequests: 0, resetRequestsMs: 4000 } }))), limiter);
    await expect(rateLimited.complete({ module: 'assistant', messages: [] }, new AbortController().signal)).rejects.toMatchObject({ kind: 'rate_limit' });
    expect(limiter.state).toMatchObject({ pausedBy: 'rate_limit_headers', inFlight: 0 });
    expect(limiter.state.pausedForMs).toBeGreaterThan(3000);
  });

  it('regression: a refusal that asks for more than max_wait_s fails its call for good, and pauses nothing', async () => {
    const limiter = new ModelLimiter('sim/m', { maxConcurrency: 4, maxWaitMs: 600_000 });
    const week = limited(model(() => Promise.reject(new ModelError('rate_limit', 'sim/m: rate limited (429)', { status: 429, retryAfterMs: 7 * 86_400_000 }))), limiter);
    const error = await week.complete({ module: 'assistant', messages: [] }, new AbortController().signal).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'rate_limit', transient: false, message: 'sim/m: rate limited (429); it asks to wait 168 h 0 min, over personaflow.max_wait_s (10 min 0 s): the call fails instead of stalling the run' });
    const reset = limited(model(() => Promise.reject(new ModelError('rate_limit', '429', { status: 429, rateLimit: { remainingRequests: 0, resetRequestsMs: 100 * 3_600_000 } }))), limiter);
    await expect(reset.complete({ module: 'assistant', messages: [] }, new AbortController().signal)).rejects.toMatchObject({ transient: false });
    expect(limiter.state).toMatchObject({ pausedBy: undefined, pausedForMs: 0, inFlight: 0 });
  });

  it('aborts a call still waiting for its permit, without calling the model', async () => {
    const limiter = new ModelLimiter('sim/m', { maxConcurrency: 1 });
    let calls = 0;
    let finish: (() => void) | undefined;
    const slow = limited(
      model(() => {
        calls += 1;
        return new Promise((resolve) => (finish = () => resolve({ content: 'x', usage: { input: 1, output: 1 } })));
      }),
      limiter,
    );
    const first = slow.complete({ module: 'assistant', messages: [] }, new AbortController().signal);
    const controller = new AbortController();
    const second = slow.complete({ module: 'assistant', messages: [] }, controller.signal);
    controller.abort();
    await expect(second).rejects.toMatchObject({ kind: 'aborted' });
    expect(limiter.state.waiting).toBe(0);
    finish?.();
    await first;
    expect(calls).toBe(1);
  });

  it('estimates a call as prompt characters / 4 plus its completion budget', async () => {
    expect(estimateTokens({ module: 'assistant', messages: [{ role: 'user', content: 'x'.repeat(400) }], maxCompletionTokens: 50 })).toBe(150);
    expect(estimateTokens({ module: 'assistant', messages: [] })).toBe(256);
    expect(await firstValueFrom(new ModelLimiter('a', { maxConcurrency: 1 }).acquire(1))).toHaveProperty('release');
  });
});
