// The query dataset (PersonaGym's query.jsonl): line parsing and ids, the byte-offset index and its
// FILE:LINE reports, per-persona draws, round robin, and readTasks' `queries` option.
/* eslint-disable @typescript-eslint/require-await -- persona sources are async generators over in-memory data */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { rngFor } from '../../src/rng.js';
import { readTasks, type TaskOptions } from '../../src/streams/personas.js';
import { QueryDataset, parseQueryLine, type DatasetQuery, type QueryDatasetOptions } from '../../src/streams/queries.js';
import type { Task } from '../../src/types.js';

// ---------------------------------------------------------------------------------------------------------
// Helpers

const TEXT_KEYS = ['instruction', 'query', 'question', 'prompt', 'text', 'input'] as const;
const ID_KEYS = ['query_id', 'id', 'source_id', 'uid', 'uuid', 'qid'] as const;
const SOURCE_KEYS = ['dataset', 'source', 'file'] as const;

/** PersonaGym's hash id, computed here independently of the code under test. */
const hashId = (file: string, index: number, text: string): string => `hash:${createHash('sha1').update(`${file}:${index}:${text}`).digest('hex').slice(0, 16)}`;

let dir: string;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-queries-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `content` to a fresh file (its own directory, so the base name can be chosen freely). */
async function writeQueries(content: string | Buffer, name = 'query.jsonl'): Promise<string> {
  const sub = join(dir, String(counter++));
  await mkdir(sub);
  const path = join(sub, name);
  await writeFile(path, content);
  return path;
}

/** Opens a dataset, collecting its warnings; closes it after `use`. */
async function withDataset<T>(paths: string | readonly string[], options: QueryDatasetOptions, use: (dataset: QueryDataset, warnings: string[]) => Promise<T>): Promise<T> {
  const warnings: string[] = [];
  const dataset = await QueryDataset.open(paths, { onWarning: (message) => warnings.push(message), ...options });
  try {
    return await use(dataset, warnings);
  } finally {
    await dataset.close();
  }
}

const all = async (dataset: QueryDataset): Promise<DatasetQuery[]> => Promise.all(Array.from({ length: dataset.size }, (_, i) => dataset.get(i)));

const jsonl = (...records: unknown[]): string => records.map((record) => (typeof record === 'string' ? record : JSON.stringify(record))).join('\n') + '\n';

/** A dataset of `texts` with ids `q0`, `q1`, ... */
const datasetOf = (texts: readonly string[]): string => jsonl(...texts.map((text, i) => ({ query_id: `q${i}`, query: text })));

// ---------------------------------------------------------------------------------------------------------

