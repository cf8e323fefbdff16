// RedisLimits against a real redis-server, in virtual time: workers sharing one model's buckets and breaker stay under one limit together.
import { fc, test } from '@fast-check/vitest';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FatalError } from '../../src/errors.js';
import { BURST_MS } from '../../src/limits/bucket.js';
import { SAFETY } from '../../src/limits/limiter.js';
import { RedisLimits } from '../../src/queue/limits.js';
import { HAVE_REDIS, NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';

let server: RedisServer;
const connections: Redis[] = [];
let run = 0;

beforeAll(async () => {
  if (HAVE_REDIS) server = await startRedis();
});
afterAll(async () => {
  await Promise.all(connections.map((c) => c.quit()));
  await server?.stop();
});
beforeEach(() => {
  run += 1;
});

/** `n` workers, each on a connection of its own, sharing one model in virtual time. */
function workers(n: number, limits: ConstructorParameters<typeof RedisLimits>[3], clock: { now: number }): RedisLimits[] {
  return Array.from({ length: n }, () => {
    const redis = new Redis(server.url);
    connections.push(redis);
    return new RedisLimits(redis, `sim/model@#test${run}`, 'sim/model', limits, { clock: () => clock.now });
  });
}

/** The most calls at `times` (sorted) in any half-open window [t, t + width). */
function busiestWindow(times: readonly number[], width: number): number {
  let most = 0;
  let first = 0;
  for (let last = 0; last < times.length; last += 1) {
    while ((times[last] as number) - (times[first] as number) >= width) first += 1;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

/**
 * Every worker asks for a call whenever it is free (after `busy(i)` ms of its last call, or its wait),
 * in the order of virtual time, until `total` calls went out; returns when each went.
 */
async function drive(limits: readonly RedisLimits[], clock: { now: number }, total: number, busy: (worker: number, call: number) => number): Promise<number[]> {
  const next = limits.map(() => 0);
  const sent: number[] = [];
  while (sent.length < total) {
    const worker = next.indexOf(Math.min(...next));
    clock.now = next[worker] as number;
    const wait = await (limits[worker] as RedisLimits).admit(1);
    if (wait === 0) {
      sent.push(clock.now);
      next[worker] = clock.now + busy(worker, sent.length);
    } else next[worker] = clock.now + wait;
  }
  return sent;
}

describe.skipIf(!HAVE_REDIS)(`RedisLimits${NO_REDIS}`, () => {
  /** The most calls a configured rpm lets into a window of `width` ms: 95% of its share plus the burst, rounded up. */
  const allowed = (rpm: number, width: number): number => Math.ceil((rpm * SAFETY * (width + 2 * BURST_MS)) / 60_000 - 1e-9);

  test.prop([fc.integer({ min: 1, max: 5 }), fc.integer({ min: 30, max: 6000 }), fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 8 })], { numRuns: 25 })(
    'N workers together never put more calls into any window of 1 s or 60 s than one limit allows, however busy each is',
    async (n, rpm, gaps) => {
      run += 1;
      const clock = { now: 1_000_000 };
      const sent = await drive(workers(n, { rpm }, clock), clock, 120, (worker, call) => gaps[(worker + call) % gaps.length] as number);
      expect(busiestWindow(sent, 1000)).toBeLessThanOrEqual(allowed(rpm, 1000));
      expect(busiestWindow(sent, 60_000)).toBeLessThanOrEqual(allowed(rpm, 60_000));
    },
  );

  it('three eager workers share the rate: together as many calls as one limit allows, not three times as many', async () => {
    const clock = { now: 0 };
    const sent = await drive(workers(3, { rpm: 600 }, clock), clock, 60, () => 0);
    // 600 rpm at 95%: one call every 60000 / 570 ms; 60 calls take ~6.2 s of virtual time, not ~2.1 s.
    expect((sent.at(-1) as number) - (sent[0] as number)).toBeGreaterThanOrEqual((59 * 60_000) / 570 - 60 * BURST_MS);
  });

  it('a token limit spaces calls by their size, and the real size corrects it', async () => {
    const clock = { now: 0 };
    const [a, b] = workers(2, { tpm: 57_000 }, clock) as [RedisLimits, RedisLimits];
    // 57,000 tpm at 95%: 902.5 tokens a second, so a 1,000-token call owes ~1.1 s.
    expect(await a.admit(1000)).toBe(0);
    const wait = await b.admit(10);
    expect(wait).toBeGreaterThan(1000);
    // It used 100 tokens, not 1,000: most of the debt comes back.
    await a.reported({ ok: true, tokens: 100 }, 1000);
    expect(await b.admit(10)).toBeLessThan(wait / 2);
  });

  it('one breaker for all workers: opens after failures in a row with no success for a cool-down, lets one probe through, closes on its success', async () => {
    const clock = { now: 0 };
    const [a, b, c] = workers(3, { breakerThreshold: 3, breakerCooldownMs: 1000, breakerGiveUpMs: 60_000 }, clock) as [RedisLimits, RedisLimits, RedisLimits];
    expect(await a.admit(1)).toBe(0);
    clock.now = 2000;
    // Three failures from three workers: the model fails for all of them.
    await a.reported({ ok: false, failing: true }, 1);
    await b.reported({ ok: false, overloaded: true }, 1);
    expect(await c.admit(1)).toBe(0);
    await c.reported({ ok: false, failing: true }, 1);
    clock.now = 2500;
    expect(await a.admit(1)).toBe(500);
    expect(await b.admit(1)).toBe(500);
    clock.now = 3000;
    // Half-open: one probe, the others wait for it.
    expect(await b.admit(1)).toBe(0);
    expect(await a.admit(1)).toBeGreaterThan(0);
    await b.reported({ ok: true }, 1);
    expect(await a.admit(1)).toBe(0);
    expect(await c.admit(1)).toBe(0);
  });

  it('a failed probe opens it again for twice as long, and a model that stays down stops every worker with one FatalError', async () => {
    const clock = { now: 0 };
    const [a, b] = workers(2, { breakerThreshold: 1, breakerCooldownMs: 1000, breakerGiveUpMs: 10_000 }, clock) as [RedisLimits, RedisLimits];
    expect(await a.admit(1)).toBe(0);
    clock.now = 1000;
    await a.reported({ ok: false, failing: true }, 1);
    clock.now = 2000;
    expect(await b.admit(1)).toBe(0);
    await b.reported({ ok: false, failing: true }, 1);
    expect(await a.admit(1)).toBe(2000);
    clock.now = 11_000;
    await expect(b.admit(1)).rejects.toThrow(FatalError);
    await expect(a.admit(1)).rejects.toThrowErrorMatchingInlineSnapshot(`[FatalError: sim/model: every call failed for 10 s (429s, 5xx or timeouts) across the workers and probes did not get through; stopping]`);
  });

  it('pauses every worker on evidence the whole model is limited: remaining 0 until the reset, a Retry-After of a minute; a short one pauses nobody', async () => {
    const clock = { now: 0 };
    const [a, b] = workers(2, {}, clock) as [RedisLimits, RedisLimits];
    await a.reported({ ok: false, overloaded: true, retryAfterMs: 1000 }, 1);
    expect(await b.admit(1)).toBe(0);
    await a.reported({ ok: true, rateLimit: { remainingRequests: 0, resetRequestsMs: 4000 } }, 1);
    expect(await b.admit(1)).toBe(4000);
    clock.now = 5000;
    await a.reported({ ok: false, overloaded: true, retryAfterMs: 90_000 }, 1);
    expect(await b.admit(1)).toBe(90_000);
  });

  it('learns a limit the provider announces in x-ratelimit headers, for every worker', async () => {
    const clock = { now: 0 };
    const [a, b] = workers(2, {}, clock) as [RedisLimits, RedisLimits];
    expect(await a.admit(1)).toBe(0);
    expect(await b.admit(1)).toBe(0);
    await a.reported({ ok: true, rateLimit: { limitRequests: 60 } }, 1);
    expect(await b.admit(1)).toBe(0);
    // 60 rpm at 95%: one call every ~1,053 ms.
    expect(await a.admit(1)).toBe(Math.ceil(60_000 / (60 * SAFETY) - BURST_MS));
  });
});
