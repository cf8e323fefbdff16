// Resume: torn-line repair, reading an --out DIR back (ids, counts, offsets), crash shapes of the index,
// DirSink appending on resume, usage.json merging, and the configuration fingerprint.
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint, loadConfig } from '../../src/config/load.js';
import { type Config } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { DirSink } from '../../src/sinks/dir.js';
import { FILES, RUN_FILE, type IndexEntry, type RunRecord } from '../../src/sinks/layout.js';
import { cutTornLine, readOutput } from '../../src/sinks/resume.js';
import { UsageTotals } from '../../src/sinks/usage.js';
import { interactionId, type Failure, type Interaction, type Outcome } from '../../src/types.js';

const assistant = { provider: 'sim', model: 'sim-a' };
const user = { provider: 'sim', model: 'user-sim' };

/** A minimal interaction; the reply carries multi-byte characters so byte offsets differ from string lengths. */
function interaction(personaId: string, queryId: string, reply = `réponse ✓ 😀 for ${personaId}/${queryId}`, turns = 1): Interaction {
  return {
    interaction_id: interactionId(personaId, queryId),
    persona_id: personaId,
    persona_features: { role: 'engineer' },
    original_query: 'Help me write Python code',
    initial_query: 'hey can u help me write some python code',
    messages: [
      { role: 'user', content: 'hey can u help me write some python code', timestamp: '2025-01-01T00:00:00.000Z', metadata: { turn: 1 } },
      { role: 'assistant', content: reply, timestamp: '2025-01-01T00:00:01.000Z', metadata: { turn: 1 } },
    ],
    num_turns: turns,
    metadata: {
      created_at: '2025-01-01T00:00:01.000Z',
      query_id: queryId,
      system_prompt_used: false,
      total_messages: 2,
      conversation_ended: true,
      end_reason: 'user_stop',
      distractor_applied: false,
      distractor_type: null,
      noisy_versions: null,
      assistant_model: assistant,
      user_model: user,
      target_turns: turns,
      guard: {},
      usage: {},
    },
  };
}

function failure(personaId: string, queryId: string): Failure {
  return {
    persona_id: personaId,
    query_id: queryId,
    interaction_id: interactionId(personaId, queryId),
    attempts: 3,
    error: { kind: 'server', message: 'HTTP 503 from sim-a' },
    assistant_model: assistant,
    user_model: user,
    time: '2025-01-01T00:00:02.000Z',
    usage: {},
  };
}

const ok = (value: Interaction): Outcome => ({ ok: true, interaction: value });
const failed = (value: Failure): Outcome => ({ ok: false, failure: value });
const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');
const runRecord = (seed = 7): RunRecord => ({ version: '0.1.0', seed, config_fingerprint: 'abcdef0123456789', settings: { seed, noise: 'off' }, created_at: '2025-01-01T00:00:00.000Z' });

let root: string;
let serial = 0;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'personaflow-resume-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A new empty directory under the test's temporary root (one per property run). */
async function fresh(): Promise<string> {
  serial += 1;
  const dir = join(root, `d${serial}`);
  await mkdir(dir);
  return dir;
}

/** Writes outcomes through a real DirSink (all pushed at once, so several land in one batch) and closes it. */
async function writeRun(dir: string, outcomes: readonly Outcome[], options: Parameters<typeof DirSink.open>[1] = {}): Promise<DirSink> {
  const sink = await DirSink.open(dir, options);
  await Promise.all(outcomes.map((outcome) => sink.write(outcome)));
  await sink.close();
  return sink;
}

async function readIndex(dir: string): Promise<IndexEntry[]> {
  return lines(await readFile(join(dir, FILES.index), 'utf8')).map((line) => JSON.parse(line) as IndexEntry);
}

/**
 * Asserts that index.ndjson describes interactions.ndjson exactly: n = 1..N, contiguous offsets covering
 * the whole file, every slice one line that parses to the interaction the entry names. Returns the interactions.
 */
async function expectIndexMatches(dir: string): Promise<Interaction[]> {
  const data = await readFile(join(dir, FILES.interactions));
  const index = await readIndex(dir);
  const found: Interaction[] = [];
  let offset = 0;
  for (const [i, entry] of index.entries()) {
    expect(entry.n).toBe(i + 1);
    expect(entry.offset).toBe(offset);
    const slice = data.subarray(entry.offset, entry.offset + entry.bytes).toString('utf8');
    expect(slice.endsWith('\n')).toBe(true);
    expect(slice.slice(0, -1)).not.toContain('\n');
    const parsed = JSON.parse(slice) as Interaction;
    expect({ interaction_id: entry.interaction_id, persona_id: entry.persona_id, query_id: entry.query_id, num_turns: entry.num_turns }).toEqual({
      interaction_id: parsed.interaction_id,
      persona_id: parsed.persona_id,
      query_id: parsed.metadata.query_id,
      num_turns: parsed.num_turns,
    });
    found.push(parsed);
    offset += entry.bytes;
  }
  expect(offset).toBe(data.length);
  return found;
}

/** N interactions over a few personas, every third one a supplement. */
const some = (n: number, from = 0): Interaction[] => Array.from({ length: n }, (_, i) => interaction(`p${(from + i) % 3}`, (from + i) % 3 === 2 ? `supplement_r1_${from + i}` : `q${from + i}`, `reply ${from + i} — ünïcödé 🎉`, 1 + ((from + i) % 4)));

