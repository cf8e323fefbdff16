// One writer per --out directory: a lock file naming its owner (pid, host, start), taken atomically, taken over only when its owner is gone.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError, FatalError } from '../errors.js';
import { quoted } from '../redact.js';
import { NO_FOLLOW, fsError } from './files.js';

/** The lock file's name inside DIR. Not one of the output files: a directory holding only it is empty. */
export const LOCK_FILE = 'personaflow.lock';

/** A lock on another host whose file was not refreshed for this long is stale (its owner refreshes it every REFRESH_MS). */
export const STALE_MS = 60_000;
/** How often the owner refreshes the lock file's time (and checks it still owns it). */
export const REFRESH_MS = 10_000;

/** What the lock file says about its owner. */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly started_at: string;
  /** The process's start time in clock ticks since boot (Linux), so a pid reused after a kill is told apart. */
  readonly process_start?: string | undefined;
  /** Random, this lock's own: a takeover checks it moved the very file it judged stale. */
  readonly token: string;
}

/** The start time of process `pid` in clock ticks since boot (field 22 of /proc/PID/stat), where /proc has it. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether process `pid` runs on this host (a process of another user counts: signal 0 says EPERM). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Why the lock's owner is gone, or undefined while it may still be writing. On this host: its pid runs
 * no more, or runs a later process (another start time). On another host we cannot look: the owner
 * refreshes the file's time every REFRESH_MS, so a file older than STALE_MS is an owner that is gone. A
 * file that is not a lock (damaged) counts as gone once it is that old too.
 */
function gone(owner: LockOwner | undefined, ageMs: number): string | undefined {
  if (owner === undefined) return ageMs > STALE_MS ? 'its lock file is unreadable and old' : undefined;
  if (owner.host !== hostname()) return ageMs > STALE_MS ? `its host ${owner.host} has not refreshed it for ${Math.round(ageMs / 1000)} s` : undefined;
  if (!running(owner.pid)) return `process ${owner.pid} is gone`;
  const start = processStart(owner.pid);
  if (owner.process_start !== undefined && start !== undefined && start !== owner.process_start) return `process ${owner.pid} is gone (its pid now belongs to another process)`;
  return undefined;
}

const parse = (text: string): LockOwner | undefined => {
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && typeof owner.host === 'string' && typeof owner.token === 'string' ? (owner as LockOwner) : undefined;
  } catch {
    return undefined;
  }
};

/** The lock file at `path` and how old it is, or undefined when there is none. */
async function readLock(path: string): Promise<{ owner: LockOwner | undefined; text: string; ageMs: number } | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { owner: parse(text), text, ageMs: Date.now() - info.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(error, 'read the lock file', path);
  }
}

/** Writes `text` to a new file at `path` that nobody else can have opened (O_EXCL, no symlink followed). */
async function writeNew(path: string, text: string): Promise<void> {
  const handle = await open(path, NO_FOLLOW.createExclusive, 0o644);
  try {
    await handle.writeFile(text, 'utf8');
  } finally {
    await handle.close();
  }
}

/**
 * The lock of an --out directory: one process writes a directory at a time. `acquire` creates the lock
 * file whole and atomically (written under a private name, then `link`ed to LOCK_FILE, which fails if it
 * exists), so two runs started together cannot both get it. A lock whose owner is gone (kill -9, a
 * crash, a reboot: see `gone`) is taken over by renaming it aside and checking it was that very file. The
 * owner refreshes the file every REFRESH_MS and checks it still holds it; `release` removes it.
 *
 * @example
 * const lock = await DirLock.acquire('run1', { onTakeover: (why) => console.error(why) });
 * try { ... } finally { await lock.release(); }
 */
export class DirLock {
  #timer: NodeJS.Timeout | undefined;
  #released = false;

  private constructor(
    readonly path: string,
    readonly owner: LockOwner,
  ) {}

  /**
   * Takes DIR's lock, or refuses with a ConfigError naming the run that holds it. `onTakeover` hears why
   * a stale lock was taken over; `onLost` that the lock was lost while the run went on (another host took
   * it over after this process stalled past STALE_MS): the run must stop writing.
   */
  static async acquire(dir: string, options: { readonly onTakeover?: (why: string) => void; readonly onLost?: (error: FatalError) => void } = {}): Promise<DirLock> {
    const path = join(dir, LOCK_FILE);
    const owner: LockOwner = { pid: process.pid, host: hostname(), started_at: new Date().toISOString(), process_start: processStart(process.pid), token: randomBytes(12).toString('hex') };
    const text = `${JSON.stringify(owner)}\n`;
    for (let attempt = 0; attempt < 8; attempt += 1) {
      const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
      try {
        await writeNew(temporary, text);
        await link(temporary, path);
        const lock = new DirLock(path, owner);
        lock.#watch(options.onLost);
        return lock;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(error, 'create the lock file', path);
      } finally {
        await unlink(temporary).catch(() => undefined);
      }
      const found = await readLock(path);
      if (found === undefined) continue;
      const why = gone(found.owner, found.ageMs);
      if (why === undefined) {
        const who = found.owner === undefined ? 'another run' : `another run (pid ${found.owner.pid} on host ${quoted(found.owner.host)}, since ${found.owner.started_at})`;
        throw new ConfigError(`--out ${dir}: ${who} is writing this directory; one run writes a directory at a time. Wait for it to end, or give this run another --out. If that run is surely gone, remove ${path}`);
      }
      // Take the stale lock over: move it aside, and remove it only if it is still the file judged stale.
      const aside = `${path}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
      try {
        await rename(path, aside);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw fsError(error, 'take over the stale lock file', path);
      }
      const moved = await readFile(aside, 'utf8').catch(() => '');
      if (moved === found.text) options.onTakeover?.(`--out ${dir}: took over the lock of a run that ended without releasing it (${why})`);
      // Another run took it over between our look and our move: put its fresh lock back.
      else await link(aside, path).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
    }
    throw new ConfigError(`--out ${dir}: could not take the lock ${path}: other runs keep taking it`);
  }

  /** Refreshes the file's time every REFRESH_MS (unref'd), and tells `onLost` if the file is no longer this lock. */
  #watch(onLost: ((error: FatalError) => void) | undefined): void {
    this.#timer = setInterval(() => {
      void (async () => {
        const found = await readLock(this.path).catch(() => undefined);
        if (this.#released) return;
        if (found?.owner?.token !== this.owner.token) {
          clearInterval(this.#timer);
          onLost?.(new FatalError(`lost the lock ${this.path} to another run; stopping so that two runs never write one directory`));
          return;
        }
        const now = new Date();
        await utimes(this.path, now, now).catch(() => undefined);
      })();
    }, REFRESH_MS);
    this.#timer.unref();
  }

  /** Removes the lock file if it is still this lock. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    const found = await readLock(this.path).catch(() => undefined);
    if (found?.owner?.token === this.owner.token) await unlink(this.path).catch(() => undefined);
  }
}
