// byteLines: the one line splitter (offsets, lengths, over-long lines, memory), chunking properties;
// readLines on top of it: numbered text lines, table-style, plus chunking properties and laziness.
/* eslint-disable @typescript-eslint/require-await -- test sources are async generators over in-memory data: no await, like a stream whose data is ready */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { byteLines, readLines, type ByteLine, type Line } from '../../src/streams/ndjson.js';

type Chunk = Buffer | string | readonly number[];

const toBuffer = (chunk: Chunk): Buffer | string => (typeof chunk === 'string' || Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));

async function* chunks(parts: readonly Chunk[]): AsyncGenerator<Buffer | string> {
  for (const part of parts) yield toBuffer(part);
}

async function collect(parts: readonly Chunk[], maxLineBytes?: number): Promise<Line[]> {
  const out: Line[] = [];
  for await (const line of readLines(chunks(parts), maxLineBytes === undefined ? {} : { maxLineBytes })) out.push(line);
  return out;
}

/** Cuts `bytes` at the given positions (any numbers; taken modulo the length, deduplicated, sorted). */
function cut(bytes: Buffer, positions: readonly number[]): Buffer[] {
  if (bytes.length === 0) return [];
  const points = [...new Set(positions.map((p) => p % bytes.length))].filter((p) => p > 0).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    out.push(bytes.subarray(start, point));
    start = point;
  }
  return out;
}

const ok = (line: number, text: string): Line => ({ line, text });

/**
 * `first`, then one line of 128 MiB through one reused 64 KiB buffer (as streams may reuse theirs, so
 * all memory growth comes from the reader), then `after`; `peak()` is the array-buffer growth seen.
 */
function hugeLine(): { source: AsyncGenerator<Buffer | string>; size: number; peak: () => number } {
  const chunkBytes = 64 * 1024;
  const chunkCount = 2048;
  const shared = Buffer.alloc(chunkBytes, 'x');
  let peak = 0;
  const baseline = process.memoryUsage().arrayBuffers;
  async function* source(): AsyncGenerator<Buffer | string> {
    yield 'first\n';
    for (let i = 0; i < chunkCount; i += 1) {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline);
      yield shared;
    }
    yield '\nafter\n';
  }
  return { source: source(), size: chunkBytes * chunkCount, peak: () => peak };
}