describe('cutTornLine', () => {
  it('leaves a file that ends in a newline untouched and returns 0', async () => {
    const path = join(root, 'whole.ndjson');
    await writeFile(path, '{"a":1}\n{"b":"é"}\n');
    expect(await cutTornLine(path)).toBe(0);
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n{"b":"é"}\n');
  });

  it('leaves an empty file alone', async () => {
    const path = join(root, 'empty.ndjson');
    await writeFile(path, '');
    expect(await cutTornLine(path)).toBe(0);
    expect((await stat(path)).size).toBe(0);
  });

  it('cuts a partial last line back to the last newline and returns the bytes removed', async () => {
    const path = join(root, 'torn.ndjson');
    await writeFile(path, '{"a":1}\n{"b":"é😀');
    expect(await cutTornLine(path)).toBe(Buffer.byteLength('{"b":"é😀'));
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n');
  });

  it('empties a file with no newline at all', async () => {
    const path = join(root, 'nonewline.ndjson');
    await writeFile(path, '{"a":');
    expect(await cutTornLine(path)).toBe(5);
    expect((await stat(path)).size).toBe(0);
  });

  it('returns 0 for a missing file and does not create it', async () => {
    const path = join(root, 'missing.ndjson');
    expect(await cutTornLine(path)).toBe(0);
    expect(await readdir(root)).toEqual([]);
  });

  it.each([65_535, 65_536, 65_537, 2 * 65_536, 2 * 65_536 + 1])('finds the last newline when the torn tail is %i bytes (around the 64 KiB read chunk)', async (tail) => {
    const path = join(root, `chunk-${tail}.ndjson`);
    const head = Buffer.from('{"whole":"line"}\n');
    await writeFile(path, Buffer.concat([head, Buffer.alloc(tail, 0x78)]));
    expect(await cutTornLine(path)).toBe(tail);
    expect(await readFile(path)).toEqual(head);
  });

  it.each([65_535, 65_536, 65_537])('empties a %i-byte file without a newline', async (size) => {
    const path = join(root, `flat-${size}.ndjson`);
    await writeFile(path, Buffer.alloc(size, 0x79));
    expect(await cutTornLine(path)).toBe(size);
    expect((await stat(path)).size).toBe(0);
  });

  const arbLine = fc.string({ unit: 'binary', maxLength: 40 }).map((text) => text.replaceAll('\n', ' '));
  const arbTail = fc
    .record({
      prefix: arbLine,
      // Mostly short tails, often ones longer than one or two 64 KiB chunks.
      bytes: fc.oneof(fc.nat({ max: 64 }), fc.integer({ min: 60_000, max: 200_000 })),
      char: fc.constantFrom('x', 'é', '中', '😀'),
      cutAt: fc.nat(),
    })
    .map(({ prefix, bytes, char, cutAt }) => {
      const full = Buffer.from(prefix + char.repeat(Math.ceil(bytes / Buffer.byteLength(char))));
      // A torn write can end anywhere, inside a multi-byte character too.
      return full.subarray(0, cutAt % (full.length + 1));
    });

  test.prop([fc.array(arbLine, { maxLength: 10 }), arbTail], { numRuns: 40 })('keeps exactly the whole lines and reports the torn bytes', async (whole, tail) => {
    const path = join(await fresh(), 'file.ndjson');
    const head = Buffer.from(whole.map((line) => `${line}\n`).join(''));
    await writeFile(path, Buffer.concat([head, tail]));
    expect(await cutTornLine(path)).toBe(tail.length);
    expect(await readFile(path)).toEqual(head);
    // Idempotent: a second pass finds nothing to cut.
    expect(await cutTornLine(path)).toBe(0);
  });
});

describe('readOutput on a directory written by DirSink', () => {
  it('reads an empty or absent output as nothing done', async () => {
    const dir = await fresh();
    await writeRun(dir, []);
    const state = await readOutput(dir);
    expect(state).toMatchObject({ count: 0, offset: 0, failedCount: 0, missingIndex: '', repairs: [] });
    expect(state.done.size).toBe(0);
    expect(state.failed.size).toBe(0);
    expect(state.compensated.size).toBe(0);
    expect(state.run).toBeUndefined();
  });

  const persona = fc.constantFrom('p1', 'p2', 'p_é', 'p😀');
  const query = fc.constantFrom('q1', 'q2', 'q3', 'supplement_r1_0', 'supplement_r1_1', 'supplement_r2_0', 'supplement_x');
  const arbRun = fc.record({
    interactions: fc.uniqueArray(fc.tuple(persona, query), { maxLength: 16, selector: ([p, q]) => `${p}/${q}` }),
    failures: fc.array(fc.tuple(persona, query), { maxLength: 8 }),
    calls: fc.array(fc.tuple(fc.constantFrom<'assistant' | 'user_simulator'>('assistant', 'user_simulator'), fc.nat({ max: 500 }), fc.nat({ max: 500 })), { maxLength: 5 }),
  });

  test.prop([arbRun], { numRuns: 30 })('finds every id, the count, the end offset, failures, supplements, run and usage', async ({ interactions, failures, calls }) => {
    const dir = await fresh();
    const written = interactions.map(([p, q], i) => interaction(p, q, `reply ${i}`, 1 + (i % 3)));
    const lost = failures.map(([p, q]) => failure(p, q));
    const usage = new UsageTotals();
    for (const [module, input, output] of calls) usage.call(module, assistant, { input, output });
    const record = runRecord();
    // Interactions and failures interleaved, as a run writes them.
    const outcomes: Outcome[] = [];
    for (let i = 0; i < Math.max(written.length, lost.length); i += 1) {
      if (written[i] !== undefined) outcomes.push(ok(written[i]!));
      if (lost[i] !== undefined) outcomes.push(failed(lost[i]!));
    }
    await writeRun(dir, outcomes, { usage, run: record });

    const state = await readOutput(dir);
    const size = (await stat(join(dir, FILES.interactions))).size;
    expect(state.count).toBe(written.length);
    expect(state.offset).toBe(size);
    expect(state.missingIndex).toBe('');
    expect(state.repairs).toEqual([]);
    const doneIds = new Set(written.map((value) => value.interaction_id));
    for (const id of doneIds) expect(state.done.has(id)).toBe(true);
    expect(state.done.size).toBe(doneIds.size);
    const failedIds = new Set(lost.map((value) => value.interaction_id).filter((id) => !doneIds.has(id)));
    for (const value of lost) {
      expect(state.failed.has(value.interaction_id)).toBe(failedIds.has(value.interaction_id));
      if (!doneIds.has(value.interaction_id)) expect(state.done.has(value.interaction_id)).toBe(false);
    }
    expect(state.failed.size).toBe(failedIds.size);
    expect(state.failedCount).toBe(failedIds.size);
    const compensated = new Map<string, number>();
    for (const value of written) if (value.metadata.query_id.startsWith('supplement_r')) compensated.set(value.persona_id, (compensated.get(value.persona_id) ?? 0) + 1);
    expect([...state.compensated].sort()).toEqual([...compensated].sort());
    expect(state.run).toEqual(record);
    expect(state.usage).toEqual(JSON.parse(await readFile(join(dir, FILES.usage), 'utf8')));
    // failures: each task that failed and was not written, once.
    expect(state.usage).toMatchObject({ interactions: written.length, failures: failedIds.size, statistics: { summary: { total_calls: calls.length } } });
    // Reading changes nothing.
    expect((await stat(join(dir, FILES.interactions))).size).toBe(size);
    await expectIndexMatches(dir);
  });
});