describe('parseQueryLine', () => {
  const parsed = (json: unknown, file = 'query.jsonl', index = 0): DatasetQuery => {
    const result = parseQueryLine(json, file, index);
    if (typeof result === 'string') throw new Error(`expected a query, got: ${result}`);
    return result;
  };

  it.each(TEXT_KEYS.map((key, i) => [key, i] as const))('reads the text from `%s`, before the keys after it', (key, i) => {
    const line: Record<string, unknown> = { id: 1 };
    for (const later of TEXT_KEYS.slice(i)) line[later] = `from ${later}`;
    line.conversations = [{ from: 'human', value: 'from conversations' }];
    expect(parsed(line).text).toBe(`from ${key}`);
  });

  it('skips empty and blank values and trims the text', () => {
    expect(parsed({ instruction: '', query: '   ', question: '\n', prompt: '  Plan a trip to Rome  ' }).text).toBe('Plan a trip to Rome');
  });

  it('looks at the top level before `metadata`, and at `metadata` before conversations', () => {
    expect(parsed({ input: 'top-level input', metadata: { instruction: 'metadata instruction' } }).text).toBe('top-level input');
    expect(parsed({ other: 1, metadata: { question: 'metadata question' }, conversations: [{ value: 'conv' }] }).text).toBe('metadata question');
    expect(parsed({ instruction: ' ', metadata: { instruction: '', text: 'metadata text' } }).text).toBe('metadata text');
  });

  it('falls back to conversations[0].value', () => {
    expect(parsed({ conversations: [{ from: 'human', value: '  Explain recursion ' }, { from: 'gpt', value: 'Recursion is...' }] }).text).toBe('Explain recursion');
  });

  it('keeps `metadata`, and gives undefined when there is none', () => {
    expect(parsed({ query: 'x', metadata: { category: 'coding', level: 2 } }).metadata).toEqual({ category: 'coding', level: 2 });
    expect(parsed({ query: 'x' }).metadata).toBeUndefined();
    expect(parsed({ query: 'x', metadata: 'not an object' }).metadata).toBeUndefined();
  });

  it.each(ID_KEYS.map((key, i) => [key, i] as const))('takes the id from `%s`, before the keys after it', (key, i) => {
    const line: Record<string, unknown> = { query: 'q' };
    for (const later of ID_KEYS.slice(i)) line[later] = `${later}-value`;
    expect(parsed(line, 'alpaca.jsonl').queryId).toBe(`alpaca.jsonl:${key}-value`);
  });

  it('prefixes the id with dataset, else source, else file, else the file name', () => {
    expect(parsed({ query: 'q', id: 7, dataset: 'alpaca', source: 'src', file: 'f.json' }).queryId).toBe('alpaca:7');
    expect(parsed({ query: 'q', id: 7, source: 'src', file: 'f.json' }).queryId).toBe('src:7');
    expect(parsed({ query: 'q', id: 7, file: 'f.json' }).queryId).toBe('f.json:7');
    expect(parsed({ query: 'q', id: 7 }, 'mine.jsonl').queryId).toBe('mine.jsonl:7');
    expect(parsed({ query: 'q', metadata: { uid: ' u-1 ', dataset: 'dolly' } }).queryId).toBe('dolly:u-1');
    expect(parsed({ query: 'q', uuid: 'abc', dataset: '' }, 'x.jsonl').queryId).toBe('x.jsonl:abc');
  });

  it('derives `hash:` + 16 hex digits of sha1(file:index:text) when the line has no id', () => {
    expect(parsed({ query: '  Write a haiku  ' }, 'q.jsonl', 3).queryId).toBe(hashId('q.jsonl', 3, 'Write a haiku'));
    expect(parsed({ query: 'Write a haiku', id: '' }, 'q.jsonl', 0).queryId).toBe(hashId('q.jsonl', 0, 'Write a haiku'));
    expect(parsed({ query: 'Write a haiku' }, 'q.jsonl', 3).queryId).toMatch(/^hash:[0-9a-f]{16}$/);
    // Index and file are part of it.
    expect(parsed({ query: 'Write a haiku' }, 'q.jsonl', 4).queryId).not.toBe(parsed({ query: 'Write a haiku' }, 'q.jsonl', 3).queryId);
    expect(parsed({ query: 'Write a haiku' }, 'r.jsonl', 3).queryId).not.toBe(parsed({ query: 'Write a haiku' }, 'q.jsonl', 3).queryId);
  });

  test.prop([fc.string({ maxLength: 40 }).filter((s) => s.trim() !== ''), fc.string({ minLength: 1, maxLength: 20 }), fc.nat(10_000)])('the hash id matches sha1 for any text, file and index', (text, file, index) => {
    expect(parsed({ prompt: text }, file, index)).toEqual({ queryId: hashId(file, index, text.trim()), text: text.trim(), metadata: undefined });
  });

  it.each<[string, unknown]>([
    ['an object without text keys', { foo: 'bar', id: 1 }],
    ['blank text values', { query: '  ', instruction: '', metadata: { prompt: ' ' } }],
    ['empty conversations', { conversations: [] }],
    ['a conversation without a value', { conversations: [{ from: 'human' }] }],
    ['a blank conversation value', { conversations: [{ value: '   ' }] }],
    ['an array', ['query']],
    ['null', null],
    ['a string', 'Write a haiku'],
  ])('gives a reason string for %s', (_name, json) => {
    const result = parseQueryLine(json, 'q.jsonl', 0);
    expect(typeof result).toBe('string');
    expect(result).not.toBe('');
  });

  it('names the keys it looked for when there is no text', () => {
    expect(parseQueryLine({ foo: 1 }, 'q.jsonl', 0)).toMatch(/instruction.*conversations/);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('QueryDataset.open', () => {
  it('indexes valid lines only, reporting bad lines as PATH:LINE (blank lines, CRLF and a last line without newline counted)', async () => {
    const content = [
      '{"query_id": "a", "query": "First question"}\r\n', // 1
      '\r\n', // 2 blank
      'not json\r\n', // 3 bad
      '{"id": 5, "foo": "no text"}\n', // 4 no text
      '   \n', // 5 blank
      '{"instruction": "Second question", "dataset": "dolly", "id": 2}\r\n', // 6
      '{"query": "cut off\n', // 7 bad
      '\n', // 8 blank
      '[1, 2]\n', // 9 not an object
      '{"conversations": [{"value": "Third question"}]}', // 10, no newline
    ].join('');
    const path = await writeQueries(content);
    await withDataset(path, {}, async (dataset, warnings) => {
      expect(dataset.size).toBe(3);
      expect(await all(dataset)).toEqual([
        { queryId: 'query.jsonl:a', text: 'First question', metadata: undefined },
        { queryId: 'dolly:2', text: 'Second question', metadata: undefined },
        { queryId: hashId('query.jsonl', 2, 'Third question'), text: 'Third question', metadata: undefined },
      ]);
      expect(warnings).toHaveLength(4);
      expect(warnings[0]).toMatch(new RegExp(`^${escape(path)}:3: invalid JSON`));
      expect(warnings[1]).toMatch(new RegExp(`^${escape(path)}:4: no query text`));
      expect(warnings[2]).toMatch(new RegExp(`^${escape(path)}:7: invalid JSON`));
      expect(warnings[3]).toMatch(new RegExp(`^${escape(path)}:9: expected a JSON object`));
    });
  });

  it('reads a last line without newline that is bad, with its number', async () => {
    const path = await writeQueries('{"query": "one"}\n\n{"query": ');
    await withDataset(path, {}, async (dataset, warnings) => {
      expect(dataset.size).toBe(1);
      expect(warnings).toEqual([expect.stringMatching(new RegExp(`^${escape(path)}:3: invalid JSON`))]);
    });
  });

  it('gives an empty dataset for an empty file', async () => {
    const path = await writeQueries('');
    await withDataset(path, {}, async (dataset, warnings) => {
      expect(dataset.size).toBe(0);
      expect(warnings).toEqual([]);
      expect(await dataset.assign(3, rngFor(1, 'p', 'queries'))).toEqual([]);
      expect(await dataset.nextInOrder(3)).toEqual([]);
    });
  });

  it('throws a ConfigError at the first bad line when strict, and does not warn for it', async () => {
    const path = await writeQueries(jsonl({ query: 'fine' }, '{"query": oops}', { nothing: 1 }));
    const warnings: string[] = [];
    const opening = QueryDataset.open(path, { strict: true, onWarning: (message) => warnings.push(message) });
    await expect(opening).rejects.toBeInstanceOf(ConfigError);
    await expect(QueryDataset.open(path, { strict: true })).rejects.toThrow(new RegExp(`^${escape(path)}:2: invalid JSON.*--strict`));
    expect(warnings).toEqual([]);
    // A line without text is refused too.
    const noText = await writeQueries(jsonl({ query: 'fine' }, { nothing: 1 }));
    await expect(QueryDataset.open(noText, { strict: true })).rejects.toThrow(new RegExp(`^${escape(noText)}:2: no query text`));
    // A good file passes strict.
    const good = await writeQueries(jsonl({ query: 'a' }, '', { query: 'b' }));
    await withDataset(good, { strict: true }, async (dataset) => expect(dataset.size).toBe(2));
  });

  it('refuses a file that cannot be read with a ConfigError naming it', async () => {
    const missing = join(dir, 'does-not-exist.jsonl');
    await expect(QueryDataset.open(missing)).rejects.toThrow(ConfigError);
    await expect(QueryDataset.open(missing)).rejects.toThrow(/does-not-exist\.jsonl.*ENOENT/);
    const good = await writeQueries(jsonl({ query: 'a' }));
    await expect(QueryDataset.open([good, missing])).rejects.toThrow(ConfigError);
  });

  it('stops at maxQueries: the rest of the file is not read (no warnings from it)', async () => {
    const path = await writeQueries(jsonl('bad line', { query: 'a' }, { query: 'b' }, { query: 'c' }, 'also bad', { query: 'd' }));
    await withDataset(path, { maxQueries: 2 }, async (dataset, warnings) => {
      expect(dataset.size).toBe(2);
      expect((await all(dataset)).map((q) => q.text)).toEqual(['a', 'b']);
      expect(warnings).toEqual([expect.stringMatching(/:1: invalid JSON/)]);
    });
    await withDataset(path, { maxQueries: 100 }, async (dataset, warnings) => {
      expect(dataset.size).toBe(4);
      expect(warnings).toHaveLength(2);
    });
  });

  it('reads several files in order, with each file its own name, line numbers and hash positions', async () => {
    const first = await writeQueries(jsonl({ query: 'a1', id: 1 }, 'bad', { query: 'a2' }), 'first.jsonl');
    const second = await writeQueries(jsonl({ nothing: 0 }, { query: 'b1' }, { query: 'b2', id: 1 }), 'second.jsonl');
    await withDataset([first, second], {}, async (dataset, warnings) => {
      expect(dataset.paths).toEqual([first, second]);
      expect(await all(dataset)).toEqual([
        { queryId: 'first.jsonl:1', text: 'a1', metadata: undefined },
        { queryId: hashId('first.jsonl', 1, 'a2'), text: 'a2', metadata: undefined },
        { queryId: hashId('second.jsonl', 0, 'b1'), text: 'b1', metadata: undefined },
        { queryId: 'second.jsonl:1', text: 'b2', metadata: undefined },
      ]);
      expect(warnings).toEqual([expect.stringMatching(new RegExp(`^${escape(first)}:2: `)), expect.stringMatching(new RegExp(`^${escape(second)}:1: `))]);
    });
  });

  it('counts maxQueries across files and does not read the files after it is reached', async () => {
    const first = await writeQueries(jsonl({ query: 'a1' }, { query: 'a2' }, { query: 'a3' }));
    const second = await writeQueries(jsonl('bad', { query: 'b1' }, { query: 'b2' }, 'bad'));
    const third = await writeQueries(jsonl('bad', { query: 'c1' }));
    await withDataset([first, second, third], { maxQueries: 4 }, async (dataset, warnings) => {
      expect((await all(dataset)).map((q) => q.text)).toEqual(['a1', 'a2', 'a3', 'b1']);
      expect(warnings).toEqual([expect.stringMatching(new RegExp(`^${escape(second)}:1: invalid JSON`))]);
    });
    await withDataset([first, second, third], { maxQueries: 3 }, async (dataset, warnings) => {
      expect((await all(dataset)).map((q) => q.text)).toEqual(['a1', 'a2', 'a3']);
      expect(warnings).toEqual([]);
    });
  });

  it('keeps byte offsets right across read chunks, multi-byte characters and CRLF (a file of several hundred KB)', async () => {
    const texts = Array.from({ length: 3000 }, (_, i) => `Frage ${i}: ${'ü€😀'.repeat(i % 13)} ${'x'.repeat((i * 37) % 120)}`);
    const lines = texts.map((text, i) => (i % 97 === 5 ? `{"broken": ${i}\r\n` : `${JSON.stringify({ id: i, question: text })}${i % 2 === 0 ? '\r\n' : '\n'}`));
    const path = await writeQueries(lines.join(''));
    await withDataset(path, {}, async (dataset, warnings) => {
      const expected = texts.filter((_, i) => i % 97 !== 5).map((text) => text.trim());
      expect(dataset.size).toBe(expected.length);
      expect((await all(dataset)).map((q) => q.text)).toEqual(expected);
      expect(warnings.map((w) => Number(/:(\d+): /.exec(w.slice(path.length))?.[1]))).toEqual(texts.map((_, i) => i).filter((i) => i % 97 === 5).map((i) => i + 1));
    });
  });

  it('get refuses an index outside the dataset', async () => {
    const path = await writeQueries(jsonl({ query: 'a' }, { query: 'b' }));
    await withDataset(path, {}, async (dataset) => {
      for (const index of [-1, 2, 1.5, Number.NaN]) await expect(dataset.get(index)).rejects.toThrow(RangeError);
    });
  });

  // Regression (fixed): a file saved with a UTF-8 byte order mark (common for files written on Windows) is indexed fine,
  // since the scan trims the line and String.prototype.trim removes U+FEFF, but `get` parses the raw bytes
  // without trimming, so JSON.parse fails on the BOM and reading the first query throws
  // "a query line changed on disk while the run was reading it". Counterexample: "\uFEFF{\"query\":\"a\"}\n".
  it('reads the first query of a file that starts with a UTF-8 byte order mark', async () => {
    const path = await writeQueries(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(jsonl({ query: 'a' }, { query: 'b' }))]));
    await withDataset(path, {}, async (dataset, warnings) => {
      expect(dataset.size).toBe(2);
      expect(warnings).toEqual([]);
      expect((await dataset.get(0)).text).toBe('a');
    });
  });

  it('reports a line over maxLineBytes as PATH:LINE and skips it; the lines after it keep their numbers and offsets', async () => {
    const long = JSON.stringify({ query_id: 'long', query: `${'ü'.repeat(40)}?` }); // valid, but 100 bytes
    const content = [jsonl({ query_id: 'a', query: 'Première question 😀' }), `${long}\r\n`, jsonl('not json', { query_id: 'b', query: 'Zweite Frage' }), long].join('');
    const path = await writeQueries(content);
    await withDataset(path, { maxLineBytes: 64 }, async (dataset, warnings) => {
      expect(warnings).toEqual([`${path}:2: line longer than 64 bytes, skipped`, expect.stringMatching(new RegExp(`^${escape(path)}:3: invalid JSON`)), `${path}:5: line longer than 64 bytes, skipped`]);
      // Read back from disk by offset and length: right only if the skipped line was counted.
      expect(await all(dataset)).toEqual([
        { queryId: 'query.jsonl:a', text: 'Première question 😀', metadata: undefined },
        { queryId: 'query.jsonl:b', text: 'Zweite Frage', metadata: undefined },
      ]);
    });
    await expect(QueryDataset.open(path, { maxLineBytes: 64, strict: true })).rejects.toThrow(new RegExp(`^${escape(path)}:2: line longer than 64 bytes, skipped.*--strict`));
    // Under the default limit (16 MiB) the same file is all queries but the bad one.
    await withDataset(path, {}, async (dataset, warnings) => {
      expect(dataset.size).toBe(4);
      expect(warnings).toHaveLength(1);
    });
  });

  // ---------------------------------------------------------------------------------------------------------
  // Property: random files against an independent model of what should be indexed and reported.

  type LineSpec =
    | { kind: 'valid'; where: 'top' | 'metadata' | 'conversations'; key: (typeof TEXT_KEYS)[number]; text: string; id: { key: (typeof ID_KEYS)[number]; value: string | number } | null; source: { key: (typeof SOURCE_KEYS)[number]; value: string } | null }
    | { kind: 'blank' | 'bad' | 'notext'; raw: string };

  const textArb = fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.string({ minLength: 1, maxLength: 10, unit: 'grapheme' })).filter((s) => s.trim() !== '');
  const lineArb: fc.Arbitrary<LineSpec> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('valid' as const),
        where: fc.constantFrom('top' as const, 'metadata' as const, 'conversations' as const),
        key: fc.constantFrom(...TEXT_KEYS),
        text: textArb,
        id: fc.option(fc.record({ key: fc.constantFrom(...ID_KEYS), value: fc.oneof(fc.nat(1000), fc.stringMatching(/^[a-z0-9-]{1,8}$/)) }), { nil: null }),
        source: fc.option(fc.record({ key: fc.constantFrom(...SOURCE_KEYS), value: fc.stringMatching(/^[a-z]{1,6}$/) }), { nil: null }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('blank' as const), raw: fc.constantFrom('', '   ', '\t') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bad' as const), raw: fc.constantFrom('not json', '{"query": "x"', '{"query": "a",}', '[', "{'query': 'x'}") }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('notext' as const), raw: fc.constantFrom('{"foo": "bar"}', '{"query": "   "}', '[1, 2]', '"a string"', 'null', '{"conversations": []}', '{"metadata": {"note": 1}}') }) },
  );
  const fileArb = fc.record({ lines: fc.array(fc.record({ line: lineArb, crlf: fc.boolean() }), { maxLength: 12 }), lastNewline: fc.boolean() });

  const render = (spec: LineSpec): string => {
    if (spec.kind !== 'valid') return spec.raw;
    const record: Record<string, unknown> = {};
    if (spec.where === 'top') record[spec.key] = spec.text;
    else if (spec.where === 'metadata') record.metadata = { [spec.key]: spec.text };
    else record.conversations = [{ from: 'human', value: spec.text }];
    if (spec.id !== null) record[spec.id.key] = spec.id.value;
    if (spec.source !== null) record[spec.source.key] = spec.source.value;
    return JSON.stringify(record);
  };

  test.prop([fc.array(fileArb, { minLength: 1, maxLength: 3 }), fc.option(fc.nat(15), { nil: undefined })], { numRuns: 60 })(
    'indexes exactly the valid lines of several files, in order and up to maxQueries, and get(i) returns each one',
    async (files, maxQueries) => {
      const paths: string[] = [];
      const expected: Array<{ queryId: string; text: string }> = [];
      const expectedWarnings: string[] = [];
      const max = maxQueries ?? Number.POSITIVE_INFINITY;
      for (const [f, file] of files.entries()) {
        const name = `part${f}.jsonl`;
        const content = file.lines.map(({ line, crlf }, i) => render(line) + (i < file.lines.length - 1 || file.lastNewline ? (crlf ? '\r\n' : '\n') : '')).join('');
        const path = await writeQueries(content, name);
        paths.push(path);
        if (expected.length >= max) continue;
        let position = 0;
        for (const [i, { line }] of file.lines.entries()) {
          if (expected.length >= max) break;
          if (line.kind === 'bad' || line.kind === 'notext') expectedWarnings.push(`${path}:${i + 1}: `);
          if (line.kind !== 'valid') continue;
          const text = line.text.trim();
          const queryId = line.id !== null ? `${line.source?.value ?? name}:${String(line.id.value)}` : hashId(name, position, text);
          expected.push({ queryId, text });
          position += 1;
        }
      }
      await withDataset(paths, { maxQueries }, async (dataset, warnings) => {
        expect(dataset.size).toBe(expected.length);
        expect((await all(dataset)).map(({ queryId, text }) => ({ queryId, text }))).toEqual(expected);
        expect(warnings).toHaveLength(expectedWarnings.length);
        warnings.forEach((warning, i) => expect(warning.startsWith(expectedWarnings[i]!), `${warning} should start with ${expectedWarnings[i]}`).toBe(true));
      });
    },
  );
});

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------------------------

describe('assign', () => {
  test.prop([fc.array(fc.constantFrom('alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'), { minLength: 1, maxLength: 20 }), fc.array(fc.tuple(fc.integer(), fc.string({ maxLength: 12 }), fc.nat(25)), { minLength: 1, maxLength: 4 })], { numRuns: 40 })(
    'is deterministic per seed and persona, never repeats a line or a text, and gives min(k, distinct texts) queries',
    async (texts, draws) => {
      const path = await writeQueries(datasetOf(texts));
      await withDataset(path, {}, async (dataset) => {
        const byId = new Map((await all(dataset)).map((query) => [query.queryId, query.text]));
        const distinct = new Set(texts).size;
        for (const [seed, personaId, k] of draws) {
          const chosen = await dataset.assign(k, rngFor(seed, personaId, 'queries'));
          expect(await dataset.assign(k, rngFor(seed, personaId, 'queries'))).toEqual(chosen);
          expect(chosen).toHaveLength(Math.min(k, distinct));
          expect(new Set(chosen.map((q) => q.queryId)).size).toBe(chosen.length);
          expect(new Set(chosen.map((q) => q.text)).size).toBe(chosen.length);
          for (const query of chosen) expect(byId.get(query.queryId)).toBe(query.text);
        }
      });
    },
  );

  it('gives every distinct text, once each, when the dataset has fewer than asked', async () => {
    const path = await writeQueries(datasetOf(['a', 'b', 'a', 'c', 'b', 'a']));
    await withDataset(path, {}, async (dataset) => {
      for (let persona = 0; persona < 30; persona += 1) {
        const chosen = await dataset.assign(10, rngFor(3, `p${persona}`, 'queries'));
        expect(chosen.map((q) => q.text).sort()).toEqual(['a', 'b', 'c']);
      }
      expect(await dataset.assign(0, rngFor(3, 'p', 'queries'))).toEqual([]);
    });
  });

  it('gives different personas different selections, each query about equally often', async () => {
    const n = 20;
    const k = 4;
    const personas = 1500;
    const path = await writeQueries(datasetOf(Array.from({ length: n }, (_, i) => `Question number ${i}`)));
    await withDataset(path, {}, async (dataset) => {
      const selections = new Set<string>();
      const counts = new Map<string, number>();
      const firsts = new Map<string, number>();
      for (let persona = 0; persona < personas; persona += 1) {
        const chosen = await dataset.assign(k, rngFor(11, `persona_${persona}`, 'queries'));
        selections.add(chosen.map((q) => q.queryId).sort().join(','));
        for (const query of chosen) counts.set(query.queryId, (counts.get(query.queryId) ?? 0) + 1);
        firsts.set(chosen[0]!.queryId, (firsts.get(chosen[0]!.queryId) ?? 0) + 1);
      }
      // C(20, 4) = 4845 possible sets: 1500 draws repeat only a few hundred times at most.
      expect(selections.size).toBeGreaterThan(personas * 0.8);
      expect(counts.size).toBe(n);
      for (const count of counts.values()) expectBinomial(count, personas, k / n);
      for (const count of firsts.values()) expectBinomial(count, personas, 1 / n);
      // A different seed gives the same persona a different selection, most of the time.
      let same = 0;
      for (let persona = 0; persona < 100; persona += 1) {
        const a = await dataset.assign(k, rngFor(1, `persona_${persona}`, 'queries'));
        const b = await dataset.assign(k, rngFor(2, `persona_${persona}`, 'queries'));
        if (a.map((q) => q.queryId).join() === b.map((q) => q.queryId).join()) same += 1;
      }
      expect(same).toBeLessThan(5);
    });
  });
});

/** |k − np| ≤ 5σ for k successes out of n Bernoulli(p) draws. */
function expectBinomial(k: number, n: number, p: number): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(k - n * p), `${k} of ${n} with p=${p}`).toBeLessThanOrEqual(5 * sigma + 1e-9);
}

// ---------------------------------------------------------------------------------------------------------

describe('nextInOrder', () => {
  it('deals queries in file order from one shared cursor, wrapping around', async () => {
    const path = await writeQueries(datasetOf(['q0', 'q1', 'q2', 'q3', 'q4']));
    await withDataset(path, {}, async (dataset) => {
      const texts = async (count: number) => (await dataset.nextInOrder(count)).map((q) => q.text);
      expect(await texts(2)).toEqual(['q0', 'q1']);
      expect(await texts(2)).toEqual(['q2', 'q3']);
      expect(await texts(2)).toEqual(['q4', 'q0']);
      // Never more than the dataset in one call, and the cursor moves on by as many.
      expect(await texts(7)).toEqual(['q1', 'q2', 'q3', 'q4', 'q0']);
      expect(await texts(1)).toEqual(['q1']);
      expect(await texts(0)).toEqual([]);
      expect(await texts(1)).toEqual(['q2']);
    });
  });

  it('spans several files in order, and leaves out a text already dealt in the same call', async () => {
    const first = await writeQueries(datasetOf(['a', 'b']));
    const second = await writeQueries(jsonl({ id: 'x', query: 'a' }, { id: 'y', query: 'c' }));
    await withDataset([first, second], {}, async (dataset) => {
      // The third line of the file is 'a' again: dealt (the cursor moves past it) but not given twice.
      expect((await dataset.nextInOrder(3)).map((q) => q.text)).toEqual(['a', 'b']);
      expect((await dataset.nextInOrder(3)).map((q) => q.queryId)).toEqual([`${basename(second)}:y`, `${basename(first)}:q0`, `${basename(first)}:q1`]);
      const dealt = await dataset.nextInOrder(4);
      expect(dealt.map((q) => q.text)).toEqual(['a', 'c', 'b']);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('readTasks with the `queries` option', () => {
  async function* chunks(...parts: string[]): AsyncGenerator<string> {
    for (const part of parts) yield part;
  }

  const TEXTS = Array.from({ length: 12 }, (_, i) => `Dataset question ${i}`);
  let datasetPath: string;

  beforeAll(async () => {
    datasetPath = await writeQueries(datasetOf(TEXTS), 'pool.jsonl');
  });

  async function read(personas: readonly unknown[], queries: Omit<NonNullable<TaskOptions['queries']>, 'dataset'>, seed = 7): Promise<{ tasks: Task[]; warnings: string[] }> {
    return withDataset(datasetPath, {}, async (dataset) => {
      const warnings: string[] = [];
      const tasks: Task[] = [];
      for await (const task of readTasks(chunks(jsonl(...personas)), { name: 'personas.ndjson', seed, minTurns: 2, maxTurns: 5, onWarning: (message) => warnings.push(message), queries: { dataset, ...queries } })) tasks.push(task);
      return { tasks, warnings };
    });
  }

  const bare = (id: string, extra: Record<string, unknown> = {}) => ({ persona_id: id, persona_features: { role: 'teacher' }, ...extra });
  const own = { persona_id: 'own', persona_features: { role: 'engineer' }, queries: [{ query_id: 'mine', original_query: 'My own question', target_turns: 3 }] };

  it('gives a persona without queries perPersona tasks with dataset query ids; a persona with queries is untouched', async () => {
    const { tasks, warnings } = await read([bare('p1'), own, bare('p2', { queries: [] })], { perPersona: 3 });
    expect(warnings).toEqual([]);
    const of = (id: string) => tasks.filter((task) => task.personaId === id);
    for (const id of ['p1', 'p2']) {
      const mine = of(id);
      expect(mine).toHaveLength(3);
      expect(new Set(mine.map((task) => task.queryId)).size).toBe(3);
      for (const task of mine) {
        expect(task.queryId).toMatch(/^pool\.jsonl:q\d+$/);
        expect(task.originalQuery).toBe(TEXTS[Number(task.queryId.split(':q')[1])]);
        expect(task.initialQuery).toBe(task.originalQuery);
        expect(task.key).toBe(`${id}/${task.queryId}`);
        expect(task.targetTurns).toBeGreaterThanOrEqual(2);
        expect(task.targetTurns).toBeLessThanOrEqual(5);
        expect(task.adapted).toBeUndefined();
      }
    }
    expect(of('own')).toEqual([
      { personaId: 'own', personaFeatures: { role: 'engineer' }, systemPrompt: undefined, queryId: 'mine', originalQuery: 'My own question', initialQuery: 'My own question', targetTurns: 3, key: 'own/mine', source: 'personas.ndjson:2' },
    ]);
    // Personas come in input order.
    expect(tasks.map((task) => task.personaId)).toEqual(['p1', 'p1', 'p1', 'own', 'p2', 'p2', 'p2']);
  });

  it('gives at most the dataset’s queries when perPersona is larger', async () => {
    const { tasks } = await read([bare('p1')], { perPersona: 50 });
    expect(tasks.map((task) => task.originalQuery).sort()).toEqual([...TEXTS].sort());
  });

  it('is deterministic across runs with the same seed, and differs with another seed', async () => {
    const personas = Array.from({ length: 8 }, (_, i) => bare(`persona_${i}`));
    const first = await read(personas, { perPersona: 3 }, 42);
    const second = await read(personas, { perPersona: 3 }, 42);
    expect(second.tasks).toEqual(first.tasks);
    const other = await read(personas, { perPersona: 3 }, 43);
    expect(other.tasks.map((task) => task.key)).not.toEqual(first.tasks.map((task) => task.key));
  });

  test.prop([fc.uniqueArray(fc.stringMatching(/^[a-z0-9_]{1,8}$/), { minLength: 1, maxLength: 6 }), fc.nat(5), fc.integer()], { numRuns: 25 })(
    "with strategy 'random' a persona's queries do not depend on the other personas of the file or their order",
    async (others, at, seed) => {
      const target = bare('the_persona');
      const alone = await read([target], { perPersona: 3, strategy: 'random' }, seed);
      const list: unknown[] = others.filter((id) => id !== 'the_persona').map((id) => bare(id));
      list.splice(Math.min(at, list.length), 0, target);
      const crowded = await read(list, { perPersona: 3, strategy: 'random' }, seed);
      const strip = (tasks: Task[]) => tasks.filter((task) => task.personaId === 'the_persona').map(({ source: _source, ...rest }) => rest);
      expect(strip(crowded.tasks)).toEqual(strip(alone.tasks));
      expect(strip(alone.tasks)).toHaveLength(3);
    },
  );

  it("with strategy 'round_robin' deals the dataset in order across personas", async () => {
    const { tasks } = await read([bare('a'), own, bare('b'), bare('c'), bare('d'), bare('e')], { perPersona: 3, strategy: 'round_robin' });
    const texts = (id: string) => tasks.filter((task) => task.personaId === id).map((task) => task.originalQuery);
    expect(texts('a')).toEqual(TEXTS.slice(0, 3));
    expect(texts('own')).toEqual(['My own question']);
    expect(texts('b')).toEqual(TEXTS.slice(3, 6));
    expect(texts('c')).toEqual(TEXTS.slice(6, 9));
    expect(texts('d')).toEqual(TEXTS.slice(9, 12));
    expect(texts('e')).toEqual(TEXTS.slice(0, 3));
  });

  it('reports a persona without queries as skipped when the dataset is empty', async () => {
    const empty = await writeQueries('');
    await withDataset(empty, {}, async (dataset) => {
      const warnings: string[] = [];
      const tasks: Task[] = [];
      for await (const task of readTasks(chunks(jsonl(bare('p1'))), { name: 'in', seed: 1, minTurns: 1, maxTurns: 2, onWarning: (m) => warnings.push(m), queries: { dataset, perPersona: 2 } })) tasks.push(task);
      expect(tasks).toEqual([]);
      expect(warnings).toEqual([expect.stringMatching(/^in:1: persona "p1" has no queries, skipped$/)]);
    });
  });
});