describe('readLines', () => {
  it.each<{ name: string; input: Chunk[]; expected: Line[] }>([
    { name: 'empty input', input: [], expected: [] },
    { name: 'one empty chunk', input: [''], expected: [] },
    { name: 'one line', input: ['{"a":1}\n'], expected: [ok(1, '{"a":1}')] },
    { name: 'no final newline', input: ['a\nb'], expected: [ok(1, 'a'), ok(2, 'b')] },
    { name: 'CRLF', input: ['a\r\nb\r\n'], expected: [ok(1, 'a'), ok(2, 'b')] },
    { name: 'CRLF without final newline', input: ['a\r\nb\r'], expected: [ok(1, 'a'), ok(2, 'b')] },
    { name: 'CR and LF in different chunks', input: ['a\r', '\nb\r', '\n'], expected: [ok(1, 'a'), ok(2, 'b')] },
    { name: 'lone CR line endings (classic Mac), as Python reads them', input: ['a\rb\rc'], expected: [ok(1, 'a'), ok(2, 'b'), ok(3, 'c')] },
    { name: 'a lone CR inside a line ends it', input: ['a\rb\n'], expected: [ok(1, 'a'), ok(2, 'b')] },
    { name: 'lone CR at the end of a chunk, the next line in the next chunk', input: ['a\r', 'b\r'], expected: [ok(1, 'a'), ok(2, 'b')] },
    { name: 'lone CR, CRLF and LF mixed', input: ['a\rb\r\nc\nd\r\r'], expected: [ok(1, 'a'), ok(2, 'b'), ok(3, 'c'), ok(4, 'd'), ok(5, '')] },
    { name: 'a byte order mark at the start of a later line is dropped (files joined with cat)', input: ['a\n\uFEFFb\n'], expected: [ok(1, 'a'), ok(2, 'b')] },
    { name: 'line split across chunks', input: ['{"per', 'sona_id"', ':"p1"}\n{"x"', ':2}\n'], expected: [ok(1, '{"persona_id":"p1"}'), ok(2, '{"x":2}')] },
    { name: 'newline alone in a chunk', input: ['abc', '\n', 'def', '\n'], expected: [ok(1, 'abc'), ok(2, 'def')] },
    { name: 'blank lines are yielded as empty text', input: ['a\n\n\nb\n'], expected: [ok(1, 'a'), ok(2, ''), ok(3, ''), ok(4, 'b')] },
    { name: 'a lone newline is one blank line', input: ['\n'], expected: [ok(1, '')] },
    { name: 'blank CRLF line', input: ['\r\n'], expected: [ok(1, '')] },
    { name: 'whitespace is not trimmed', input: ['  a \t\n'], expected: [ok(1, '  a \t')] },
    { name: 'string and Buffer chunks mixed', input: ['ab', Buffer.from('c\nd'), '\n'], expected: [ok(1, 'abc'), ok(2, 'd')] },
    { name: 'two-byte character split across chunks', input: [[0x63, 0x61, 0x66, 0xc3], [0xa9, 0x0a]], expected: [ok(1, 'café')] },
    { name: 'three-byte character split byte by byte', input: [[0xe2], [0x82], [0xac, 0x0a]], expected: [ok(1, '€')] },
    { name: 'four-byte character split across three chunks', input: [[0x61, 0xf0, 0x9f], [0x98], [0x80, 0x62]], expected: [ok(1, 'a😀b')] },
    { name: 'a byte order mark on the first line is dropped', input: [[0xef, 0xbb, 0xbf, 0x61, 0x0a, 0x62, 0x0a]], expected: [ok(1, 'a'), ok(2, 'b')] },
    {
      name: 'invalid UTF-8 is reported with its line number, other lines are fine',
      input: ['ok 1\n', [0x62, 0x61, 0x64, 0xff, 0xfe, 0x0a], 'ok 3\n'],
      expected: [ok(1, 'ok 1'), { line: 2, error: 'invalid UTF-8' }, ok(3, 'ok 3')],
    },
    {
      name: 'a truncated multi-byte sequence at the end of a line is invalid',
      input: [[0x61, 0xe2, 0x82, 0x0a], 'b\n'],
      expected: [{ line: 1, error: 'invalid UTF-8' }, ok(2, 'b')],
    },
    {
      name: 'invalid UTF-8 on the last line without a newline',
      input: ['a\n', [0xc3]],
      expected: [ok(1, 'a'), { line: 2, error: 'invalid UTF-8' }],
    },
    { name: 'a lone surrogate encoded in UTF-8 is invalid', input: [[0xed, 0xa0, 0x80, 0x0a], 'x\n'], expected: [{ line: 1, error: 'invalid UTF-8' }, ok(2, 'x')] },
  ])('$name', async ({ input, expected }) => {
    expect(await collect(input)).toEqual(expected);
  });

  it('drops U+FEFF at the start of a later line: files joined with `cat` keep their byte order marks (U+FEFF as a character is deprecated for U+2060)', async () => {
    expect(await collect(['a\n\uFEFFb\n', '\uFEFF\n'])).toEqual([ok(1, 'a'), ok(2, 'b'), ok(3, '')]);
  });

  describe('maxLineBytes', () => {
    it.each<{ name: string; input: Chunk[]; expected: Line[] }>([
      { name: 'a line of exactly the limit is accepted', input: ['12345\n'], expected: [ok(1, '12345')] },
      { name: 'a line one byte over is reported and skipped', input: ['123456\nnext\n'], expected: [{ line: 1, error: 'line longer than 5 bytes, skipped' }, ok(2, 'next')] },
      { name: 'the limit counts bytes across chunks', input: ['123', '45\n', '123', '456\n', 'ok\n'], expected: [ok(1, '12345'), { line: 2, error: 'line longer than 5 bytes, skipped' }, ok(3, 'ok')] },
      { name: 'the limit counts bytes, not characters', input: ['éé\n', 'ééé\n'], expected: [ok(1, 'éé'), { line: 2, error: 'line longer than 5 bytes, skipped' }] },
      {
        name: 'an over-long line spread over many chunks',
        input: ['a\n', 'xxxx', 'xxxx', 'xxxx', 'xx\nb\n'],
        expected: [ok(1, 'a'), { line: 2, error: 'line longer than 5 bytes, skipped' }, ok(3, 'b')],
      },
      { name: 'an over-long last line without newline', input: ['a\n', '1234567'], expected: [ok(1, 'a'), { line: 2, error: 'line longer than 5 bytes, skipped' }] },
      {
        name: 'two over-long lines in a row keep their own numbers',
        input: ['123456\n1234567', '8\nz\n'],
        expected: [{ line: 1, error: 'line longer than 5 bytes, skipped' }, { line: 2, error: 'line longer than 5 bytes, skipped' }, ok(3, 'z')],
      },
    ])('$name', async ({ input, expected }) => {
      expect(await collect(input, 5)).toEqual(expected);
    });

    it('does not hold a huge line in memory while skipping it', async () => {
      const huge = hugeLine();
      const lines: Line[] = [];
      for await (const line of readLines(huge.source, { maxLineBytes: 1024 * 1024 })) lines.push(line);
      expect(lines).toEqual([ok(1, 'first'), { line: 2, error: 'line longer than 1048576 bytes, skipped' }, ok(3, 'after')]);
      // Holding the line would need 128 MiB; skipping it needs at most about maxLineBytes.
      expect(huge.peak()).toBeLessThan(32 * 1024 * 1024);
    });
  });

  it('copies partial lines: a source that reuses its buffer does not corrupt them', async () => {
    const shared = Buffer.alloc(4);
    async function* reusing(): AsyncGenerator<Buffer> {
      for (const part of ['ab\ncd', 'ef\ngh', 'ij\n']) {
        const bytes = Buffer.from(part);
        const view = shared.length >= bytes.length ? shared.subarray(0, bytes.length) : Buffer.alloc(bytes.length);
        bytes.copy(view);
        yield view;
        view.fill(0x3f); // the stream reuses (overwrites) the buffer once the reader asks for more
      }
    }
    const lines: Line[] = [];
    for await (const line of readLines(reusing())) lines.push(line);
    expect(lines).toEqual([ok(1, 'ab'), ok(2, 'cdef'), ok(3, 'ghij')]);
  });

  const lineText = fc
    .string({ unit: fc.oneof(fc.constantFrom('a', 'z', ' ', '{', '"', ':', 'é', '€', '😀', '\u0000', '\t'), fc.string({ unit: 'grapheme', maxLength: 1 })), maxLength: 12 })
    .filter((s) => !/[\r\n]/.test(s) && !s.startsWith('\uFEFF'));

  test.prop([fc.array(lineText, { maxLength: 15 }), fc.constantFrom('\n', '\r\n'), fc.boolean(), fc.array(fc.nat(), { maxLength: 30 })])(
    'yields the same numbered lines however the bytes are cut into chunks',
    async (lines, eol, finalNewline, positions) => {
      let text = lines.map((line) => `${line}${eol}`).join('');
      // Without a final newline an empty last line does not exist: only drop it when it has content.
      if (!finalNewline && lines.length > 0 && lines[lines.length - 1] !== '') text = text.slice(0, -eol.length);
      const parts = cut(Buffer.from(text), positions);
      expect(await collect(parts)).toEqual(lines.map((line, i) => ok(i + 1, line)));
    },
  );

  test.prop([fc.array(fc.tuple(lineText, fc.constantFrom('\n', '\r\n', '\r')), { maxLength: 15 }), fc.array(fc.nat(), { maxLength: 30 })])(
    'universal newlines: LF, CRLF and lone CR mixed give the same lines however the bytes are cut',
    async (lines, positions) => {
      // A lone CR followed by an empty line's LF is a CRLF: one line ending, not two.
      fc.pre(lines.every(([, eol], i) => eol !== '\r' || lines[i + 1] === undefined || lines[i + 1]![0] !== '' || lines[i + 1]![1] === '\r'));
      const text = lines.map(([line, eol]) => `${line}${eol}`).join('');
      expect(await collect(cut(Buffer.from(text), positions))).toEqual(lines.map(([line], i) => ok(i + 1, line)));
    },
  );

  test.prop([fc.array(fc.oneof(lineText, fc.constant(null)), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 })])(
    'an invalid line affects only its own number',
    async (spec, positions) => {
      const bytes = Buffer.concat(spec.map((line) => (line === null ? Buffer.from([0x78, 0xff, 0x0a]) : Buffer.from(`${line}\n`))));
      const expected = spec.map((line, i): Line => (line === null ? { line: i + 1, error: 'invalid UTF-8' } : ok(i + 1, line)));
      expect(await collect(cut(bytes, positions))).toEqual(expected);
    },
  );

  describe('laziness', () => {
    function counting(parts: readonly string[]): { source: AsyncGenerator<string>; pulled: () => number; closed: () => boolean } {
      let pulled = 0;
      let closed = false;
      async function* source(): AsyncGenerator<string> {
        try {
          for (const part of parts) {
            pulled += 1;
            yield part;
          }
        } finally {
          closed = true;
        }
      }
      return { source: source(), pulled: () => pulled, closed: () => closed };
    }

    it('reading the first line pulls only the first chunk', async () => {
      const { source, pulled, closed } = counting(['one\n', 'two\n', 'three\n', 'four\n']);
      const lines = readLines(source);
      expect(pulled()).toBe(0);
      expect(await lines.next()).toEqual({ done: false, value: ok(1, 'one') });
      expect(pulled()).toBe(1);
      await lines.return(undefined);
      expect(pulled()).toBe(1);
      expect(closed()).toBe(true);
    });

    it('a first line split over chunks pulls just the chunks it needs', async () => {
      const { source, pulled } = counting(['o', 'n', 'e\ntw', 'o\n', 'three\n']);
      const lines = readLines(source);
      expect((await lines.next()).value).toEqual(ok(1, 'one'));
      expect(pulled()).toBe(3);
      expect((await lines.next()).value).toEqual(ok(2, 'two'));
      expect(pulled()).toBe(4);
      await lines.return(undefined);
    });

    it('lines already in a chunk are served without pulling more', async () => {
      const { source, pulled } = counting(['a\nb\nc\n', 'd\n']);
      const lines = readLines(source);
      for (const expected of ['a', 'b', 'c']) expect((await lines.next()).value).toEqual(expect.objectContaining({ text: expected }));
      expect(pulled()).toBe(1);
      await lines.return(undefined);
    });

    it('stops at the consumer\'s break, closing the source', async () => {
      const { source, pulled, closed } = counting(Array.from({ length: 1000 }, (_, i) => `${i}\n`));
      for await (const line of readLines(source)) if (line.line === 3) break;
      expect(pulled()).toBe(3);
      expect(closed()).toBe(true);
    });
  });

  it('propagates a source error after the lines before it', async () => {
    async function* failing(): AsyncGenerator<string> {
      yield 'a\nb';
      throw new Error('disk on fire');
    }
    const seen: Line[] = [];
    await expect(async () => {
      for await (const line of readLines(failing())) seen.push(line);
    }).rejects.toThrow('disk on fire');
    expect(seen).toEqual([ok(1, 'a')]);
  });
});