describe('ids of directories written before ids were injective', () => {
  it('regression: an old `interaction_p_1_q` line counts as done for persona p × query 1_q, not for p_1 × q', async () => {
    const dir = await fresh();
    const old = { ...interaction('p', '1_q'), interaction_id: 'interaction_p_1_q' };
    const oldFailure = { ...failure('x', 'y_z'), interaction_id: 'interaction_x_y_z' };
    await writeRun(dir, [ok(old), failed(oldFailure)]);
    const state = await readOutput(dir);
    expect(state.done.has(interactionId('p', '1_q'))).toBe(true);
    expect(state.done.has(interactionId('p_1', 'q'))).toBe(false);
    expect(state.failed.has(interactionId('x', 'y_z'))).toBe(true);
    expect(state.failed.has(interactionId('x_y', 'z'))).toBe(false);
  });
});

describe('crash shapes', () => {
  it('(a) cuts a torn last line of interactions, index and failures, and says so', async () => {
    const dir = await fresh();
    await writeRun(dir, [...some(5).map(ok), failed(failure('p9', 'q9'))]);
    const sizes = await Promise.all([FILES.interactions, FILES.index, FILES.failures].map(async (name) => (await stat(join(dir, name))).size));
    await appendFile(join(dir, FILES.interactions), '{"interaction_id":"interaction_p7_q7","messages":[{"con');
    await appendFile(join(dir, FILES.index), '{"n":6,"interaction_id":"inter');
    await appendFile(join(dir, FILES.failures), '{"persona_id":"p8"');

    const state = await readOutput(dir);
    expect(state.repairs).toEqual([
      `interactions.ndjson: removed a torn last line (${Buffer.byteLength('{"interaction_id":"interaction_p7_q7","messages":[{"con')} bytes) left by an interrupted run`,
      `index.ndjson: removed a torn last line (${Buffer.byteLength('{"n":6,"interaction_id":"inter')} bytes) left by an interrupted run`,
      `failures.ndjson: removed a torn last line (${Buffer.byteLength('{"persona_id":"p8"')} bytes) left by an interrupted run`,
    ]);
    expect(await Promise.all([FILES.interactions, FILES.index, FILES.failures].map(async (name) => (await stat(join(dir, name))).size))).toEqual(sizes);
    expect(state).toMatchObject({ count: 5, offset: sizes[0], missingIndex: '', failedCount: 1 });
    expect(state.done.has('interaction_p7_q7')).toBe(false);
    await expectIndexMatches(dir);
  });

  test.prop([fc.integer({ min: 1, max: 12 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: n }), fc.integer({ min: 0, max: 3 })))], { numRuns: 15 })(
    '(b) rebuilds exactly the index lines missing for the last k interactions, and resume appends them',
    async ([n, k, more]) => {
      const dir = await fresh();
      const first = some(n);
      await writeRun(dir, first.map(ok));
      const indexLines = lines(await readFile(join(dir, FILES.index), 'utf8'));
      const kept = indexLines.slice(0, n - k);
      await writeFile(join(dir, FILES.index), kept.map((line) => `${line}\n`).join(''));

      const state = await readOutput(dir);
      const missing = lines(state.missingIndex);
      expect(missing).toHaveLength(k);
      // The rebuilt lines are the very lines DirSink had written (same n, offset, bytes, ids).
      expect(missing).toEqual(indexLines.slice(n - k));
      expect(state.missingIndex.endsWith('\n')).toBe(true);
      const size = (await stat(join(dir, FILES.interactions))).size;
      expect(state).toMatchObject({ count: n, offset: size });
      expect(state.repairs).toEqual([`index.ndjson: ${k} interaction(s) were not indexed yet; their index lines are added`]);
      for (const value of first) expect(state.done.has(value.interaction_id)).toBe(true);
      expect(state.compensated.get('p2') ?? 0).toBe(first.filter((value) => value.metadata.query_id.startsWith('supplement_r')).length);
      // Reading alone does not touch the index: the next DirSink appends the lines.
      expect(lines(await readFile(join(dir, FILES.index), 'utf8'))).toEqual(kept);

      const next = some(more, n);
      await writeRun(dir, next.map(ok), { resume: state });
      expect(await expectIndexMatches(dir)).toEqual([...first, ...next]);
    },
  );

  it('(b) rebuilds the whole index when it is empty', async () => {
    const dir = await fresh();
    const first = some(4);
    await writeRun(dir, first.map(ok));
    await writeFile(join(dir, FILES.index), '');
    const state = await readOutput(dir);
    expect(lines(state.missingIndex)).toHaveLength(4);
    await writeRun(dir, [], { resume: state });
    expect(await expectIndexMatches(dir)).toEqual(first);
  });

  it.each([
    ['at a line boundary', 0],
    ['inside a line', 7],
  ])('(c) cuts index lines that point past the end of interactions.ndjson (interactions truncated %s)', async (_what, extra) => {
    const dir = await fresh();
    const first = some(5);
    await writeRun(dir, first.map(ok));
    const index = await readIndex(dir);
    const end3 = index[2]!.offset + index[2]!.bytes;
    await truncate(join(dir, FILES.interactions), end3 + extra);

    const state = await readOutput(dir);
    expect(state.repairs).toEqual([...(extra > 0 ? [`interactions.ndjson: removed a torn last line (${extra} bytes) left by an interrupted run`] : []), 'index.ndjson: cut after entry 3, the last one that matches interactions.ndjson']);
    expect(state).toMatchObject({ count: 3, offset: end3, missingIndex: '' });
    expect((await stat(join(dir, FILES.interactions))).size).toBe(end3);
    for (const value of first.slice(0, 3)) expect(state.done.has(value.interaction_id)).toBe(true);
    for (const value of first.slice(3)) expect(state.done.has(value.interaction_id)).toBe(false);
    expect(await expectIndexMatches(dir)).toEqual(first.slice(0, 3));

    const next = some(2, 10);
    await writeRun(dir, next.map(ok), { resume: state });
    expect(await expectIndexMatches(dir)).toEqual([...first.slice(0, 3), ...next]);
  });

  test.prop([fc.integer({ min: 1, max: 8 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: n }), fc.boolean(), fc.constantFrom('garbage', '{"n":', '{}', '[1,2]', '"text"', '42', 'true', '\u0000\u0000\u0000')))], { numRuns: 25 })(
    '(d) cuts the index at a garbage line and re-indexes the interactions after it',
    async ([n, j, replace, junk]) => {
      const dir = await fresh();
      const first = some(n);
      await writeRun(dir, first.map(ok));
      const indexLines = lines(await readFile(join(dir, FILES.index), 'utf8'));
      // Line j (1-based) is garbage: either in place of entry j, or inserted before it.
      const damaged = [...indexLines.slice(0, j - 1), junk, ...indexLines.slice(replace ? j : j - 1)];
      await writeFile(join(dir, FILES.index), damaged.map((line) => `${line}\n`).join(''));

      const state = await readOutput(dir);
      expect(state.repairs).toEqual([`index.ndjson: cut after entry ${j - 1}, the last one that matches interactions.ndjson`, `index.ndjson: ${n - j + 1} interaction(s) were not indexed yet; their index lines are added`]);
      expect(lines(await readFile(join(dir, FILES.index), 'utf8'))).toEqual(indexLines.slice(0, j - 1));
      expect(lines(state.missingIndex)).toEqual(indexLines.slice(j - 1));
      expect(state).toMatchObject({ count: n, offset: (await stat(join(dir, FILES.interactions))).size });
      for (const value of first) expect(state.done.has(value.interaction_id)).toBe(true);

      await writeRun(dir, [], { resume: state });
      expect(await expectIndexMatches(dir)).toEqual(first);
    },
  );

  it('(d) an index entry that does not follow on from the previous one counts as garbage', async () => {
    const dir = await fresh();
    const first = some(4);
    await writeRun(dir, first.map(ok));
    const indexLines = lines(await readFile(join(dir, FILES.index), 'utf8'));
    const entry = JSON.parse(indexLines[2]!) as IndexEntry;
    indexLines[2] = JSON.stringify({ ...entry, offset: entry.offset + 1 });
    await writeFile(join(dir, FILES.index), indexLines.map((line) => `${line}\n`).join(''));
    const state = await readOutput(dir);
    expect(state.repairs[0]).toBe('index.ndjson: cut after entry 2, the last one that matches interactions.ndjson');
    expect(lines(state.missingIndex)).toHaveLength(2);
    await writeRun(dir, [], { resume: state });
    expect(await expectIndexMatches(dir)).toEqual(first);
  });

  // Regression (fixed): an index line `null` (valid JSON, not an object) makes readOutput throw a TypeError
  // (`entry.n` of null) instead of cutting the index there like any other garbage line.
  it('(d) regression: a `null` index line is garbage too, not a crash', async () => {
    const dir = await fresh();
    const first = some(3);
    await writeRun(dir, first.map(ok));
    const indexLines = lines(await readFile(join(dir, FILES.index), 'utf8'));
    await writeFile(join(dir, FILES.index), `${indexLines[0]!}\nnull\n`);
    const state = await readOutput(dir);
    expect(state.count).toBe(3);
    await writeRun(dir, [], { resume: state });
    expect(await expectIndexMatches(dir)).toEqual(first);
  });

  // Regression (fixed): an index line that is not valid UTF-8 is read as blank with 0 bytes (linesFrom gives `bytes: 0`
  // to lines readLines could not decode), so it is neither cut nor counted. When a later line is bad,
  // index.ndjson is truncated at a byte count that misses the undecodable line: the cut lands inside
  // a good line, and the rebuilt index lines are appended after that torn fragment.
  it('(d) regression: a line of invalid UTF-8 in the index is cut like any other garbage', async () => {
    const dir = await fresh();
    const first = some(4);
    await writeRun(dir, first.map(ok));
    const indexLines = lines(await readFile(join(dir, FILES.index), 'utf8'));
    await writeFile(join(dir, FILES.index), Buffer.concat([Buffer.from(`${indexLines[0]!}\n`), Buffer.from([0xff, 0xfe, 0xff, 0x0a]), Buffer.from(`${indexLines[1]!}\ngarbage\n`)]));
    const state = await readOutput(dir);
    // Expected: cut at the garbage line. Found: the undecodable line kept and entry 2 cut 4 bytes short.
    expect((await readFile(join(dir, FILES.index))).toString('latin1')).toBe(`${indexLines[0]!}\n`);
    expect(lines(state.missingIndex)).toEqual(indexLines.slice(1));
    await writeRun(dir, [], { resume: state });
    expect(await expectIndexMatches(dir)).toEqual(first);
  });

  // Lines over maxLineBytes are never held: an index line is garbage (cut there, the rest rebuilt), an interaction line
  // cannot be read (refused, as one that is not JSON), a failure line is passed over (as one that is not JSON).
  describe('over-long lines', () => {
    const limit = 2048;

    it('an index line over the limit is cut like garbage, and the entries after it are rebuilt with their offsets', async () => {
      const dir = await fresh();
      const first = some(4);
      await writeRun(dir, first.map(ok));
      const data = await readFile(join(dir, FILES.interactions), 'utf8');
      expect(Math.max(...lines(data).map((line) => Buffer.byteLength(line)))).toBeLessThan(limit);
      const indexLines = lines(await readFile(join(dir, FILES.index), 'utf8'));
      // Entry 2, still valid JSON, padded past the limit.
      const padded = [indexLines[0]!, `${indexLines[1]!}${' '.repeat(limit)}`, ...indexLines.slice(2)];
      await writeFile(join(dir, FILES.index), padded.map((line) => `${line}\n`).join(''));

      const state = await readOutput(dir, { maxLineBytes: limit });
      expect(state.repairs).toEqual(['index.ndjson: cut after entry 1, the last one that matches interactions.ndjson', 'index.ndjson: 3 interaction(s) were not indexed yet; their index lines are added']);
      expect(await readFile(join(dir, FILES.index), 'utf8')).toBe(`${indexLines[0]!}\n`);
      expect(lines(state.missingIndex)).toEqual(indexLines.slice(1));
      expect(state).toMatchObject({ count: 4, offset: Buffer.byteLength(data) });
      await writeRun(dir, [], { resume: state });
      expect(await expectIndexMatches(dir)).toEqual(first);
    });

    it('an interaction over the limit after the last index entry is refused, at its byte offset', async () => {
      const dir = await fresh();
      const first = [...some(2), interaction('p1', 'q_long', 'é'.repeat(limit)), ...some(1, 3)];
      await writeRun(dir, first.map(ok));
      const index = await readIndex(dir);
      await writeFile(join(dir, FILES.index), `${JSON.stringify(index[0])}\n`);
      const long = index[2]!;
      const reading = readOutput(dir, { maxLineBytes: limit });
      await expect(reading).rejects.toBeInstanceOf(ConfigError);
      await expect(reading).rejects.toThrow(`interactions.ndjson: the line at byte ${long.offset} takes ${long.bytes} bytes, over the limit of ${limit} a line, so its interaction cannot be read`);
      // Under the default limit it is read and indexed.
      expect(lines((await readOutput(dir)).missingIndex)).toEqual(index.slice(1).map((entry) => JSON.stringify(entry)));
    });

    it('an interaction that is not UTF-8 after the last index entry is refused like one that is not JSON', async () => {
      const dir = await fresh();
      await writeRun(dir, some(3).map(ok));
      const index = await readIndex(dir);
      await writeFile(join(dir, FILES.index), `${JSON.stringify(index[0])}\n`);
      // Entry 2's line with one byte made invalid UTF-8, its length unchanged.
      const data = await readFile(join(dir, FILES.interactions));
      data[index[1]!.offset + 5] = 0xff;
      await writeFile(join(dir, FILES.interactions), data);
      await expect(readOutput(dir)).rejects.toThrow(`interactions.ndjson: the line at byte ${index[1]!.offset} is not JSON (or not UTF-8)`);
    });

    it('a failure line over the limit is passed over; the failures after it still count', async () => {
      const dir = await fresh();
      const long = { ...failure('p2', 'q2'), error: { kind: 'server', message: 'x'.repeat(limit) } } as Failure;
      await writeRun(dir, [failed(failure('p1', 'q1')), failed(long), failed(failure('p3', 'q3'))]);
      const state = await readOutput(dir, { maxLineBytes: limit });
      expect(state.failedCount).toBe(2);
      expect(['interaction_p1_q1', 'interaction_p2_q2', 'interaction_p3_q3'].map((id) => state.failed.has(id))).toEqual([true, false, true]);
      expect((await readOutput(dir)).failedCount).toBe(3);
    });
  });

  // Regression (fixed): DirSink.open creates interactions.ndjson, failures.ndjson and index.ndjson one after another; a
  // run killed in between leaves DIR without index.ndjson, and readOutput then rejects with ENOENT
  // (createReadStream on the missing index) instead of treating the missing index as empty.
  it('regression: reads a directory whose index.ndjson is missing (killed while DirSink.open created the files)', async () => {
    const dir = await fresh();
    await writeFile(join(dir, FILES.interactions), '');
    const state = await readOutput(dir);
    expect(state.count).toBe(0);
  });
});

