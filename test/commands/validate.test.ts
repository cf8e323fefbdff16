// personaflow validate's checks: every bad persona line reported (and only those) with its line and field; the findings capped per file.
import { Readable } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { Findings, checkPersonas, findingLines } from '../../src/commands/validate.js';

/** A kind of bad persona line, and the field its message must name. */
const BAD = {
  missing_id: { line: (i: number) => JSON.stringify({ persona_features: { role: `r${i}` }, queries: [{ original_query: 'hello there' }] }), field: 'persona_id: required' },
  id_type: { line: () => JSON.stringify({ persona_id: true, queries: [{ original_query: 'hello there' }] }), field: 'persona_id: ' },
  features_type: { line: (i: number) => JSON.stringify({ persona_id: `bad${i}`, persona_features: 'a nurse', queries: [{ original_query: 'hello there' }] }), field: 'persona_features: ' },
  query_text: { line: (i: number) => JSON.stringify({ persona_id: `bad${i}`, queries: [{ query_id: 'q1' }] }), field: 'queries[0].original_query: ' },
  target_turns: { line: (i: number) => JSON.stringify({ persona_id: `bad${i}`, queries: [{ original_query: 'hi', target_turns: -2 }] }), field: 'queries[0].target_turns: ' },
  queries_type: { line: (i: number) => JSON.stringify({ persona_id: `bad${i}`, queries: 'one query' }), field: 'queries: ' },
  json: { line: () => '{"persona_id": "p", "queries": [', field: 'invalid JSON: ' },
  not_object: { line: () => '[1, 2, 3]', field: '' },
} as const;
type BadKind = keyof typeof BAD;

const good = (i: number, queries: number): string =>
  JSON.stringify({ persona_id: `p${i}`, persona_features: { role: 'nurse', communication_style: 'casual' }, queries: Array.from({ length: queries }, (_, q) => ({ query_id: `q${q}`, original_query: `question ${i}.${q}` })) });

const entry = fc.oneof(
  fc.record({ kind: fc.constant('good' as const), queries: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('blank' as const) }),
  fc.record({ kind: fc.constantFrom(...(Object.keys(BAD) as BadKind[])) }),
);

const check = async (text: string): Promise<{ findings: Findings; personas: number; tasks: number }> => {
  const findings = new Findings();
  const { personas, tasks } = await checkPersonas(Readable.from([Buffer.from(text)]), { name: 'people.ndjson', seed: 1, minTurns: 1, maxTurns: 4 }, findings);
  return { findings, personas, tasks };
};

describe('checkPersonas', () => {
  test.prop([fc.array(entry, { maxLength: 40 }), fc.boolean()])('reports every injected bad line, and only those, with its line number and field', async (entries, finalNewline) => {
    const lines = entries.map((e, i) => (e.kind === 'good' ? good(i, e.queries) : e.kind === 'blank' ? '' : BAD[e.kind].line(i)));
    const { findings, personas, tasks } = await check(lines.join('\n') + (finalNewline ? '\n' : ''));
    const expected = new Map(entries.flatMap((e, i) => (e.kind === 'good' || e.kind === 'blank' ? [] : [[i + 1, BAD[e.kind].field] as const])));
    const reported = new Map(
      findings.errors.map((message) => {
        const match = /^people\.ndjson:(\d+): (.*)$/.exec(message);
        expect(match, message).not.toBeNull();
        return [Number(match?.[1]), match?.[2] ?? ''] as const;
      }),
    );
    expect([...reported.keys()].sort((a, b) => a - b)).toEqual([...expected.keys()].sort((a, b) => a - b));
    expect(findings.errors).toHaveLength(expected.size);
    for (const [line, field] of expected) expect(reported.get(line), `line ${line}`).toContain(field);
    expect(findings.warnings).toEqual([]);
    const goods = entries.filter((e) => e.kind === 'good');
    expect(personas).toBe(goods.length);
    expect(tasks).toBe(goods.reduce((sum, e) => sum + (e.kind === 'good' ? e.queries : 0), 0));
  });

  it('a line that is read but skipped (no queries, a task that came before) is a warning, as generate skips it', async () => {
    const { findings, personas, tasks } = await check(`${good(1, 1)}\n{"persona_id":"lonely"}\n${good(1, 1)}\n`);
    expect(findings.errors).toEqual([]);
    expect(findings.warnings.map((w) => w.replace(/ \(.*\)/, ''))).toEqual(['people.ndjson:2: persona "lonely" has no queries, skipped', 'people.ndjson:3: persona "p1" query "q0" already came earlier in the input, skipped']);
    expect({ personas, tasks }).toEqual({ personas: 1, tasks: 1 });
  });
});

describe('findingLines', () => {
  it('shows the first 50 of a file, then how many more, and every finding without a line', () => {
    const findings = new Findings();
    for (let line = 1; line <= 62; line += 1) findings.error(`people.ndjson:${line}: persona_id: required`);
    findings.error('config.yaml:3: api.model: Invalid input');
    findings.error('interaction_generation.user_model: no API key for openai/gpt-4o: OPENAI_API_KEY is not set in the environment');
    findings.warning('openai/gpt-4o: no price');
    const lines = findingLines(findings);
    expect(lines.filter((line) => line.startsWith('error: people.ndjson:'))).toHaveLength(50 + 1);
    expect(lines).toContain('error: people.ndjson: 12 more errors not shown (the first 50 are above)');
    expect(lines).toContain('error: config.yaml:3: api.model: Invalid input');
    expect(lines).toContain('warning: openai/gpt-4o: no price');
    expect(lines.at(-1)).toBe('error: people.ndjson: 12 more errors not shown (the first 50 are above)');
  });

  it('never writes a control character a bad line carried', () => {
    const findings = new Findings();
    findings.error('people.ndjson:1: invalid JSON: Unexpected token \u001b[31m');
    expect(findingLines(findings)).toEqual(['error: people.ndjson:1: invalid JSON: Unexpected token \\u001b[31m']);
  });
});