describe('byteLines', () => {
  /** Collects the lines, copying each line's bytes when it arrives (they may be a view into the chunk). */
  async function collectBytes(source: AsyncIterable<Buffer | string>, options: { start?: number; maxLineBytes?: number; universal?: boolean } = {}): Promise<ByteLine[]> {
    const out: ByteLine[] = [];
    for await (const line of byteLines(source, options)) out.push({ ...line, bytes: Buffer.from(line.bytes) });
    return out;
  }

  /** Yields copies of `parts` through one shared buffer, overwritten once the reader asks for more, as a stream may. */
  async function* reusing(parts: readonly Buffer[]): AsyncGenerator<Buffer> {
    const shared = Buffer.alloc(Math.max(1, ...parts.map((part) => part.length)));
    for (const part of parts) {
      const view = shared.subarray(0, part.length);
      part.copy(view);
      yield view;
      view.fill(0x3f);
    }
  }

  const line = (fields: Partial<ByteLine> & Pick<ByteLine, 'line' | 'offset' | 'length'>): ByteLine => ({ bytes: Buffer.alloc(0), overlong: false, terminated: true, ...fields });

  it('gives each line its number, offset from `start`, bytes (CR kept) and length (newline included)', async () => {
    expect(await collectBytes(chunks(['ab\r\n\nc', 'dé\nxyz']), { start: 100 })).toEqual([
      line({ line: 1, offset: 100, bytes: Buffer.from('ab\r'), length: 4 }),
      line({ line: 2, offset: 104, length: 1 }),
      line({ line: 3, offset: 105, bytes: Buffer.from('cdé'), length: 5 }),
      line({ line: 4, offset: 110, bytes: Buffer.from('xyz'), length: 3, terminated: false }),
    ]);
  });

  it('flags a line over maxLineBytes with an empty buffer and its full length, wherever it ends', async () => {
    expect(await collectBytes(chunks(['12345\n123', '456\nok\n1', '234567']), { maxLineBytes: 5 })).toEqual([
      line({ line: 1, offset: 0, bytes: Buffer.from('12345'), length: 6 }),
      line({ line: 2, offset: 6, length: 7, overlong: true }),
      line({ line: 3, offset: 13, bytes: Buffer.from('ok'), length: 3 }),
      line({ line: 4, offset: 16, length: 7, overlong: true, terminated: false }),
    ]);
  });

  it('skips a huge line without holding it, and counts its length for the offsets after it', async () => {
    const huge = hugeLine();
    const { size } = huge;
    expect(await collectBytes(huge.source, { maxLineBytes: 1024 * 1024 })).toEqual([
      line({ line: 1, offset: 0, bytes: Buffer.from('first'), length: 6 }),
      line({ line: 2, offset: 6, length: size + 1, overlong: true }),
      line({ line: 3, offset: 6 + size + 1, bytes: Buffer.from('after'), length: 6 }),
    ]);
    expect(huge.peak()).toBeLessThan(32 * 1024 * 1024);
  });

  it('joins a line spread over many small chunks once, from copies of them', async () => {
    const parts = Array.from({ length: 300 }, (_, i) => Buffer.from(String.fromCharCode(97 + (i % 26))));
    const text = parts.map((part) => part.toString()).join('');
    expect(await collectBytes(reusing([...parts, Buffer.from('\n')]))).toEqual([line({ line: 1, offset: 0, bytes: Buffer.from(text), length: 301 })]);
  });

  it('stops reading when the consumer stops', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<string> {
      for (let i = 0; i < 100; i += 1) {
        pulled += 1;
        yield `${i}\n`;
      }
    }
    for await (const { line: number } of byteLines(source())) if (number === 2) break;
    expect(pulled).toBe(2);
  });

  // Property: random lines (empty, CRLF, multi-byte, some over the limit), cut into random chunks.
  const piece = fc.oneof(
    fc.string({ unit: fc.constantFrom('a', ' ', '"', 'é', '€', '😀', '\r', '\t'), maxLength: 6 }),
    fc.string({ unit: fc.constantFrom('x', 'é', '😀'), minLength: 5, maxLength: 40 }),
  );
  const arbInput = fc.record({
    lines: fc.array(fc.record({ text: piece, crlf: fc.boolean() }), { maxLength: 20 }),
    finalNewline: fc.boolean(),
    positions: fc.array(fc.nat(), { maxLength: 40 }),
    maxLineBytes: fc.integer({ min: 1, max: 24 }),
    start: fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 40 })),
  });

  test.prop([arbInput])('offsets and lengths tile the input, bytes are the lines, over-long lines are flagged and never held', async ({ lines, finalNewline, positions, maxLineBytes, start }) => {
    // Each line's bytes as byteLines should give them (a CR before the LF is part of the line).
    const contents = lines.map(({ text, crlf }) => Buffer.from(crlf ? `${text}\r` : text));
    const terminated = contents.map(() => true);
    // Without a final newline the last line ends the input; an empty one then does not exist.
    if (!finalNewline && contents.length > 0 && (contents[contents.length - 1] as Buffer).length > 0) terminated[terminated.length - 1] = false;
    const input = Buffer.concat(contents.map((content, i) => (terminated[i] === true ? Buffer.concat([content, Buffer.from('\n')]) : content)));

    const got = await collectBytes(reusing(cut(input, positions)), { start, maxLineBytes });

    expect(got.map((l) => l.line)).toEqual(contents.map((_, i) => i + 1));
    let offset = start;
    for (const [i, l] of got.entries()) {
      const content = contents[i] as Buffer;
      expect(l.offset).toBe(offset);
      expect(l.terminated).toBe(terminated[i]);
      expect(l.length).toBe(content.length + (l.terminated ? 1 : 0));
      expect(input.subarray(l.offset - start, l.offset - start + l.length).toString('latin1')).toBe(Buffer.concat([content, Buffer.from(l.terminated ? '\n' : '')]).toString('latin1'));
      expect(l.overlong).toBe(content.length > maxLineBytes);
      // A line over the limit never comes out as bytes: it was not held.
      expect(l.bytes.length).toBeLessThanOrEqual(maxLineBytes);
      expect(l.bytes.equals(l.overlong ? Buffer.alloc(0) : content)).toBe(true);
      offset += l.length;
    }
    expect(offset - start).toBe(input.length);
  });

  test.prop([fc.array(fc.tuple(fc.string({ unit: fc.constantFrom('a', 'é', ' '), maxLength: 6 }), fc.constantFrom('\n', '\r\n', '\r')), { maxLength: 15 }), fc.array(fc.nat(), { maxLength: 30 }), fc.integer({ min: 1, max: 8 })])(
    'universal: a lone CR ends a line too; offsets and lengths still tile the input, through a reused buffer',
    async (lines, positions, maxLineBytes) => {
      fc.pre(lines.every(([, eol], i) => eol !== '\r' || lines[i + 1] === undefined || lines[i + 1]![0] !== '' || lines[i + 1]![1] === '\r'));
      const input = Buffer.from(lines.map(([text, eol]) => `${text}${eol}`).join(''));
      const got = await collectBytes(reusing(cut(input, positions)), { universal: true, maxLineBytes });
      expect(got.length).toBe(lines.length);
      let offset = 0;
      for (const [i, l] of got.entries()) {
        const [text, eol] = lines[i]!;
        // A CR before the LF stays in the bytes (as without universal); a lone CR does not.
        const content = Buffer.from(eol === '\r\n' ? `${text}\r` : text);
        expect(l.offset).toBe(offset);
        expect(l.length).toBe(Buffer.byteLength(`${text}${eol}`));
        expect(l.overlong).toBe(content.length > maxLineBytes);
        expect(l.bytes.equals(l.overlong ? Buffer.alloc(0) : content)).toBe(true);
        offset += l.length;
      }
      expect(offset).toBe(input.length);
    },
  );

  test.prop([fc.array(fc.nat(), { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 40 })])('cuts the same lines however the bytes are chunked', async (positionsA, positionsB) => {
    const input = Buffer.from('one\r\n\ntwo é😀\n' + 'x'.repeat(30) + '\nthree\nlast');
    const a = await collectBytes(chunks(cut(input, positionsA)), { maxLineBytes: 16 });
    expect(await collectBytes(reusing(cut(input, positionsB)), { maxLineBytes: 16 })).toEqual(a);
    expect(a.map((l) => [l.offset, l.length, l.overlong])).toEqual([
      [0, 5, false],
      [5, 1, false],
      [6, 11, false],
      [17, 31, true],
      [48, 6, false],
      [54, 4, false],
    ]);
  });
});
