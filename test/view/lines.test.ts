// lineAt: a line read in place by its offset, and only where a line starts.
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineAt, parseLine } from '../../src/view/lines.js';

let dir: string;
const text = '{"a":1}\n{"b":"ünïcode"}\n' + `{"c":"${'x'.repeat(200_000)}"}\n` + '{"torn":';
const starts = [0, 8, 8 + Buffer.byteLength('{"b":"ünïcode"}\n')];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-lines-'));
  await writeFile(join(dir, 'f.ndjson'), text);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('lineAt', () => {
  it('reads each line by its offset, with or without its length, across chunk boundaries', async () => {
    const handle = await open(join(dir, 'f.ndjson'));
    const size = Buffer.byteLength(text);
    try {
      expect(parseLine(await lineAt(handle, starts[0]!, size))).toEqual({ a: 1 });
      expect(parseLine(await lineAt(handle, starts[1]!, size, Buffer.byteLength('{"b":"ünïcode"}\n')))).toEqual({ b: 'ünïcode' });
      expect((parseLine(await lineAt(handle, starts[2]!, size)) as { c: string }).c).toHaveLength(200_000);
      // The torn last line is read but is not JSON.
      const last = starts[2]! + 200_008 + 1;
      expect((await lineAt(handle, last, size))?.toString()).toBe('{"torn":');
      expect(parseLine(await lineAt(handle, last, size))).toBeUndefined();
    } finally {
      await handle.close();
    }
  });

  it.each([
    ['inside a line', 3],
    ['negative', -1],
    ['past the end', 10_000_000],
    ['not an integer', 8.5],
    ['unsafe', 2 ** 60],
  ])('refuses an offset %s', async (_, at) => {
    const handle = await open(join(dir, 'f.ndjson'));
    try {
      expect(await lineAt(handle, at, Buffer.byteLength(text))).toBeUndefined();
    } finally {
      await handle.close();
    }
  });
});
