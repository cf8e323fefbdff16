// replaceFile: a small file replaced whole, through a temporary file flushed to disk, never left half-written.
import { mkdtemp, readFile, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { replaceFile, replaceJson } from '../../src/sinks/files.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-files-'));
});
afterEach(async () => {
  await chmod(dir, 0o755).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe('replaceFile', () => {
  it('writes a new file and replaces an old one whole, leaving no temporary file behind', async () => {
    const path = join(dir, 'usage.json');
    await replaceFile(path, 'first\n');
    expect(await readFile(path, 'utf8')).toBe('first\n');
    await replaceJson(path, { total: 2 });
    expect(await readFile(path, 'utf8')).toBe('{\n  "total": 2\n}\n');
    expect(await readdir(dir)).toEqual(['usage.json']);
  });

  it('keeps the old file and removes the temporary one when the rename fails', async () => {
    // A directory in the way of the rename: the new text cannot replace it.
    const path = join(dir, 'taken');
    await writeFile(join(dir, 'keep.json'), 'old');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(path, 'inside'), { recursive: true });
    await expect(replaceFile(path, 'new')).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(['keep.json', 'taken']);
  });
});
