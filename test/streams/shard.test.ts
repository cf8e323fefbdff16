// inShard / shardOf: the n shards of an input partition its tasks exactly, by persona, whatever the order.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { shardOption } from '../../src/options.js';
import { inShard, shardOf, type Shard } from '../../src/streams/shard.js';
import type { Task } from '../../src/types.js';
import { task } from '../helpers/fixtures.js';

async function* each<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield await Promise.resolve(item);
}

async function collect(tasks: readonly Task[], shard: Shard): Promise<Task[]> {
  const out: Task[] = [];
  for await (const t of inShard(each(tasks), shard)) out.push(t);
  return out;
}

/** Tasks of a few personas with a few queries each (ids may repeat across personas, as in real inputs). */
const tasksArb = fc
  .array(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.array(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 })), { maxLength: 40 })
  .map((personas) => {
    const seen = new Set<string>();
    return personas.flatMap(([personaId, queries]) =>
      queries.flatMap((queryId) => {
        const key = `${personaId}/${queryId}`;
        if (seen.has(key)) return [];
        seen.add(key);
        return [task({ personaId, queryId })];
      }),
    );
  });

describe('inShard', () => {
  test.prop([tasksArb, fc.integer({ min: 1, max: 9 })])('the n shards together hold every task exactly once', async (tasks, count) => {
    const shards = await Promise.all(Array.from({ length: count }, (_, i) => collect(tasks, { index: i + 1, count })));
    const keys = shards.flat().map((t) => t.key);
    expect(keys.length).toBe(tasks.length);
    expect(new Set(keys)).toEqual(new Set(tasks.map((t) => t.key)));
    // Each shard keeps the input's order.
    for (const shard of shards) expect(shard).toEqual(tasks.filter((t) => shard.includes(t)));
  });

  test.prop([tasksArb, fc.integer({ min: 1, max: 9 })])('a persona never spans two shards', async (tasks, count) => {
    const owner = new Map<string, number>();
    for (let index = 1; index <= count; index += 1) {
      for (const t of await collect(tasks, { index, count })) {
        expect(owner.get(t.personaId) ?? index).toBe(index);
        owner.set(t.personaId, index);
      }
    }
  });

  test.prop([fc.string(), fc.integer({ min: 1, max: 1000 })])('shardOf is in 1..n and a function of the persona alone', (personaId, count) => {
    const shard = shardOf(personaId, count);
    expect(shard).toBeGreaterThanOrEqual(1);
    expect(shard).toBeLessThanOrEqual(count);
    expect(shardOf(personaId, count)).toBe(shard);
  });

  it('is pinned: the same persona lands in the same shard in every version (changing the hash splits old runs differently)', () => {
    expect([1, 2, 3, 4].map((i) => shardOf(`persona_00${i}`, 4))).toMatchInlineSnapshot(`
      [
        2,
        4,
        3,
        4,
      ]
    `);
  });

  it('spreads personas evenly: 4000 personas over 4 shards, each within 10% of a quarter', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i += 1) counts[shardOf(`persona_${i}`, 4) - 1]! += 1;
    for (const n of counts) expect(Math.abs(n - 1000)).toBeLessThan(100);
  });

  it('with one shard, everything', async () => {
    const tasks = [task({ personaId: 'a' }), task({ personaId: 'b' })];
    expect(await collect(tasks, { index: 1, count: 1 })).toEqual(tasks);
  });
});

describe('shardOption', () => {
  it('reads i/n and says what is wrong otherwise', () => {
    expect(shardOption('2/8')).toEqual({ index: 2, count: 8 });
    expect(() => shardOption('0/4')).toThrowErrorMatchingInlineSnapshot(`[InvalidArgumentError: expected i/n with 1 ≤ i ≤ n (like 1/4), got \`0/4\`]`);
    expect(() => shardOption('5/4')).toThrow(/1 ≤ i ≤ n/);
    expect(() => shardOption('1/0')).toThrow(/1 ≤ i ≤ n/);
    expect(() => shardOption('1-4')).toThrow(/like 1\/4/);
    expect(() => shardOption('')).toThrow(/got ``/);
  });
});
