// readTasks / expandPersona / personaSchema: persona × query expansion, defaults, and FILE:LINE reports for bad lines.
/* eslint-disable @typescript-eslint/require-await -- test sources are async generators over in-memory data: no await, like a stream whose data is ready */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { expandPersona, personaSchema, readTasks, type TaskOptions } from '../../src/streams/personas.js';
import type { Task } from '../../src/types.js';

async function* chunks(...parts: string[]): AsyncGenerator<string> {
  for (const part of parts) yield part;
}

const ndjson = (...records: unknown[]): string => records.map((record) => (typeof record === 'string' ? record : JSON.stringify(record))).join('\n') + '\n';

async function read(input: string | string[], options: Partial<TaskOptions> = {}): Promise<{ tasks: Task[]; warnings: string[] }> {
  const warnings: string[] = [];
  const tasks: Task[] = [];
  const parts = typeof input === 'string' ? [input] : input;
  for await (const task of readTasks(chunks(...parts), { name: 'personas.ndjson', seed: 7, minTurns: 2, maxTurns: 5, onWarning: (message) => warnings.push(message), ...options })) {
    tasks.push(task);
  }
  return { tasks, warnings };
}

const persona = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  persona_id: 'persona_001',
  persona_features: { role: 'engineer', communication_style: 'casual' },
  system_prompt: 'You are a busy engineer.',
  queries: [
    { query_id: 'q1', original_query: 'Help me write Python code', adapted_query: 'hey can u help me write some python code', target_turns: 3 },
    { query_id: 'q2', original_query: 'Explain recursion', target_turns: 4 },
  ],
  ...overrides,
});

const expandOptions = { seed: 1, minTurns: 2, maxTurns: 5 };
const expand = (line: unknown, options = expandOptions) => expandPersona(personaSchema.parse(line), 'src:1', options);

