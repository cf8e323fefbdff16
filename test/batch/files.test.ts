// splitFiles: a round's lines cut into input files within the requests and bytes limits.
import { describe, expect, it } from 'vitest';
import { splitFiles } from '../../src/batch/files.js';
import type { BatchLine } from '../../src/batch/provider.js';
import type { ChatModel } from '../../src/chat.js';

const model: ChatModel = { provider: 'sim', model: 'm', complete: () => Promise.reject(new Error('not called')) };
const line = (id: string, bytes: number): BatchLine => ({ customId: id, text: 'x'.repeat(bytes - 1), model, request: { module: 'assistant', messages: [] } });
const shape = (files: ReturnType<typeof splitFiles>): string[][] => files.map((file) => file.lines.map((l) => l.customId));

describe('splitFiles', () => {
  const cases: readonly [string, BatchLine[], { maxRequests: number; maxBytes: number }, string[][]][] = [
    ['no lines, no files', [], { maxRequests: 2, maxBytes: 100 }, []],
    ['one line', [line('a', 10)], { maxRequests: 2, maxBytes: 100 }, [['a']]],
    ['cut by requests', ['a', 'b', 'c', 'd', 'e'].map((id) => line(id, 10)), { maxRequests: 2, maxBytes: 100 }, [['a', 'b'], ['c', 'd'], ['e']]],
    // Each line is 10 bytes with its newline: 25 bytes hold two.
    ['cut by bytes', ['a', 'b', 'c'].map((id) => line(id, 10)), { maxRequests: 10, maxBytes: 25 }, [['a', 'b'], ['c']]],
    ['a line exactly at the byte limit', [line('a', 25), line('b', 1)], { maxRequests: 10, maxBytes: 25 }, [['a'], ['b']]],
  ];
  it.each(cases)('%s', (_name, lines, limits, expected) => {
    const files = splitFiles(lines, limits, (i) => `f${i}`);
    expect(shape(files)).toEqual(expected);
    expect(files.map((file) => file.name)).toEqual(expected.map((_, i) => `f${i}`));
    for (const file of files) expect(file.bytes).toBe(file.lines.reduce((sum, l) => sum + Buffer.byteLength(l.text) + 1, 0));
  });

  it('refuses a line no file can hold, and limits that are not limits', () => {
    expect(() => splitFiles([line('big', 30)], { maxRequests: 5, maxBytes: 25 }, String)).toThrowErrorMatchingInlineSnapshot(`[RangeError: batch request big is 30 bytes, over the 25-byte file limit]`);
    expect(() => splitFiles([], { maxRequests: 0, maxBytes: 25 }, String)).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`maxRequests\` to be a positive integer, got \`0\`]`);
  });
});
