// The estimate's sample: a seeded uniform choice of tasks, in input order, with every task and persona counted.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { sampleTasks } from '../../src/estimate/sample.js';
import { rngFor } from '../../src/rng.js';
import type { Task } from '../../src/types.js';

/** Tasks of personas with `sizes[i]` queries each, in input order. */
const tasksOf = (sizes: readonly number[]): Task[] =>
  sizes.flatMap((size, p) =>
    Array.from({ length: size }, (_, q): Task => ({ personaId: `p${p}`, personaFeatures: {}, systemPrompt: undefined, queryId: `q${q}`, originalQuery: 'x', initialQuery: 'x', targetTurns: 2, key: `p${p}/q${q}`, source: `in:${p + 1}` })),
  );

async function* each<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield await Promise.resolve(item);
}

const sizes = fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 30 });

describe('sampleTasks', () => {
  it('keeps every task, in order, when the input holds no more than the sample', async () => {
    const tasks = tasksOf([2, 1, 3]);
    expect(await sampleTasks(each(tasks), 6, rngFor(1, 'estimate', 'sample'))).toEqual({ sample: tasks, tasks: 6, personas: 3 });
  });

  it('refuses a sample of nothing', async () => {
    await expect(sampleTasks(each([]), 0, rngFor(1, 'e', 's'))).rejects.toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`size\` to be a positive integer, got \`0\`]`);
  });

  test.prop([sizes, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1000 })])('a sample of min(size, tasks) distinct tasks of the input, in input order, every task and persona counted', async (personas, size, seed) => {
    const tasks = tasksOf(personas);
    const { sample, tasks: total, personas: counted } = await sampleTasks(each(tasks), size, rngFor(seed, 'estimate', 'sample'));
    expect(total).toBe(tasks.length);
    expect(counted).toBe(personas.length);
    expect(sample).toHaveLength(Math.min(size, tasks.length));
    const positions = sample.map((task) => tasks.indexOf(task));
    expect(positions.every((position) => position >= 0)).toBe(true);
    expect(positions).toEqual([...new Set(positions)].sort((a, b) => a - b));
  });

  test.prop([sizes, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1000 })])('the same seed picks the same tasks', async (personas, size, seed) => {
    const tasks = tasksOf(personas);
    const a = await sampleTasks(each(tasks), size, rngFor(seed, 'estimate', 'sample'));
    const b = await sampleTasks(each(tasks), size, rngFor(seed, 'estimate', 'sample'));
    expect(a.sample.map((task) => task.key)).toEqual(b.sample.map((task) => task.key));
  });

  it('is uniform: over many seeds each task is picked about size/tasks of the time', async () => {
    const tasks = tasksOf(Array.from({ length: 10 }, () => 1));
    const picked = new Array<number>(10).fill(0);
    const seeds = 2000;
    for (let seed = 0; seed < seeds; seed += 1) {
      for (const task of (await sampleTasks(each(tasks), 3, rngFor(seed, 'estimate', 'sample'))).sample) picked[tasks.indexOf(task)]! += 1;
    }
    // Expected 600 each (3/10 of 2000); a binomial's standard deviation here is about 20.
    for (const n of picked) expect(Math.abs(n - 600)).toBeLessThan(120);
  });
});