describe('readTasks', () => {
  it('expands each persona into one task per query, in order', async () => {
    const { tasks, warnings } = await read(ndjson(persona(), persona({ persona_id: 'persona_002', queries: [{ query_id: 'q9', original_query: 'Plan a trip', target_turns: 2 }] })));
    expect(warnings).toEqual([]);
    expect(tasks).toEqual<Task[]>([
      {
        personaId: 'persona_001',
        personaFeatures: { role: 'engineer', communication_style: 'casual' },
        systemPrompt: 'You are a busy engineer.',
        queryId: 'q1',
        originalQuery: 'Help me write Python code',
        initialQuery: 'hey can u help me write some python code',
        targetTurns: 3,
        key: 'persona_001/q1',
        source: 'personas.ndjson:1',
        adapted: true,
      },
      {
        personaId: 'persona_001',
        personaFeatures: { role: 'engineer', communication_style: 'casual' },
        systemPrompt: 'You are a busy engineer.',
        queryId: 'q2',
        originalQuery: 'Explain recursion',
        initialQuery: 'Explain recursion',
        targetTurns: 4,
        key: 'persona_001/q2',
        source: 'personas.ndjson:1',
      },
      {
        personaId: 'persona_002',
        personaFeatures: { role: 'engineer', communication_style: 'casual' },
        systemPrompt: 'You are a busy engineer.',
        queryId: 'q9',
        originalQuery: 'Plan a trip',
        initialQuery: 'Plan a trip',
        targetTurns: 2,
        key: 'persona_002/q9',
        source: 'personas.ndjson:2',
      },
    ]);
  });

  it('yields nothing and warns nothing for empty input', async () => {
    expect(await read('')).toEqual({ tasks: [], warnings: [] });
  });

  it('ignores blank lines but keeps counting them', async () => {
    const { tasks, warnings } = await read(`\n  \n${JSON.stringify(persona())}\r\n\t\n{"persona_id":"p"`);
    expect(tasks.map((t) => t.source)).toEqual(['personas.ndjson:3', 'personas.ndjson:3']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^personas\.ndjson:5: invalid JSON: /);
  });

  it('reads a persona split across chunks', async () => {
    const line = ndjson(persona());
    const { tasks } = await read([line.slice(0, 17), line.slice(17, 60), line.slice(60)]);
    expect(tasks.map((t) => t.queryId)).toEqual(['q1', 'q2']);
  });

  it('accepts `features` for `persona_features`, and `persona_features` wins when both are given', async () => {
    const { tasks } = await read(
      ndjson(
        { persona_id: 'a', features: { role: 'nurse' }, queries: [{ text: 'x' }] },
        { persona_id: 'b', persona_features: { role: 'pilot' }, features: { role: 'nurse' }, queries: [{ text: 'x' }] },
        { persona_id: 'c', queries: [{ text: 'x' }] },
      ),
    );
    expect(tasks.map((t) => t.personaFeatures)).toEqual([{ role: 'nurse' }, { role: 'pilot' }, {}]);
  });

  it('accepts `text` for `original_query` (PersonaGym query.jsonl) and defaults `adapted_query` to it', async () => {
    const { tasks } = await read(ndjson({ persona_id: 'p', queries: [{ query_id: 'q', text: 'Summarise this paper' }] }));
    expect(tasks[0]).toMatchObject({ originalQuery: 'Summarise this paper', initialQuery: 'Summarise this paper' });
  });

  it('keeps a given `adapted_query` as the initial query', async () => {
    const { tasks } = await read(ndjson({ persona_id: 'p', queries: [{ original_query: 'Summarise this paper', adapted_query: 'tl;dr pls' }] }));
    expect(tasks[0]).toMatchObject({ originalQuery: 'Summarise this paper', initialQuery: 'tl;dr pls' });
  });

  it('turns numeric ids into strings and a null system prompt into undefined', async () => {
    const { tasks } = await read(ndjson({ persona_id: 17, system_prompt: null, queries: [{ query_id: 3, text: 'x' }] }));
    expect(tasks[0]).toMatchObject({ personaId: '17', queryId: '3', key: '17/3', systemPrompt: undefined });
  });

  it('reports a persona without queries and skips it', async () => {
    const { tasks, warnings } = await read(ndjson({ persona_id: 'lonely' }, { persona_id: 'empty', queries: [] }));
    expect(tasks).toEqual([]);
    expect(warnings).toMatchInlineSnapshot(`
      [
        "personas.ndjson:1: persona "lonely" has no queries (give --queries FILE to assign some), skipped",
        "personas.ndjson:2: persona "empty" has no queries (give --queries FILE to assign some), skipped",
      ]
    `);
  });

  describe('bad lines are reported as NAME:LINE and skipped', () => {
    it.each<{ name: string; line: string; message: RegExp }>([
      { name: 'invalid JSON', line: '{"persona_id": "p", ', message: /^in:2: invalid JSON: / },
      { name: 'missing persona_id', line: JSON.stringify({ queries: [{ text: 'x' }] }), message: /^in:2: persona_id: / },
      { name: 'empty persona_id', line: JSON.stringify({ persona_id: ' ', queries: [{ text: 'x' }] }), message: /^in:2: persona_id: / },
      { name: 'queries not an array', line: JSON.stringify({ persona_id: 'p', queries: 'hello' }), message: /^in:2: queries: / },
      { name: 'empty original_query', line: JSON.stringify({ persona_id: 'p', queries: [{ original_query: '' }] }), message: /^in:2: queries\[0\]\.original_query: / },
      { name: 'blank original_query', line: JSON.stringify({ persona_id: 'p', queries: [{ query_id: 'a', original_query: 'ok' }, { original_query: '   ' }] }), message: /^in:2: queries\[1\]\.original_query: / },
      { name: 'a query with no text at all', line: JSON.stringify({ persona_id: 'p', queries: [{ query_id: 'a' }] }), message: /^in:2: queries\[0\]\.original_query: / },
      { name: 'target_turns not an integer', line: JSON.stringify({ persona_id: 'p', queries: [{ text: 'x', target_turns: 2.5 }] }), message: /^in:2: queries\[0\]\.target_turns: / },
      { name: 'persona_features not an object', line: JSON.stringify({ persona_id: 'p', persona_features: 'nice', queries: [{ text: 'x' }] }), message: /^in:2: persona_features: / },
      { name: 'a JSON array instead of an object', line: '[1,2]', message: /^in:2: / },
      { name: 'a JSON string instead of an object', line: '"persona"', message: /^in:2: / },
    ])('$name', async ({ line, message }) => {
      const good = JSON.stringify({ persona_id: 'good', queries: [{ query_id: 'g', text: 'fine' }] });
      const { tasks, warnings } = await read(`${good}\n${line}\n${good.replace('good', 'good2')}\n`, { name: 'in' });
      expect(tasks.map((t) => t.personaId)).toEqual(['good', 'good2']);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(message);
    });

    it('reports invalid UTF-8 and over-long lines with their numbers', async () => {
      const warnings: string[] = [];
      async function* bytes(): AsyncGenerator<Buffer> {
        yield Buffer.from([0x7b, 0xff, 0x7d, 0x0a]);
        yield Buffer.from(`${'x'.repeat(60)}\n`);
        yield Buffer.from(ndjson({ persona_id: 'p', queries: [{ text: 'x' }] }));
      }
      const tasks: Task[] = [];
      for await (const task of readTasks(bytes(), { name: 'stdin', seed: 1, minTurns: 1, maxTurns: 3, maxLineBytes: 48, onWarning: (m) => warnings.push(m) })) tasks.push(task);
      expect(tasks).toHaveLength(1);
      expect(warnings).toMatchInlineSnapshot(`
        [
          "stdin:1: invalid UTF-8",
          "stdin:2: line longer than 48 bytes, skipped",
        ]
      `);
    });

    it('pins the wording of schema messages', async () => {
      const { warnings } = await read(
        ndjson({ queries: [{ text: 'x' }] }, { persona_id: 'p', queries: 'hello' }, { persona_id: 'p', queries: [{ original_query: '' }] }, { persona_id: 'p', queries: [{ query_id: 'q' }] }),
        { name: 'personas.ndjson' },
      );
      expect(warnings).toMatchInlineSnapshot(`
        [
          "personas.ndjson:1: persona_id: required",
          "personas.ndjson:2: queries: Invalid input: expected array, received string",
          "personas.ndjson:3: queries[0].original_query: must be a non-empty string",
          "personas.ndjson:4: queries[0].original_query: a query needs \`original_query\` (or \`text\`)",
        ]
      `);
    });
  });

  describe('query_id', () => {
    it('defaults to a stable id: the same persona and text give the same id in any run', async () => {
      const line = ndjson({ persona_id: 'p', queries: [{ text: 'Help me' }] });
      const first = await read(line);
      const second = await read(line, { seed: 99 });
      expect(first.tasks[0]?.queryId).toMatch(/^q_[0-9a-f]{12}$/);
      expect(second.tasks[0]?.queryId).toBe(first.tasks[0]?.queryId);
    });

    test.prop([fc.string({ minLength: 1 }).filter((s) => s.trim() !== ''), fc.string({ minLength: 1 }).filter((s) => s.trim() !== ''), fc.string({ minLength: 1 }).filter((s) => s.trim() !== '')])(
      'differs when the text or the persona differs',
      (personaId, a, b) => {
        fc.pre(a.trim() !== b.trim());
        const [idA, idB] = expand({ persona_id: personaId, queries: [{ text: a }, { text: b }] }).tasks.map((t) => t.queryId);
        expect(idA).not.toBe(idB);
        const [again] = expand({ persona_id: personaId, queries: [{ text: a }] }).tasks.map((t) => t.queryId);
        expect(again).toBe(idA);
        const [other] = expand({ persona_id: `${personaId}_other`, queries: [{ text: a }] }).tasks.map((t) => t.queryId);
        expect(other).not.toBe(idA);
      },
    );

    it('skips a duplicate query_id with a warning and keeps the first', async () => {
      const { tasks, warnings } = await read(
        ndjson({ persona_id: 'p', queries: [{ query_id: 'q1', text: 'first' }, { query_id: 'q2', text: 'second' }, { query_id: 'q1', text: 'third' }] }),
      );
      expect(tasks.map((t) => [t.queryId, t.originalQuery])).toEqual([
        ['q1', 'first'],
        ['q2', 'second'],
      ]);
      expect(warnings).toMatchInlineSnapshot(`
        [
          "personas.ndjson:1: queries[2]: duplicate query_id "q1" for persona "p", skipped",
        ]
      `);
    });

    it('treats the same text twice without ids as a duplicate', async () => {
      const { tasks, warnings } = await read(ndjson({ persona_id: 'p', queries: [{ text: 'same' }, { original_query: 'same' }] }));
      expect(tasks).toHaveLength(1);
      expect(warnings).toEqual([expect.stringMatching(/^personas\.ndjson:1: queries\[1\]: duplicate query_id "q_[0-9a-f]{12}" for persona "p", skipped$/)]);
    });
  });

  describe('target_turns', () => {
    it.each([
      [1, 2],
      [2, 2],
      [3, 3],
      [5, 5],
      [6, 5],
      [1000, 5],
    ])('clamps %i into [2, 5] as %i', async (given, expected) => {
      const { tasks } = await read(ndjson({ persona_id: 'p', queries: [{ text: 'x', target_turns: given }] }));
      expect(tasks[0]?.targetTurns).toBe(expected);
    });

    test.prop([fc.integer(), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 20 }), fc.string({ minLength: 1 }).filter((s) => s.trim() !== '')])(
      'when absent, is a seeded draw: the same for the same seed and always within range',
      (seed, minTurns, span, text) => {
        const options = { seed, minTurns, maxTurns: minTurns + span };
        const line = { persona_id: 'p', queries: [{ query_id: 'q', text }, { text }] };
        const first = expand(line, options).tasks.map((t) => t.targetTurns);
        const second = expand(line, options).tasks.map((t) => t.targetTurns);
        expect(second).toEqual(first);
        for (const turns of first) {
          expect(Number.isInteger(turns)).toBe(true);
          expect(turns).toBeGreaterThanOrEqual(minTurns);
          expect(turns).toBeLessThanOrEqual(minTurns + span);
        }
      },
    );

    it('draws differently for different seeds (not one fixed value)', () => {
      const line = { persona_id: 'p', queries: Array.from({ length: 20 }, (_, i) => ({ query_id: `q${i}`, text: 'x' })) };
      const draws = (seed: number) => expand(line, { seed, minTurns: 1, maxTurns: 10 }).tasks.map((t) => t.targetTurns);
      expect(new Set(draws(1)).size).toBeGreaterThan(1);
      expect(draws(2)).not.toEqual(draws(1));
    });

    it('does not depend on the other queries of the persona or their order', () => {
      const a = expand({ persona_id: 'p', queries: [{ query_id: 'x', text: 'x' }, { query_id: 'y', text: 'y' }] });
      const b = expand({ persona_id: 'p', queries: [{ query_id: 'z', text: 'z' }, { query_id: 'y', text: 'y' }, { query_id: 'x', text: 'x' }] });
      const turns = (r: typeof a) => Object.fromEntries(r.tasks.map((t) => [t.queryId, t.targetTurns]));
      expect(turns(b)).toMatchObject(turns(a));
    });
  });

  describe('strict', () => {
    it('throws a ConfigError at the first bad line, after the tasks before it', async () => {
      const seen: Task[] = [];
      const input = ndjson({ persona_id: 'ok', queries: [{ text: 'x' }] }, '{oops', { persona_id: 'later', queries: [{ text: 'y' }] });
      const run = async () => {
        for await (const task of readTasks(chunks(input), { name: 'personas.ndjson', seed: 1, minTurns: 1, maxTurns: 3, strict: true })) seen.push(task);
      };
      const error = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(2);
      expect((error as Error).message).toMatch(/^personas\.ndjson:2: invalid JSON: .* \(--strict stops at the first bad line\)$/);
      expect(seen.map((t) => t.personaId)).toEqual(['ok']);
    });

    it('also stops at a schema error and at a duplicate query_id', async () => {
      await expect(read(ndjson({ persona_id: 'p', queries: 'no' }), { strict: true })).rejects.toThrowErrorMatchingInlineSnapshot(`[ConfigError: personas.ndjson:1: queries: Invalid input: expected array, received string (--strict stops at the first bad line)]`);
      await expect(read(ndjson({ persona_id: 'p', queries: [{ query_id: 'a', text: 'x' }, { query_id: 'a', text: 'y' }] }), { strict: true })).rejects.toBeInstanceOf(ConfigError);
    });

    it('does not call onWarning for the line it stops at', async () => {
      const warnings: string[] = [];
      await expect(read('{bad\n', { strict: true, onWarning: (m) => warnings.push(m) })).rejects.toBeInstanceOf(ConfigError);
      expect(warnings).toEqual([]);
    });
  });

  it('reads lazily: the first task does not read the rest of the input', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<string> {
      for (let i = 0; i < 100; i += 1) {
        pulled += 1;
        yield ndjson({ persona_id: `p${i}`, queries: [{ text: 'x' }, { text: 'y' }] });
      }
    }
    const tasks = readTasks(source(), { name: 'in', seed: 1, minTurns: 1, maxTurns: 3 });
    expect((await tasks.next()).value).toMatchObject({ personaId: 'p0' });
    expect((await tasks.next()).value).toMatchObject({ personaId: 'p0' });
    expect(pulled).toBe(1);
    await tasks.return(undefined);
  });
});

