// streamTarget / streamWriter: waiting for 'drain' when write() returns false, and EPIPE as BrokenPipeError.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BrokenPipeError, streamTarget, streamWriter } from '../../src/sinks/stdout.js';
import { track } from '../helpers/promises.js';

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));


const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`write ${code}`), { code, errno: -32, syscall: 'write' });

/**
 * A Writable with a tiny buffer whose consumer is as slow as the test wants: each chunk's callback is held
 * until `release()` (or `fail()`), as a pipe to a slow reader would.
 */
function slowWritable(highWaterMark = 4) {
  const received: string[] = [];
  const held: ((error?: Error | null) => void)[] = [];
  let drains = 0;
  const stream = new Writable({
    highWaterMark,
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      received.push(chunk.toString());
      held.push(callback);
    },
  });
  stream.on('drain', () => (drains += 1));
  return {
    stream,
    received,
    drains: () => drains,
    /** Lets the consumer accept every chunk written so far (and any that Node queued behind them). */
    async release(): Promise<void> {
      while (held.length > 0) {
        held.shift()!();
        await settle();
      }
    },
    fail(error: Error): void {
      held.shift()?.(error);
    },
  };
}

describe('streamTarget', () => {
  it('resolves at once while write() accepts the data', async () => {
    const sink = slowWritable(1024);
    const write = streamTarget(sink.stream);
    const state = track(write('a\n'));
    await settle();
    expect(state.status).toBe('fulfilled');
    expect(sink.received).toEqual(['a\n']);
  });

  it('resolves only after drain when write() returns false', async () => {
    const sink = slowWritable(4);
    const write = streamTarget(sink.stream);
    const state = track(write('{"interaction":1}\n'));
    await settle();
    await settle();
    expect(sink.stream.writableNeedDrain).toBe(true);
    expect(state.status).toBe('pending');
    expect(sink.drains()).toBe(0);
    await sink.release();
    expect(sink.drains()).toBe(1);
    expect(state.status).toBe('fulfilled');
  });

  it('keeps every chunk, in order, while waiting', async () => {
    const sink = slowWritable(4);
    const write = streamTarget(sink.stream);
    const first = track(write('one\n'));
    const second = track(write('two\n'));
    await settle();
    expect([first.status, second.status]).toEqual(['pending', 'pending']);
    await sink.release();
    expect([first.status, second.status]).toEqual(['fulfilled', 'fulfilled']);
    expect(sink.received.join('')).toBe('one\ntwo\n');
  });

  it('rejects a waiting write and every later one with BrokenPipeError after EPIPE', async () => {
    const sink = slowWritable(4);
    const write = streamTarget(sink.stream);
    const waiting = track(write('{"a":1}\n'));
    await settle();
    expect(waiting.status).toBe('pending');
    sink.fail(errno('EPIPE'));
    await settle();
    expect(waiting.status).toBe('rejected');
    expect(waiting.error).toBeInstanceOf(BrokenPipeError);
    await expect(write('{"b":2}\n')).rejects.toBeInstanceOf(BrokenPipeError);
    await expect(write('{"c":3}\n')).rejects.toThrow(BrokenPipeError);
  });

  it('rejects later writes with BrokenPipeError when the stream emits EPIPE between writes', async () => {
    const sink = slowWritable(1024);
    const write = streamTarget(sink.stream);
    await write('a\n');
    sink.stream.destroy(errno('EPIPE'));
    await settle();
    const error = await write('b\n').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BrokenPipeError);
    expect((error as Error).name).toBe('BrokenPipeError');
  });

  it('treats a stream already destroyed as a broken pipe', async () => {
    const sink = slowWritable(1024);
    const write = streamTarget(sink.stream);
    sink.stream.destroy();
    await settle();
    await expect(write('a\n')).rejects.toBeInstanceOf(BrokenPipeError);
  });

  it('passes other stream errors through as they are', async () => {
    const sink = slowWritable(4);
    const write = streamTarget(sink.stream);
    const waiting = track(write('{"a":1}\n'));
    await settle();
    const error = errno('ENOSPC');
    sink.fail(error);
    await settle();
    expect(waiting).toEqual({ status: 'rejected', error });
    expect(waiting.error).not.toBeInstanceOf(BrokenPipeError);
    await expect(write('x\n')).rejects.toBe(error);
  });
});

describe('streamWriter', () => {
  it('each push resolves only after the stream drained', async () => {
    const sink = slowWritable(4);
    const writer = streamWriter(sink.stream);
    const pushes = ['{"n":1}', '{"n":2}'].map((line) => track(writer.push(line)));
    await settle();
    expect(pushes.map((p) => p.status)).toEqual(['pending', 'pending']);
    expect(sink.received).toEqual(['{"n":1}\n{"n":2}\n']); // one batch, one write
    await sink.release();
    expect(pushes.map((p) => p.status)).toEqual(['fulfilled', 'fulfilled']);
    const later = track(writer.push('{"n":3}'));
    await settle();
    expect(later.status).toBe('pending');
    await sink.release();
    expect(later.status).toBe('fulfilled');
    expect(sink.received.join('')).toBe('{"n":1}\n{"n":2}\n{"n":3}\n');
  });

  it('rejects pending and later pushes with BrokenPipeError after EPIPE', async () => {
    const sink = slowWritable(4);
    const writer = streamWriter(sink.stream);
    const first = track(writer.push('{"n":1}'));
    await settle();
    const queued = track(writer.push('{"n":2}'));
    sink.fail(errno('EPIPE'));
    await settle();
    expect(first.error).toBeInstanceOf(BrokenPipeError);
    expect(queued.error).toBeInstanceOf(BrokenPipeError);
    await expect(writer.push('{"n":3}')).rejects.toBeInstanceOf(BrokenPipeError);
    await expect(writer.flush()).rejects.toBeInstanceOf(BrokenPipeError);
  });
});