describe('DirSink.open with resume', () => {
  it('appends after the existing lines, continues n and offsets, and adds usage, counts and run.json', async () => {
    const dir = await fresh();
    const before = new UsageTotals();
    before.call('assistant', assistant, { input: 100, output: 40 });
    before.call('user_simulator', user, { input: 10, output: 5 });
    const first = some(3);
    await writeRun(dir, [...first.map(ok), failed(failure('p8', 'q8'))], { usage: before, run: runRecord() });
    const firstData = await readFile(join(dir, FILES.interactions));
    const firstIndex = await readFile(join(dir, FILES.index));

    const state = await readOutput(dir);
    const after = new UsageTotals();
    const sink = await DirSink.open(dir, { resume: state, usage: after, run: runRecord(8) });
    after.call('assistant', assistant, { input: 1, output: 2 });
    after.call('assistant', { provider: 'sim', model: 'sim-b' }, { input: 3, output: 4 });
    const next = some(2, 3);
    await Promise.all([...next.map((value) => sink.write(ok(value))), sink.write(failed(failure('p9', 'q9'))), sink.write(failed(failure('p8', 'q8')))]);
    await sink.close();
    expect(after.calls).toBe(2);

    const data = await readFile(join(dir, FILES.interactions));
    expect(data.subarray(0, firstData.length)).toEqual(firstData);
    expect((await readFile(join(dir, FILES.index))).subarray(0, firstIndex.length)).toEqual(firstIndex);
    expect(await expectIndexMatches(dir)).toEqual([...first, ...next]);
    expect((await readIndex(dir)).map((entry) => entry.n)).toEqual([1, 2, 3, 4, 5]);
    // Each task that still failed once: p8/q8, retried and failed again, keeps its last line.
    expect(lines(await readFile(join(dir, FILES.failures), 'utf8')).map((line) => (JSON.parse(line) as Failure).persona_id)).toEqual(['p9', 'p8']);

    const usage = JSON.parse(await readFile(join(dir, FILES.usage), 'utf8')) as { statistics: { summary: unknown; by_module: unknown; by_model: unknown }; interactions: number; failures: number };
    expect(usage.statistics.summary).toEqual({ total_calls: 4, total_input_tokens: 114, total_output_tokens: 51, total_tokens: 165 });
    expect(usage.statistics.by_module).toEqual({
      assistant: { call_count: 3, input_tokens: 104, output_tokens: 46, total_tokens: 150 },
      user_simulator: { call_count: 1, input_tokens: 10, output_tokens: 5, total_tokens: 15 },
    });
    expect(usage.statistics.by_model).toEqual({
      'sim/sim-a': { call_count: 2, input_tokens: 101, output_tokens: 42, total_tokens: 143 },
      'sim/user-sim': { call_count: 1, input_tokens: 10, output_tokens: 5, total_tokens: 15 },
      'sim/sim-b': { call_count: 1, input_tokens: 3, output_tokens: 4, total_tokens: 7 },
    });
    expect([usage.interactions, usage.failures]).toEqual([5, 2]);

    // run.json: the original record (seed 7, created_at) kept, the resume time added.
    const run = JSON.parse(await readFile(join(dir, RUN_FILE), 'utf8')) as RunRecord;
    expect(run).toMatchObject({ ...runRecord(), resumed_at: [expect.any(String)] });
    expect(new Date(run.resumed_at![0]!).toISOString()).toBe(run.resumed_at![0]);

    // A second resume keeps the first resume time and adds another; the read-back state sees everything.
    const again = await readOutput(dir);
    expect(again).toMatchObject({ count: 5, offset: data.length, failedCount: 2, repairs: [] });
    await writeRun(dir, [], { resume: again, run: runRecord(9) });
    const run2 = JSON.parse(await readFile(join(dir, RUN_FILE), 'utf8')) as RunRecord;
    expect(run2.created_at).toBe('2025-01-01T00:00:00.000Z');
    expect(run2.seed).toBe(7);
    expect(run2.resumed_at).toHaveLength(2);
    expect(run2.resumed_at![0]).toBe(run.resumed_at![0]);
    const usage3 = JSON.parse(await readFile(join(dir, FILES.usage), 'utf8')) as { statistics: { summary: { total_calls: number } }; interactions: number; failures: number };
    expect([usage3.statistics.summary.total_calls, usage3.interactions, usage3.failures]).toEqual([4, 5, 2]);
  });

  it('writes the new run record when the previous run left no run.json', async () => {
    const dir = await fresh();
    await writeRun(dir, some(1).map(ok));
    const state = await readOutput(dir);
    expect(state.run).toBeUndefined();
    await writeRun(dir, [], { resume: state, run: runRecord(3) });
    expect(JSON.parse(await readFile(join(dir, RUN_FILE), 'utf8'))).toEqual(runRecord(3));
  });

  describe('without resume, a directory holding our files', () => {
    it.each([FILES.interactions, FILES.failures, FILES.index, FILES.usage, RUN_FILE])('is refused when it holds only an empty %s, naming --resume and --force', async (name) => {
      const dir = await fresh();
      await writeFile(join(dir, name), '');
      const error = await DirSink.open(dir, { run: runRecord() }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain(name);
      expect((error as Error).message).toContain('--resume');
      expect((error as Error).message).toContain('--force');
      expect(await readdir(dir)).toEqual([name]);
      expect(await readFile(join(dir, name), 'utf8')).toBe('');
    });

    it('is refused when it holds only run.json from a previous run, which is left as it was', async () => {
      const dir = await fresh();
      await writeFile(join(dir, RUN_FILE), JSON.stringify(runRecord()));
      await expect(DirSink.open(dir, { run: runRecord(5) })).rejects.toThrow(/run\.json.*--resume.*--force/);
      expect(JSON.parse(await readFile(join(dir, RUN_FILE), 'utf8'))).toEqual(runRecord());
    });

    it('is overwritten with force: files emptied, usage and run.json replaced', async () => {
      const dir = await fresh();
      const old = new UsageTotals();
      old.call('assistant', assistant, { input: 5, output: 5 });
      await writeRun(dir, [...some(3).map(ok), failed(failure('p1', 'qx'))], { usage: old, run: runRecord() });
      const value = interaction('p_new', 'q_new');
      await writeRun(dir, [ok(value)], { force: true, run: runRecord(11) });
      expect(await expectIndexMatches(dir)).toEqual([value]);
      expect(await readFile(join(dir, FILES.failures), 'utf8')).toBe('');
      expect(JSON.parse(await readFile(join(dir, RUN_FILE), 'utf8'))).toEqual(runRecord(11));
      expect(JSON.parse(await readFile(join(dir, FILES.usage), 'utf8'))).toMatchObject({ statistics: { summary: { total_calls: 0 } }, interactions: 1, failures: 0 });
    });

    it('is accepted when it holds only files that are not ours', async () => {
      const dir = await fresh();
      await writeFile(join(dir, 'notes.txt'), 'mine');
      await writeRun(dir, []);
      expect(await readFile(join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    });
  });
});

describe('UsageTotals.merge', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'usage'],
    ['a number', 42],
    ['an empty array', []],
    ['an array', [1, { statistics: {} }]],
    ['statistics as a string', { statistics: 'x' }],
    ['statistics null', { statistics: null }],
    ['by_module as a string', { statistics: { by_module: 'abc', by_model: 7 } }],
    ['non-numeric counts', { interactions: 'many', failures: [] }],
  ])('ignores %s without throwing', (_what, garbage: unknown) => {
    const usage = new UsageTotals();
    usage.call('assistant', assistant, { input: 3, output: 4 });
    expect(() => usage.merge(garbage)).not.toThrow();
    expect(usage.calls).toBe(1);
    expect(usage.toJSON()).toMatchObject({
      statistics: { summary: { total_calls: 1, total_input_tokens: 3, total_output_tokens: 4, total_tokens: 7 }, by_module: { assistant: { call_count: 1, input_tokens: 3, output_tokens: 4, total_tokens: 7 } } },
      interactions: 0,
      failures: 0,
    });
  });

  it('adds a previous usage.json, ignoring non-numeric fields; calls counts only this run', () => {
    const previous = new UsageTotals();
    previous.call('assistant', assistant, { input: 10, output: 20 });
    previous.call('assistant', assistant, { input: 1, output: 2 });
    previous.outcome(ok(interaction('p', 'q')));
    previous.outcome(failed(failure('p', 'r')));
    const saved = JSON.parse(JSON.stringify(previous)) as { statistics: { by_module: Record<string, Record<string, unknown>> } };
    saved.statistics.by_module.assistant!.output_tokens = 'lots';
    const usage = new UsageTotals();
    usage.merge(saved);
    expect(usage.calls).toBe(0);
    usage.call('user_simulator', user, { input: 5, output: 1 });
    usage.outcome(ok(interaction('p', 'q2')));
    expect(usage.calls).toBe(1);
    expect(usage.toJSON()).toMatchObject({
      statistics: {
        summary: { total_calls: 3, total_input_tokens: 16, total_output_tokens: 1 },
        by_module: { assistant: { call_count: 2, input_tokens: 11, output_tokens: 0, total_tokens: 33 }, user_simulator: { call_count: 1, input_tokens: 5, output_tokens: 1, total_tokens: 6 } },
      },
      interactions: 2,
      failures: 1,
    });
  });

  it('keeps the breakdown by operation and the billed failed attempts across a resume', () => {
    const previous = new UsageTotals();
    previous.call('user_simulator', user, { input: 8, output: 2 }, { operation: 'follow_up' });
    previous.call('user_simulator', user, { input: 9, output: 3 }, { operation: 'guard_retry' });
    previous.call('assistant', assistant, { input: 4, output: 0 }, { operation: 'reply', failed: true });
    const usage = new UsageTotals();
    usage.merge(JSON.parse(JSON.stringify(previous)));
    usage.call('user_simulator', user, { input: 1, output: 1 }, { operation: 'guard_retry' });
    usage.call('assistant', assistant, { input: 5, output: 1 }, { operation: 'reply', failed: true });
    expect(usage.toJSON()).toMatchObject({
      statistics: {
        summary: { total_calls: 5, total_input_tokens: 27, total_output_tokens: 7 },
        by_operation: {
          'user_simulator.follow_up': { call_count: 1, input_tokens: 8 },
          'user_simulator.guard_retry': { call_count: 2, input_tokens: 10, output_tokens: 4 },
          'assistant.reply': { call_count: 2, input_tokens: 9, output_tokens: 1 },
        },
        failed_attempts: { call_count: 2, input_tokens: 9, output_tokens: 1, total_tokens: 10 },
      },
    });
  });

  // Regression (fixed): a module entry that is null (`{"statistics":{"by_module":{"assistant":null}}}`) makes merge throw
  // a TypeError (`value.input_tokens` of null): a damaged usage.json stops the resume instead of being ignored.
  it('regression: ignores a null entry inside by_module', () => {
    const usage = new UsageTotals();
    expect(() => usage.merge({ statistics: { by_module: { assistant: null } } })).not.toThrow();
  });

  // Regression (fixed): merge folds with `into[key] ??= empty()`, so a usage.json key "__proto__" (JSON.parse makes it an
  // own property) selects Object.prototype, and `+=` then writes input_tokens etc. onto every object.
  it('regression: a "__proto__" key in usage.json does not pollute Object.prototype', () => {
    const proto = Object.prototype as unknown as Record<string, unknown>;
    try {
      new UsageTotals().merge(JSON.parse('{"statistics":{"by_model":{"__proto__":{"input_tokens":1,"call_count":1}}}}'));
      expect(({} as Record<string, unknown>).input_tokens).toBeUndefined();
    } finally {
      for (const key of ['input_tokens', 'output_tokens', 'total_tokens', 'call_count']) delete proto[key];
    }
  });
});