describe('duplicates across lines', () => {
  it('skips a persona × query that already came earlier in the input, naming the line', async () => {
    const line = { persona_id: 'p', queries: [{ query_id: 'q1', text: 'x' }, { query_id: 'q2', text: 'y' }] };
    const warnings: string[] = [];
    const tasks = [];
    const source = (async function* () { yield `${JSON.stringify(line)}\n${JSON.stringify(line)}\n`; })();
    for await (const t of readTasks(source, { name: 'in', seed: 1, minTurns: 1, maxTurns: 3, onWarning: (w) => warnings.push(w) })) tasks.push(t.key);
    expect(tasks).toEqual(['p/q1', 'p/q2']);
    expect(warnings).toEqual(['in:2: persona "p" query "q1" already came earlier in the input, skipped', 'in:2: persona "p" query "q2" already came earlier in the input, skipped']);
  });

  it('regression: a persona nested 200,000 levels deep is a bad line, not a stack overflow mid-run', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const { tasks, warnings } = await read(`{"persona_id":"d","persona_features":{"x":${deep}},"queries":[{"query_id":"q1","text":"x"}]}\n${ndjson({ persona_id: 'ok', queries: [{ query_id: 'q1', text: 'x' }] })}`);
    expect(warnings).toEqual(['personas.ndjson:1: nested more than 64 levels deep']);
    expect(tasks.map((t) => t.personaId)).toEqual(['ok']);
  });

  it('regression: ids with newlines, NUL or escape sequences are escaped in messages, never echoed raw', async () => {
    const id = 'a\nb\u0000c\u001b[2J"d';
    const line = { persona_id: id, queries: [{ query_id: 'q1', text: 'x' }] };
    const { warnings } = await read(ndjson(line, line));
    expect(warnings).toEqual(['personas.ndjson:2: persona "a\\u000ab\\u0000c\\u001b[2J\\"d" query "q1" already came earlier in the input, skipped']);
    expect([...warnings.join("")].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
  });

  it('regression: ids with `/` or `_` that only look alike are different tasks, not duplicates', async () => {
    const { tasks, warnings } = await read(ndjson({ persona_id: 'a/b', queries: [{ query_id: 'c', text: 'x' }] }, { persona_id: 'a', queries: [{ query_id: 'b/c', text: 'x' }] }, { persona_id: 'p_1', queries: [{ query_id: 'q', text: 'x' }] }, { persona_id: 'p', queries: [{ query_id: '1_q', text: 'x' }] }));
    expect(warnings).toEqual([]);
    expect(tasks.map((t) => [t.personaId, t.queryId])).toEqual([['a/b', 'c'], ['a', 'b/c'], ['p_1', 'q'], ['p', '1_q']]);
  });
});
