import { fc, test } from '@fast-check/vitest';
import { from, lastValueFrom, map, of, throwError, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { lockModel } from '../../src/operators/lockModel.js';
import { simPool, task } from '../helpers/fixtures.js';

describe('lockModel', () => {
  const pool = simPool(['a', 'b', 'c'], [0.5, 0.3, 0.2]);

  it('emits nothing for an empty source', async () => {
    expect(await lastValueFrom(from([]).pipe(lockModel(pool, 1), toArray()))).toEqual([]);
  });

  it('adds the drawn model to one task and keeps the rest', async () => {
    const [out] = await lastValueFrom(of(task()).pipe(lockModel(pool, 1), toArray()));
    expect(out).toMatchObject({ ...task(), assistant: { provider: 'sim' } });
    expect(['a', 'b', 'c']).toContain(out?.assistant.model);
  });

  test.prop([fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 30 }), fc.integer()])(
    'draws the same model for a task whatever the order of the stream',
    async (ids, seed) => {
      const tasks = ids.map((id, i) => task({ personaId: id, queryId: `q${i}`, key: `${id}/q${i}` }));
      const forward = await lastValueFrom(from(tasks).pipe(lockModel(pool, seed), toArray()));
      const backward = await lastValueFrom(from([...tasks].reverse()).pipe(lockModel(pool, seed), toArray()));
      const byKey = (list: typeof forward) => new Map(list.map((t) => [t.key, t.assistant.model]));
      expect(byKey(backward)).toEqual(byKey(forward));
    },
  );

  it('follows the pool weights', async () => {
    const n = 20_000;
    const tasks = Array.from({ length: n }, (_, i) => task({ key: `p/${i}` }));
    const drawn = await lastValueFrom(from(tasks).pipe(lockModel(pool, 7), map((t) => t.assistant.model), toArray()));
    const share = (name: string) => drawn.filter((m) => m === name).length / n;
    // Standard error at n = 20k is under 0.004; 0.02 is five of them.
    expect(share('a')).toBeCloseTo(0.5, 1);
    expect(Math.abs(share('a') - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(share('b') - 0.3)).toBeLessThan(0.02);
    expect(Math.abs(share('c') - 0.2)).toBeLessThan(0.02);
  });

  it('never draws a model of weight zero', async () => {
    const skewed = simPool(['never', 'always'], [0, 1]);
    const drawn = await lastValueFrom(from(Array.from({ length: 500 }, (_, i) => task({ key: `k${i}` }))).pipe(lockModel(skewed, 3), map((t) => t.assistant.model), toArray()));
    expect(new Set(drawn)).toEqual(new Set(['always']));
  });

  it('passes a source error through', async () => {
    const boom = new Error('source failed');
    await expect(lastValueFrom(throwError(() => boom).pipe(lockModel(pool, 1)))).rejects.toBe(boom);
  });

  it('errors when the pool throws while drawing', async () => {
    const broken = { ...pool, draw: () => { throw new Error('draw failed'); } };
    await expect(lastValueFrom(of(task()).pipe(lockModel(broken, 1)))).rejects.toThrow('draw failed');
  });
});

describe('lockModel on endless sources', () => {
  it('emits per task from a never-ending source and stops it on unsubscribe', async () => {
    const { interval, take, VirtualTimeScheduler } = await import('rxjs');
    // Virtual time, so the count does not depend on how fast the machine ticks.
    const scheduler = new VirtualTimeScheduler();
    let produced = 0;
    const endless = interval(1, scheduler).pipe(map((i) => { produced += 1; return task({ key: `k${i}` }); }));
    const out: unknown[] = [];
    let complete = false;
    endless.pipe(lockModel(simPool(['a']), 1), take(3)).subscribe({ next: (value) => out.push(value), complete: () => (complete = true) });
    scheduler.maxFrames = 50;
    scheduler.flush();
    expect(complete).toBe(true);
    expect(out).toHaveLength(3);
    expect(produced).toBe(3);
  });
});
