// Batcher / lineWriter: group commit of queued items, order, per-push completion, failure and flush.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { Batcher, lineWriter } from '../../src/sinks/batcher.js';
import { track } from '../helpers/promises.js';

/** Lets every pending promise callback and I/O callback run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A write target whose calls stay pending until the test settles them, one Deferred per call. */
function manualWriter<T>() {
  const batches: T[][] = [];
  const calls: Deferred[] = [];
  const write = (items: T[]): Promise<void> => {
    batches.push([...items]);
    const call = deferred();
    calls.push(call);
    return call.promise;
  };
  return { write, batches, calls };
}


describe('Batcher', () => {
  it('puts items pushed in the same tick into one write', async () => {
    const batches: string[][] = [];
    const batcher = new Batcher<string>((items) => {
      batches.push([...items]);
      return Promise.resolve();
    });
    await Promise.all([batcher.push('a'), batcher.push('b'), batcher.push('c')]);
    expect(batches).toEqual([['a', 'b', 'c']]);
  });

  it('queues items pushed during a write for the next write, together', async () => {
    const { write, batches, calls } = manualWriter<number>();
    const batcher = new Batcher(write);
    const first = track(batcher.push(1));
    await settle();
    expect(batches).toEqual([[1]]);
    const later = [2, 3, 4].map((n) => track(batcher.push(n)));
    await settle();
    expect(batches).toEqual([[1]]); // nothing more is written while the first write is in flight
    calls[0]!.resolve();
    await settle();
    expect(first.status).toBe('fulfilled');
    expect(batches).toEqual([[1], [2, 3, 4]]);
    expect(later.map((s) => s.status)).toEqual(['pending', 'pending', 'pending']);
    calls[1]!.resolve();
    await settle();
    expect(later.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
  });

  it('resolves each push only after its own write has finished', async () => {
    const { write, calls } = manualWriter<string>();
    const batcher = new Batcher(write);
    const a = track(batcher.push('a'));
    await settle();
    const b = track(batcher.push('b'));
    await settle();
    expect([a.status, b.status]).toEqual(['pending', 'pending']);
    calls[0]!.resolve();
    await settle();
    expect([a.status, b.status]).toEqual(['fulfilled', 'pending']);
    calls[1]!.resolve();
    await settle();
    expect([a.status, b.status]).toEqual(['fulfilled', 'fulfilled']);
  });

  test.prop([fc.array(fc.tuple(fc.integer(), fc.boolean()), { maxLength: 60 })])(
    'writes every item exactly once, in push order, whatever the batching',
    async (plan) => {
      const written: number[] = [];
      const batcher = new Batcher<number>(async (items) => {
        await settle();
        written.push(...items);
      });
      const pushes: Promise<void>[] = [];
      for (const [item, waitAfter] of plan) {
        pushes.push(batcher.push(item));
        if (waitAfter) await Promise.resolve();
      }
      await Promise.all(pushes);
      expect(written).toEqual(plan.map(([item]) => item));
    },
  );

  it('a failing write rejects its pushes, the pending ones and every later one, with the same error', async () => {
    const { write, batches, calls } = manualWriter<string>();
    const batcher = new Batcher(write);
    const first = track(batcher.push('a'));
    await settle();
    const queued = track(batcher.push('b'));
    const error = new Error('disk full');
    calls[0]!.reject(error);
    await settle();
    expect(first).toEqual({ status: 'rejected', error });
    expect(queued).toEqual({ status: 'rejected', error });
    await expect(batcher.push('c')).rejects.toBe(error);
    await expect(batcher.flush()).rejects.toBe(error);
    expect(batches).toEqual([['a']]); // nothing is written after the failure
  });

  it('wraps a non-Error thrown by the writer into an Error', async () => {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a writer that rejects with a string is the case under test
    const batcher = new Batcher<string>(() => Promise.reject('EIO'));
    await expect(batcher.push('a')).rejects.toThrow(new Error('EIO'));
    await expect(batcher.push('b')).rejects.toThrow('EIO');
  });

  it('treats a writer that throws synchronously like a failed write', async () => {
    const batcher = new Batcher<string>(() => {
      throw new Error('bad descriptor');
    });
    await expect(batcher.push('a')).rejects.toThrow('bad descriptor');
    await expect(batcher.flush()).rejects.toThrow('bad descriptor');
  });

  it('flush resolves at once when nothing was pushed', async () => {
    const batcher = new Batcher<string>(() => Promise.reject(new Error('never called')));
    await expect(batcher.flush()).resolves.toBeUndefined();
  });

  it('flush waits until every pushed item has been written', async () => {
    const { write, batches, calls } = manualWriter<number>();
    const batcher = new Batcher(write);
    void batcher.push(1);
    await settle();
    void batcher.push(2);
    const flushed = track(batcher.flush());
    await settle();
    expect(flushed.status).toBe('pending');
    calls[0]!.resolve();
    await settle();
    expect(batches).toEqual([[1], [2]]);
    expect(flushed.status).toBe('pending');
    calls[1]!.resolve();
    await settle();
    expect(flushed.status).toBe('fulfilled');
  });

  it('flush rejects when a write it waits for fails', async () => {
    const { write, calls } = manualWriter<number>();
    const batcher = new Batcher(write);
    const pushed = track(batcher.push(1));
    const flushed = track(batcher.flush());
    await settle();
    calls[0]!.reject(new Error('EIO'));
    await settle();
    expect(pushed.status).toBe('rejected');
    expect(flushed).toMatchObject({ status: 'rejected', error: new Error('EIO') });
  });

  it('keeps working across idle periods', async () => {
    const batches: string[][] = [];
    const batcher = new Batcher<string>((items) => {
      batches.push([...items]);
      return Promise.resolve();
    });
    await batcher.push('a');
    await settle();
    await batcher.push('b');
    await batcher.flush();
    expect(batches).toEqual([['a'], ['b']]);
  });
});

describe('lineWriter', () => {
  it('writes a batch as one string with a newline after every line', async () => {
    const writes: string[] = [];
    const lines = lineWriter((text) => {
      writes.push(text);
      return Promise.resolve();
    });
    await Promise.all([lines.push('{"a":1}'), lines.push('{"b":2}')]);
    await lines.push('');
    expect(writes).toEqual(['{"a":1}\n{"b":2}\n', '\n']);
  });
});

describe('lineWriter with chunkBytes (one line after another, as export writes)', () => {
  it('resolves at once below a chunk, writes a chunk at a time, and the rest on flush', async () => {
    const writes: string[] = [];
    const lines = lineWriter(
      (text) => {
        writes.push(text);
        return Promise.resolve();
      },
      { chunkBytes: 10 },
    );
    await lines.push('abc');
    await lines.push('def');
    expect(writes).toEqual([]);
    await lines.push('ghi'); // 12 bytes with newlines: one chunk goes out
    expect(writes).toEqual(['abc\ndef\nghi\n']);
    await lines.push('z');
    await lines.flush();
    expect(writes).toEqual(['abc\ndef\nghi\n', 'z\n']);
  });

  it('waits for a slow target only when a chunk goes out, and a failed write rejects what follows', async () => {
    let release: (() => void) | undefined;
    const failing = lineWriter(
      () =>
        new Promise<void>((_resolve, reject) => {
          release = () => reject(new Error('ENOSPC'));
        }),
      { chunkBytes: 4 },
    );
    const full = failing.push('12345');
    let settled = false;
    void full.catch(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    release?.();
    await expect(full).rejects.toThrow('ENOSPC');
    await expect(failing.push('next-chunk')).rejects.toThrow('ENOSPC');
  });
});
