// mergeMapLending: mergeMap's contract, plus slots lent by inners that only wait.
import { fc, test } from '@fast-check/vitest';
import { EMPTY, NEVER, Observable, VirtualTimeScheduler, concat, concatMap, defer, finalize, from, interval, lastValueFrom, map, mergeMap, of, take, tap, throwError, timer, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { mergeMapLending, type Lend } from '../../src/operators/mergeMapLending.js';

const marbles = (): TestScheduler => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('mergeMapLending', () => {
  it('completes at once on an empty source', async () => {
    expect(await lastValueFrom(EMPTY.pipe(mergeMapLending((v: number) => of(v), 2), toArray()))).toEqual([]);
  });

  it('maps one value and many, like mergeMap', () => {
    marbles().run(({ cold, expectObservable }) => {
      expectObservable(cold('a|').pipe(mergeMapLending((v) => cold('-x|', { x: v.toUpperCase() }), 1))).toBe('-A|');
      // Two slots: c waits for the first inner to end (at 21).
      expectObservable(cold('(abc)|').pipe(mergeMapLending((v) => cold('20ms x|', { x: v.toUpperCase() }), 2))).toBe('20ms (AB) 17ms C|');
    });
  });

  it('lends a waiting inner\'s slot to the next value, and counts it again once taken back', () => {
    marbles().run(({ cold, expectObservable }) => {
      // Concurrency 1. `a` works 20 frames, then waits 60 with its slot lent: `b` (30 frames) runs meanwhile.
      const project = (value: string, lend: Lend): Observable<string> =>
        value === 'a'
          ? timer(20).pipe(concatMap(() => { const reclaim = lend(); return timer(60).pipe(finalize(reclaim), map(() => 'A')); }))
          : timer(30).pipe(map(() => value.toUpperCase()));
      expectObservable(cold('(ab)|').pipe(mergeMapLending(project, 1))).toBe('50ms B 29ms (A|)');
      // Without the loan, b waits for a, as with mergeMap.
      expectObservable(cold('(ab)|').pipe(mergeMap((value) => project(value, () => () => undefined), 1))).toBe('80ms A 29ms (B|)');
      // c starts when b ends (50) and runs to 80; a takes its slot back at 80: d starts only when both have ended.
      expectObservable(cold('(abcd)|').pipe(mergeMapLending(project, 1))).toBe('50ms B 29ms (AC) 26ms (D|)');
    });
  });

  it('passes a source error through and a project that throws', async () => {
    const boom = new Error('boom');
    await expect(lastValueFrom(throwError(() => boom).pipe(mergeMapLending(() => of(1), 2)))).rejects.toBe(boom);
    await expect(lastValueFrom(of(1, 2).pipe(mergeMapLending(() => { throw boom; }, 2)))).rejects.toBe(boom);
    await expect(lastValueFrom(of(1).pipe(mergeMapLending(() => throwError(() => boom), 2)))).rejects.toBe(boom);
  });

  it('works on a never-ending source', async () => {
    expect(await lastValueFrom(concat(of(1, 2, 3), NEVER).pipe(mergeMapLending((v) => timer(1).pipe(map(() => v * 2)), 2), take(3), toArray()))).toEqual([2, 4, 6]);
  });

  it('stops an endless source and the inners in flight on unsubscribe', () => {
    // Virtual time: on a loaded machine a real interval(1) may not have ticked three times in 30 ms.
    const scheduler = new VirtualTimeScheduler();
    let produced = 0;
    let aborted = 0;
    const source = interval(1, scheduler).pipe(map((i) => (produced += 1, i)));
    const inner = (): Observable<number> => new Observable<number>(() => () => (aborted += 1));
    const subscription = source.pipe(mergeMapLending(inner, 3)).subscribe();
    scheduler.maxFrames = 30;
    scheduler.flush();
    // Every tick was taken from the source, three of them hold a slot, the rest wait in the buffer.
    expect(produced).toBe(30);
    subscription.unsubscribe();
    expect(aborted).toBe(3);
    scheduler.maxFrames = 60;
    scheduler.flush();
    expect(produced).toBe(30);
  });

  it('refuses a concurrency that is not a positive integer', () => {
    expect(() => mergeMapLending(() => EMPTY, 0)).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`concurrency\` to be a positive integer, got \`0\` (number)]`);
  });

  test.prop([fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.option(fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 3 })), { nil: undefined })), { maxLength: 30 }), fc.integer({ min: 1, max: 4 })])(
    'emits what mergeMap emits, and starts a value only while fewer than `concurrency` inners hold a slot',
    (plan, concurrency) => {
      // Value i works `work` frames; then, with a loan, waits `wait` frames with its slot lent and works `after` more.
      let holding = 0;
      const starts: number[] = [];
      const inner = (i: number, lend: Lend | undefined): Observable<number> =>
        defer(() => {
          starts.push(holding);
          holding += 1;
          let held = true;
          const [work, loan] = plan[i] as [number, [number, number] | undefined];
          const wait =
            loan === undefined
              ? EMPTY
              : defer(() => {
                  if (lend !== undefined) {
                    held = false;
                    holding -= 1;
                  }
                  const reclaim = lend?.() ?? (() => undefined);
                  return timer(loan[0]).pipe(
                    concatMap(() => EMPTY),
                    tap({
                      complete: () => {
                        if (lend !== undefined) {
                          held = true;
                          holding += 1;
                        }
                        reclaim();
                      },
                    }),
                  );
                }).pipe(concatMap(() => EMPTY));
          const after = loan === undefined ? EMPTY : timer(loan[1]).pipe(concatMap(() => EMPTY));
          // tap's complete, not finalize: it runs before the operator hears of the end and starts the next value.
          return concat(timer(work).pipe(concatMap(() => EMPTY)), wait, after, of(i)).pipe(tap({ complete: () => void (held && (holding -= 1)) }));
        });
      let lent: number[] = [];
      let merged: number[] = [];
      marbles().run(({ expectObservable }) => {
        const source = from(plan.map((_, i) => i));
        source.pipe(mergeMapLending(inner, concurrency), toArray()).subscribe((values) => (lent = values));
        expectObservable(EMPTY).toBe('|');
      });
      expect(starts.every((before) => before < concurrency)).toBe(true);
      holding = 0;
      marbles().run(({ expectObservable }) => {
        from(plan.map((_, i) => i)).pipe(mergeMap((i) => inner(i, undefined), concurrency), toArray()).subscribe((values) => (merged = values));
        expectObservable(EMPTY).toBe('|');
      });
      expect([...lent].sort((a, b) => a - b)).toEqual([...merged].sort((a, b) => a - b));
      expect(lent).toHaveLength(plan.length);
    },
  );
});
