// QueueRun against a real redis-server: one budget for every worker, usage summed as usage.json counts it, the record guarded.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueRun, UsageRecorder, type QueueRecord } from '../../src/queue/run.js';
import { UsageTotals } from '../../src/sinks/usage.js';
import { HAVE_REDIS, NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';

let server: RedisServer;
const connections: Redis[] = [];

beforeAll(async () => {
  if (HAVE_REDIS) server = await startRedis();
});
afterAll(async () => {
  await Promise.all(connections.map((c) => c.quit()));
  await server?.stop();
});

const open = (name: string): QueueRun => {
  const redis = new Redis(server.url);
  connections.push(redis);
  return new QueueRun(redis, name);
};

const record = (fingerprint: string, maxCost: number | null = null): QueueRecord => ({ version: '0', seed: 1, config_fingerprint: fingerprint, settings: { seed: 1 }, created_at: '2026-01-01T00:00:00.000Z', max_cost: maxCost });

describe.skipIf(!HAVE_REDIS)(`QueueRun${NO_REDIS}`, () => {
  it('one budget for all workers: none begins once what is spent plus what is in flight reaches it, and it stays reached', async () => {
    const [a, b] = [open('budget'), open('budget')] as [QueueRun, QueueRun];
    await a.publish(record('f1', 1), false);
    // No cost known yet: conversations may begin.
    expect(await a.begin(1)).toBe(true);
    expect(await b.begin(1)).toBe(true);
    // Two ended at $0.30 each; two in flight are likely to cost as much: 0.6 + 2 × 0.3 ≥ 1.
    await a.addUsage({ fields: new Map(), calls: 2, tokens: 10, cost: 0.6 });
    await a.settle();
    await b.settle();
    expect(await a.begin(1)).toBe(true);
    expect(await b.begin(1)).toBe(true);
    expect(await a.begin(1)).toBe(false);
    await a.settle();
    await b.settle();
    expect(await b.begin(1)).toBe(false);
    expect(await b.begin(null)).toBe(true);
    const counters = await a.counters();
    expect(counters).toMatchObject({ begun: 5, settled: 4, reached: true, cost: 0.6, calls: 2 });
  });

  it('sums the usage of every process as usage.json counts it, and the run figures with it', async () => {
    const run = open('usage');
    await run.publish(record('f1'), false);
    const prices = { 'gpt-4o-mini': { input: 1, output: 2 } };
    const [x, y] = [new UsageRecorder(run, prices), new UsageRecorder(open('usage'), prices)];
    const local = new UsageTotals(prices);
    const calls: [UsageRecorder, 'assistant' | 'user_simulator', number, number, boolean][] = [
      [x, 'assistant', 100, 20, false],
      [y, 'assistant', 50, 5, false],
      [y, 'user_simulator', 30, 3, true],
    ];
    for (const [recorder, module, input, output, failed] of calls) {
      const model = { provider: 'openai', model: 'gpt-4o-mini' };
      recorder.call(module, model, { input, output }, { operation: 'reply', failed });
      local.call(module, model, { input, output }, { operation: 'reply', failed });
    }
    await Promise.all([x.close(), y.close()]);
    const merged = new UsageTotals(prices);
    merged.merge(await run.usage(), { counts: false, thisRun: true });
    const shape = (t: UsageTotals) => (t.toJSON() as { statistics: unknown }).statistics;
    expect(shape(merged)).toEqual(shape(local));
    expect([merged.calls, merged.runTokens, merged.runCost]).toEqual([local.calls, local.runTokens, local.runCost]);
    expect((await run.counters()).cost).toBeCloseTo(local.runCost, 12);
  });

  it('continues a run of the same configuration with its counters and the new budget; starts over when replaced', async () => {
    const run = open('record');
    expect((await run.publish(record('f1'), false)).created).toBe(true);
    await run.begin(null);
    expect((await run.publish(record('f1', 5), false)).created).toBe(false);
    expect(await run.record()).toMatchObject({ config_fingerprint: 'f1', max_cost: 5 });
    expect((await run.counters()).begun).toBe(1);
    expect((await run.publish(record('f2'), true)).created).toBe(true);
    expect((await run.counters()).begun).toBe(0);
  });
});
