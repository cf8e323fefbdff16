// pollBatch: looks at a batch with growing pauses until it ends, on a virtual clock, and stops when aborted.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pollBatch, sleep } from '../../src/batch/poll.js';
import type { BatchInfo } from '../../src/batch/provider.js';
import { ModelError } from '../../src/errors.js';

const batch = (status: string): BatchInfo => ({ id: 'b', status, inputFileId: 'f', outputFileId: undefined, errorFileId: undefined, counts: undefined, reason: undefined });

/** A retrieve that answers `statuses` in turn (an Error is thrown). */
const scripted = (statuses: (string | Error)[]) => {
  let i = 0;
  return vi.fn(() => {
    const next = statuses[Math.min(i++, statuses.length - 1)] as string | Error;
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(batch(next));
  });
};

afterEach(() => {
  vi.useRealTimers();
});

describe('pollBatch', () => {
  it('pauses initialMs, then × factor up to maxMs, and returns the final state (virtual clock)', async () => {
    const pauses: number[] = [];
    const states: string[] = [];
    const retrieve = scripted(['validating', 'in_progress', 'in_progress', 'in_progress', 'finalizing', 'completed']);
    const done = await pollBatch(retrieve, { initialMs: 1000, maxMs: 3000, factor: 2, sleep: (ms) => (pauses.push(ms), Promise.resolve()), onState: (b) => states.push(b.status) }, new AbortController().signal);
    expect(done.status).toBe('completed');
    expect(pauses).toEqual([1000, 2000, 3000, 3000, 3000]);
    expect(states).toEqual(['validating', 'in_progress', 'in_progress', 'in_progress', 'finalizing', 'completed']);
  });

  it.each(['failed', 'expired', 'cancelled'])('ends at %s too', async (status) => {
    const done = await pollBatch(scripted(['in_progress', status]), { initialMs: 1, maxMs: 1, factor: 1, sleep: () => Promise.resolve() }, new AbortController().signal);
    expect(done.status).toBe(status);
  });

  it('looks again after a transient failure, and rejects on a permanent one', async () => {
    const transient = scripted([new ModelError('server', '502'), 'completed']);
    await expect(pollBatch(transient, { initialMs: 1, maxMs: 1, factor: 1, sleep: () => Promise.resolve() }, new AbortController().signal)).resolves.toMatchObject({ status: 'completed' });
    const permanent = scripted([new ModelError('bad_request', 'no such batch', { status: 404 })]);
    await expect(pollBatch(permanent, { initialMs: 1, maxMs: 1, factor: 1, sleep: () => Promise.resolve() }, new AbortController().signal)).rejects.toThrow('no such batch');
    expect(permanent).toHaveBeenCalledTimes(1);
  });

  it('waits with timers: nothing happens before the pause ends (fake timers: a 30 s pause takes no time)', async () => {
    vi.useFakeTimers();
    const retrieve = scripted(['in_progress', 'in_progress', 'completed']);
    const done = pollBatch(retrieve, { initialMs: 30_000, maxMs: 60_000, factor: 1.5 }, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(0);
    expect(retrieve).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(retrieve).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(retrieve).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(45_000);
    await expect(done).resolves.toMatchObject({ status: 'completed' });
    expect(retrieve).toHaveBeenCalledTimes(3);
  });

  it('stops at once when aborted during a pause, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const retrieve = scripted(['in_progress']);
    const done = pollBatch(retrieve, { initialMs: 60_000, maxMs: 60_000, factor: 1 }, controller.signal);
    const settled = expect(done).rejects.toMatchObject({ kind: 'aborted' });
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await settled;
    expect(vi.getTimerCount()).toBe(0);
    expect(retrieve).toHaveBeenCalledTimes(1);
  });

  it('sleep rejects at once on a signal already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(sleep(1000, controller.signal)).rejects.toMatchObject({ kind: 'aborted' });
  });
});
