// firstTasks (generate --limit): exactly the first N, and nothing past them is asked of the source.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { firstTasks } from '../../src/streams/tasks.js';

/** An async source over `items` that counts what is asked of it and whether it was closed. */
function source<T>(items: readonly T[]) {
  const counts = { pulled: 0, closed: false };
  const iterable: AsyncIterable<T> = {
    [Symbol.asyncIterator]: () => {
      let next = 0;
      return {
        next: () => {
          counts.pulled += 1;
          return Promise.resolve(next < items.length ? { value: items[next++] as T, done: false as const } : { value: undefined, done: true as const });
        },
        return: () => {
          counts.closed = true;
          return Promise.resolve({ value: undefined, done: true as const });
        },
      };
    },
  };
  return { iterable, counts };
}

const collect = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
};

describe('firstTasks', () => {
  test.prop([fc.array(fc.integer(), { maxLength: 40 }), fc.nat({ max: 50 })])('yields the first `limit` items, in order, and asks the source for no item past them', async (items, limit) => {
    const { iterable, counts } = source(items);
    expect(await collect(firstTasks(iterable, limit))).toEqual(items.slice(0, limit));
    // One pull per item taken, plus the pull that found the end when the source is shorter than the limit.
    expect(counts.pulled).toBe(limit === 0 ? 0 : Math.min(limit, items.length + 1));
    // Stopping at the limit closes the source (a file stream stops being read).
    if (limit > 0 && items.length >= limit) expect(counts.closed).toBe(true);
  });

  it('with a limit of 0 never opens the source', async () => {
    const { iterable, counts } = source([1, 2, 3]);
    expect(await collect(firstTasks(iterable, 0))).toEqual([]);
    expect(counts.pulled).toBe(0);
  });

  it('refuses a limit that is not a non-negative integer', async () => {
    await expect(collect(firstTasks(source([1]).iterable, -1))).rejects.toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`limit\` to be a non-negative integer, got \`-1\`]`);
    await expect(collect(firstTasks(source([1]).iterable, 1.5))).rejects.toThrow(/non-negative integer/);
  });

  it('passes a source error on', async () => {
    async function* failing(): AsyncGenerator<number> {
      yield await Promise.resolve(1);
      throw new Error('disk gone');
    }
    await expect(collect(firstTasks(failing(), 5))).rejects.toThrow('disk gone');
  });
});
