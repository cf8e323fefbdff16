// Replacing a small file so that it is whole or absent, even after a crash or a power loss.
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `text` to `path` through a temporary file that is flushed to disk (fsync) and renamed over it,
 * then flushes the directory so the rename itself survives a power loss: a reader finds the old file or
 * the new one, never a part. The temporary file is removed if anything fails.
 */
export async function replaceFile(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
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
