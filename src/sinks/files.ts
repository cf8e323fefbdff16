// Files in --out that only we write: opened without following symlinks, replaced whole (even after a crash or a power loss), errors that name the path.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError, FatalError } from '../errors.js';

const { O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW } = constants;

/**
 * Open flags that never follow a symbolic link at the last component: a link planted in --out (say
 * `interactions.ndjson -> ~/.ssh/authorized_keys`) makes the open fail with ELOOP instead of writing
 * through it. (O_NOFOLLOW is 0 where the platform has none; there the lstat check of `refuseLinks` stands.)
 */
export const NO_FOLLOW = {
  append: O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW,
  truncate: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW,
  readWrite: O_RDWR | O_NOFOLLOW,
  createExclusive: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
} as const;

/**
 * A file-system error as the person running the command reads it: the operation, the path and the
 * reason (`cannot append to run1/interactions.ndjson (ENOSPC: no space left on device)`), as a
 * FatalError (exit 1). The caller adds what to do (the resume command).
 */
export function fsError(error: unknown, operation: string, path: string): FatalError {
  if (error instanceof FatalError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const reason = REASONS[code ?? ''] ?? (error instanceof Error ? error.message.replace(/^[A-Z]+: /, '').split(',')[0] : String(error));
  return new FatalError(`cannot ${operation} ${path} (${code === undefined ? '' : `${code}: `}${reason})`, { cause: error });
}

const REASONS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory',
  ELOOP: 'is a symbolic link, which personaflow does not write through',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EIO: 'input/output error',
};

/** Refuses (a ConfigError: a bad --out) if any of `paths` exists as a symbolic link: files in --out are only ever our own regular files. */
export async function refuseLinks(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const info = await lstat(path).catch(() => undefined);
    if (info?.isSymbolicLink() === true) throw new ConfigError(`${path} is a symbolic link; personaflow writes only regular files of its own in --out and never through a link. Remove it, then run again`);
  }
}

/** Opens `path` with `flags` (NO_FOLLOW's), turning a failure into one that names the path and what was being done. */
export async function openOwn(path: string, flags: number, operation: string): Promise<FileHandle> {
  try {
    return await open(path, flags, 0o644);
  } catch (error) {
    throw fsError(error, operation, path);
  }
}

/**
 * Writes `text` to `path` through a temporary file that is flushed to disk (fsync) and renamed over it,
 * then flushes the directory so the rename itself survives a power loss: a reader finds the old file or
 * the new one, never a part. The temporary file has a random name and is created exclusively, without
 * following links, so nothing planted in the directory is written through; the rename replaces a link at
 * `path` itself, not what it points to. The temporary file is removed if anything fails.
 */
export async function replaceFile(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temporary, NO_FOLLOW.createExclusive, 0o644);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw fsError(error, 'replace', path);
  }
  await syncDirectory(dirname(path));
}

/** `replaceFile` for a JSON value, two-space indented with a final newline. */
export const replaceJson = (path: string, value: unknown): Promise<void> => replaceFile(path, `${JSON.stringify(value, null, 2)}\n`);

/** Flushes a directory's entries (a rename in it); where directories cannot be opened for that, nothing. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync().catch(() => undefined);
  } finally {
    await handle.close();
  }
}
