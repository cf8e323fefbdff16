// DirLock: one writer per --out directory; a second is refused by name; a lock whose owner is gone is taken over, and only then.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { DirLock, LOCK_FILE, REFRESH_MS, STALE_MS, processStart, type LockOwner } from '../../src/sinks/lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const refusal = async (promise: Promise<unknown>): Promise<ConfigError> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
};

/** A lock file as another owner would have left it. */
const plant = (owner: Partial<LockOwner>): Promise<void> => writeFile(join(dir, LOCK_FILE), `${JSON.stringify({ pid: 1, host: hostname(), started_at: '2026-01-01T00:00:00.000Z', token: 'theirs', ...owner })}\n`);

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'close');
  return child.pid as number;
}

describe('DirLock', () => {
  it('is taken by one run, refused to a second with who holds it, and free again once released', async () => {
    const first = await DirLock.acquire(dir);
    const error = await refusal(DirLock.acquire(dir));
    expect(error.message).toMatch(new RegExp(`^--out ${dir}: another run \\(pid ${process.pid} on host "${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}", since \\d{4}-.*\\) is writing this directory; one run writes a directory at a time\\.`));
    expect(error.message).toContain(`remove ${join(dir, LOCK_FILE)}`);
    await first.release();
    expect(await readdir(dir)).toEqual([]);
    const second = await DirLock.acquire(dir);
    await second.release();
  });

  test.prop([fc.integer({ min: 2, max: 12 })], { numRuns: 10 })('of runs that start together, exactly one gets it', async (runs) => {
    const outcomes = await Promise.allSettled(Array.from({ length: runs }, () => DirLock.acquire(dir)));
    const held = outcomes.filter((o): o is PromiseFulfilledResult<DirLock> => o.status === 'fulfilled');
    expect(held).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(ConfigError);
    await held[0]!.value.release();
    // No temporary or aside file is left behind.
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over the lock of a process that is gone (kill -9 leaves it behind), and says so', async () => {
    await plant({ pid: await deadPid() });
    const said: string[] = [];
    const lock = await DirLock.acquire(dir, { onTakeover: (why) => said.push(why) });
    expect(said).toEqual([expect.stringMatching(/took over the lock of a run that ended without releasing it \(process \d+ is gone\)/)]);
    expect((JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as LockOwner).token).toBe(lock.owner.token);
    await lock.release();
  });

  it('takes over a lock whose pid runs a later process (its start time differs)', async () => {
    const start = processStart(process.pid);
    if (start === undefined) return; // no /proc here: the pid alone decides
    await plant({ pid: process.pid, process_start: String(Number(start) - 1) });
    const lock = await DirLock.acquire(dir);
    await lock.release();
  });

  it('refuses a fresh lock of another host, and takes over one its host stopped refreshing', async () => {
    await plant({ pid: 4242, host: 'elsewhere.example' });
    expect((await refusal(DirLock.acquire(dir))).message).toMatch(/another run \(pid 4242 on host "elsewhere\.example"/);
    const old = new Date(Date.now() - STALE_MS - 5000);
    await utimes(join(dir, LOCK_FILE), old, old);
    const lock = await DirLock.acquire(dir);
    await lock.release();
  });

  it('refuses a damaged lock file while it is fresh, and takes it over once it is old', async () => {
    await writeFile(join(dir, LOCK_FILE), 'not a lock');
    await refusal(DirLock.acquire(dir));
    const old = new Date(Date.now() - STALE_MS - 5000);
    await utimes(join(dir, LOCK_FILE), old, old);
    const lock = await DirLock.acquire(dir);
    await lock.release();
  });

  it('keeps its file fresh for other hosts, and tells the run when another one has taken the lock', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      let lost: (error: Error) => void = () => undefined;
      const told = new Promise<Error>((resolve) => (lost = resolve));
      const lock = await DirLock.acquire(dir, { onLost: (error) => lost(error) });
      const old = new Date(Date.now() - 30_000);
      await utimes(join(dir, LOCK_FILE), old, old);
      vi.advanceTimersByTime(REFRESH_MS);
      // The refresh is a file-system call: wait for the time to move, not for a clock.
      await vi.waitFor(async () => expect((await stat(join(dir, LOCK_FILE))).mtimeMs).toBeGreaterThan(old.getTime() + 1000));
      await plant({ token: 'taken over by another host' });
      vi.advanceTimersByTime(REFRESH_MS);
      expect((await told).message).toMatch(/lost the lock .* to another run; stopping so that two runs never write one directory/);
      await lock.release();
    } finally {
      vi.useRealTimers();
    }
  });

  it('release leaves a lock that is not its own alone', async () => {
    const lock = await DirLock.acquire(dir);
    await plant({ token: 'someone else' });
    await lock.release();
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ token: 'someone else' });
  });
});