describe('fingerprint', () => {
  let base: Config;
  beforeEach(async () => {
    base = (await loadConfig(undefined)).config;
  });
  const settings = { seed: 42, min_turns: 2, max_turns: 5, provider: null, model: null, base_url: null, noise: 'off', supplement_rounds: 3, queries: null };

  it('is stable for the same configuration and settings, whatever the key order', async () => {
    const a = fingerprint(base, settings);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprint(base, settings)).toBe(a);
    expect(fingerprint((await loadConfig(undefined)).config, { ...settings })).toBe(a);
    const reversed = Object.fromEntries(Object.entries(settings).reverse());
    expect(fingerprint(base, reversed)).toBe(a);
    const reorderedConfig = Object.fromEntries(Object.entries(base).reverse()) as Config;
    expect(fingerprint(reorderedConfig, settings)).toBe(a);
  });

  it.each([
    ['seed', { seed: 43 }],
    ['noise', { noise: 'rules' }],
    ['max_turns', { max_turns: 6 }],
    ['supplement_rounds', { supplement_rounds: 0 }],
    ['model', { model: 'gpt-4o' }],
  ])('changes with the %s setting', (_what, change) => {
    expect(fingerprint(base, { ...settings, ...change })).not.toBe(fingerprint(base, settings));
  });

  it.each<[string, (config: Config) => Config]>([
    ['api.model', (c) => ({ ...c, api: { ...c.api, model: 'gpt-4o' } })],
    ['interaction_generation.min_turns', (c) => ({ ...c, interaction_generation: { ...c.interaction_generation, min_turns: 1 } })],
    ['user_model.feedback_probability', (c) => ({ ...c, interaction_generation: { ...c.interaction_generation, user_model: { ...c.interaction_generation.user_model, feedback_probability: 0.5 } } })],
    ['assistant_model.temperature', (c) => ({ ...c, interaction_generation: { ...c.interaction_generation, assistant_model: { ...c.interaction_generation.assistant_model, temperature: 0.1 } } })],
    ['distractor.enabled', (c) => ({ ...c, distractor: { ...c.distractor, enabled: true } })],
    ['personaflow.seed', (c) => ({ ...c, personaflow: { ...c.personaflow, seed: 1 } })],
    ['sim.faults.server', (c) => ({ ...c, personaflow: { ...c.personaflow, sim: { ...c.personaflow.sim, faults: { server: 0.1 } } } })],
  ])('changes with a configuration value (%s)', (_what, change) => {
    expect(fingerprint(change(base), settings)).not.toBe(fingerprint(base, settings));
  });

  it.each<[string, (config: Config) => Config]>([
    ['max_workers', (c) => ({ ...c, interaction_generation: { ...c.interaction_generation, max_workers: 99 } })],
    ['api.timeout', (c) => ({ ...c, api: { ...c.api, timeout: 5 } })],
    ['personaflow.sim.latency_ms', (c) => ({ ...c, personaflow: { ...c.personaflow, sim: { ...c.personaflow.sim, latency_ms: 250 } } })],
    // Limits, prices and the breaker change how fast and at what cost, not what is written.
    ['personaflow.limits', (c) => ({ ...c, personaflow: { ...c.personaflow, limits: { 'gpt-4o-mini': { rpm: 500 } } } })],
    ['personaflow.prices', (c) => ({ ...c, personaflow: { ...c.personaflow, prices: { 'gpt-4o-mini': { input: 1, output: 2 } } } })],
    ['personaflow.breaker', (c) => ({ ...c, personaflow: { ...c.personaflow, breaker: { threshold: 3, cooldown_s: 1, give_up_s: 10 } } })],
    ['personaflow.sim.jitter_ms', (c) => ({ ...c, personaflow: { ...c.personaflow, sim: { ...c.personaflow.sim, jitter_ms: 30 } } })],
    ['api.api_key', (c) => ({ ...c, api: { ...c.api, api_key: 'sk-secret-1234567890' } })],
    ['openrouter.api_key', (c) => ({ ...c, openrouter: { ...c.openrouter, api_key: 'sk-or-other' } })],
    ['user_model.api_key', (c) => ({ ...c, interaction_generation: { ...c.interaction_generation, user_model: { ...c.interaction_generation.user_model, api_key: 'sk-user' } } })],
  ])('is unchanged when only %s changes', (_what, change) => {
    expect(fingerprint(change(base), settings)).toBe(fingerprint(base, settings));
  });

  it('does not contain a secret in what it hashes (two keys, same fingerprint; no key, same fingerprint)', () => {
    const withKey = { ...base, api: { ...base.api, api_key: 'sk-aaaa' } };
    const withOther = { ...base, api: { ...base.api, api_key: 'sk-bbbb' } };
    const { api_key: _dropped, ...apiWithout } = base.api;
    expect(fingerprint(withKey, settings)).toBe(fingerprint(withOther, settings));
    expect(fingerprint({ ...base, api: apiWithout }, settings)).toBe(fingerprint(base, settings));
  });

  // Keys whose names only resemble secrets or timeouts still shape the output, so they count: the reply
  // length cap, the stop token, and the sim's timeout fault rate (a regression test: they were dropped once).
  it.each<[string, (config: Config) => Config]>([
    ['assistant_model.max_completion_tokens', (c) => ({ ...c, interaction_generation: { ...c.interaction_generation, assistant_model: { ...c.interaction_generation.assistant_model, max_completion_tokens: 16 } } })],
    ['personaflow.stop_token', (c) => ({ ...c, personaflow: { ...c.personaflow, stop_token: '<<END>>' } })],
    ['personaflow.sim.faults.timeout', (c) => ({ ...c, personaflow: { ...c.personaflow, sim: { ...c.personaflow.sim, faults: { timeout: 0.5 } } } })],
  ])('changes with %s, which shapes the output', (_what, change) => {
    expect(fingerprint(change(base), settings)).not.toBe(fingerprint(base, settings));
  });
});
