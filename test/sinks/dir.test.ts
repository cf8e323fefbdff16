// DirSink: --out DIR layout, byte-exact index, refusal to clobber without --force, and usage.json totals.
import { mkdir, mkdtemp, open, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, FatalError } from '../../src/errors.js';
import { UsageTotals } from '../../src/sinks/usage.js';
import { DirSink, prepareDirectory } from '../../src/sinks/dir.js';
import { FILES, type IndexEntry } from '../../src/sinks/layout.js';
import type { Failure, Interaction, Outcome, UsageEntry } from '../../src/types.js';

const assistant = { provider: 'sim', model: 'sim-a' };
const user = { provider: 'sim', model: 'user-sim' };

function interaction(personaId: string, queryId: string, reply: string, usage: Record<string, UsageEntry>, assistantModel = assistant): Interaction {
  return {
    interaction_id: `interaction_${personaId}_${queryId}`,
    persona_id: personaId,
    persona_features: { role: 'engineer', communication_style: 'casual' },
    original_query: 'Help me write Python code',
    initial_query: 'hey can u help me write some python code',
    messages: [
      { role: 'user', content: 'hey can u help me write some python code', timestamp: '2025-01-01T00:00:00.000Z', metadata: { turn: 1 } },
      { role: 'assistant', content: reply, timestamp: '2025-01-01T00:00:01.000Z', metadata: { turn: 1 } },
    ],
    num_turns: 1,
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
      assistant_model: assistantModel,
      user_model: user,
      target_turns: 1,
      guard: {},
      usage,
    },
  };
}

function failure(personaId: string, queryId: string, usage: Record<string, UsageEntry>): Failure {
  return {
    persona_id: personaId,
    query_id: queryId,
    interaction_id: `interaction_${personaId}_${queryId}`,
    attempts: 3,
    error: { kind: 'server', message: 'HTTP 503 from sim-a' },
    assistant_model: assistant,
    user_model: user,
    time: '2025-01-01T00:00:02.000Z',
    usage,
  };
}

const ok = (value: Interaction): Outcome => ({ ok: true, interaction: value });
const failed = (value: Failure): Outcome => ({ ok: false, failure: value });
const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-dir-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('DirSink', () => {
  it('writes interactions, failures, the index and usage.json', async () => {
    const outcomes = [
      ok(interaction('p1', 'q1', 'Sure! Here is a loop.', { assistant: { calls: 1, input_tokens: 10, output_tokens: 5 }, user_simulator: { calls: 1, input_tokens: 7, output_tokens: 3 } })),
      failed(failure('p1', 'q2', { assistant: { calls: 3, input_tokens: 30, output_tokens: 0 } })),
      ok(interaction('p2', 'q1', 'Voilà — “naïve” code, 日本語 and 😀 included.', { assistant: { calls: 2, input_tokens: 20, output_tokens: 8 } })),
    ];
    const sink = await DirSink.open(dir);
    await Promise.all(outcomes.map((outcome) => sink.write(outcome)));
    await sink.close();

    expect((await readdir(dir)).sort()).toEqual([FILES.failures, FILES.index, FILES.interactions, FILES.rejected, FILES.rejections, FILES.usage, FILES.usageLog].sort());
    const interactions = lines(await readFile(join(dir, FILES.interactions), 'utf8')).map((line) => JSON.parse(line) as Interaction);
    expect(interactions).toEqual([outcomes[0], outcomes[2]].map((o) => (o as { interaction: Interaction }).interaction));
    const failures = lines(await readFile(join(dir, FILES.failures), 'utf8')).map((line) => JSON.parse(line) as Failure);
    expect(failures).toEqual([(outcomes[1] as { failure: Failure }).failure]);
    const index = lines(await readFile(join(dir, FILES.index), 'utf8')).map((line) => JSON.parse(line) as IndexEntry);
    expect(index.map(({ offset: _offset, bytes: _bytes, ...rest }) => rest)).toEqual([
      { n: 1, interaction_id: 'interaction_p1_q1', persona_id: 'p1', query_id: 'q1', num_turns: 1 },
      { n: 2, interaction_id: 'interaction_p2_q1', persona_id: 'p2', query_id: 'q1', num_turns: 1 },
    ]);
  });

  it('writes empty files and zero usage when nothing came through', async () => {
    const sink = await DirSink.open(dir);
    await sink.close();
    expect(await readFile(join(dir, FILES.interactions), 'utf8')).toBe('');
    expect(await readFile(join(dir, FILES.failures), 'utf8')).toBe('');
    expect(await readFile(join(dir, FILES.index), 'utf8')).toBe('');
    const usage = JSON.parse(await readFile(join(dir, FILES.usage), 'utf8')) as { statistics: { summary: unknown } };
    expect(usage.statistics.summary).toEqual({ total_calls: 0, total_input_tokens: 0, total_output_tokens: 0, total_tokens: 0 });
  });

  it('index offset and bytes slice exactly each interaction line out of interactions.ndjson, n running 1..N', async () => {
    const replies = ['short', 'é'.repeat(50), '日本語のテキスト', '😀 emoji 😀', 'quote " and backslash \\ and newline \n inside', ''];
    const sink = await DirSink.open(dir);
    const all: Interaction[] = [];
    // Mix both ways of writing: several in one batch, then one at a time across batches.
    const batch = replies.slice(0, 3).map((reply, i) => interaction(`p${i}`, 'q', reply, {}));
    all.push(...batch);
    await Promise.all(batch.map((value) => sink.write(ok(value))));
    for (const [i, reply] of replies.slice(3).entries()) {
      const value = interaction(`p${i + 3}`, 'q', reply, {});
      all.push(value);
      await sink.write(ok(value));
    }
    await sink.close();

    const data = await readFile(join(dir, FILES.interactions));
    const index = lines(await readFile(join(dir, FILES.index), 'utf8')).map((line) => JSON.parse(line) as IndexEntry);
    expect(index.map((entry) => entry.n)).toEqual(all.map((_, i) => i + 1));
    let expectedOffset = 0;
    for (const [i, entry] of index.entries()) {
      expect(entry.offset).toBe(expectedOffset);
      const slice = data.subarray(entry.offset, entry.offset + entry.bytes).toString('utf8');
      expect(slice.endsWith('\n')).toBe(true);
      expect(slice.slice(0, -1)).not.toContain('\n');
      expect(JSON.parse(slice)).toEqual(all[i]);
      expect(entry.interaction_id).toBe(all[i]!.interaction_id);
      expectedOffset += entry.bytes;
    }
    expect(expectedOffset).toBe(data.length);
  });

  it('has the index on disk by the time write() resolves, never ahead of the interactions', async () => {
    const sink = await DirSink.open(dir);
    for (let i = 0; i < 5; i += 1) {
      await sink.write(ok(interaction(`p${i}`, 'q', `reply ${i}`, {})));
      const data = await readFile(join(dir, FILES.interactions));
      const index = lines(await readFile(join(dir, FILES.index), 'utf8')).map((line) => JSON.parse(line) as IndexEntry);
      expect(index).toHaveLength(i + 1);
      const last = index[index.length - 1]!;
      expect(last.offset + last.bytes).toBe(data.length);
    }
    await sink.close();
  });

  it('creates a missing directory, nested', async () => {
    const nested = join(dir, 'a', 'b');
    const sink = await DirSink.open(nested);
    await sink.close();
    expect((await readdir(nested)).sort()).toEqual(Object.values(FILES).sort());
  });

  describe('an existing output directory', () => {
    async function previousRun(): Promise<void> {
      await writeFile(join(dir, FILES.interactions), '{"old":true}\n');
      await writeFile(join(dir, FILES.index), '{"n":1}\n');
    }

    it('is refused without force, with a ConfigError that mentions --force, and left untouched', async () => {
      await writeFile(join(dir, FILES.interactions), '{"old":true}\n');
      const error = await DirSink.open(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(2);
      expect((error as Error).message).toContain('--force');
      expect((error as Error).message.replace(dir, '<dir>')).toMatchInlineSnapshot(`"--out <dir>: the directory already holds interactions.ndjson; use --resume to continue that run, or --force to overwrite it"`);
      expect(await readdir(dir)).toEqual([FILES.interactions]);
      expect(await readFile(join(dir, FILES.interactions), 'utf8')).toBe('{"old":true}\n');
    });

    it('names every output file it found', async () => {
      await previousRun();
      await expect(DirSink.open(dir)).rejects.toThrow(/already holds .*(index\.ndjson, interactions\.ndjson|interactions\.ndjson, index\.ndjson)/);
    });

    it('is overwritten with force', async () => {
      await previousRun();
      await writeFile(join(dir, FILES.usage), '{"stale":true}\n');
      const sink = await DirSink.open(dir, { force: true });
      const value = interaction('p9', 'q9', 'fresh', { assistant: { calls: 1, input_tokens: 1, output_tokens: 1 } });
      await sink.write(ok(value));
      await sink.close();
      expect(lines(await readFile(join(dir, FILES.interactions), 'utf8')).map((line) => JSON.parse(line) as unknown)).toEqual([value]);
      expect(lines(await readFile(join(dir, FILES.index), 'utf8')).map((line) => (JSON.parse(line) as IndexEntry).n)).toEqual([1]);
      expect(await readFile(join(dir, FILES.failures), 'utf8')).toBe('');
      const usage = JSON.parse(await readFile(join(dir, FILES.usage), 'utf8')) as Record<string, unknown>;
      expect(usage).not.toHaveProperty('stale');
    });

    it('refuses a directory holding only a previous usage.json or failures.ndjson', async () => {
      await mkdir(join(dir, 'one'));
      await writeFile(join(dir, 'one', FILES.usage), '{}');
      await mkdir(join(dir, 'two'));
      await writeFile(join(dir, 'two', FILES.failures), '');
      await expect(DirSink.open(join(dir, 'one'))).rejects.toBeInstanceOf(ConfigError);
      await expect(DirSink.open(join(dir, 'two'))).rejects.toBeInstanceOf(ConfigError);
    });
  });

  it("writes the run's usage totals to usage.json in PersonaGym's token_usage shape, and counts outcomes", async () => {
    const usage = new UsageTotals();
    const sink = await DirSink.open(dir, { usage });
    usage.call('assistant', { provider: 'sim', model: 'sim-a' }, { input: 100, output: 40 });
    usage.call('user_simulator', { provider: 'sim', model: 'user-sim' }, { input: 60, output: 10 });
    await sink.write(ok(interaction('p1', 'q1', 'a', {})));
    await sink.write(failed(failure('p3', 'q1', {})));
    await sink.close();
    const written = JSON.parse(await readFile(join(dir, FILES.usage), 'utf8')) as { exported_at: string; statistics: { summary: unknown; by_module: unknown; by_model: unknown }; interactions: number; failures: number };
    expect(new Date(written.exported_at).toISOString()).toBe(written.exported_at);
    expect(written.statistics.summary).toEqual({ total_calls: 2, total_input_tokens: 160, total_output_tokens: 50, total_tokens: 210 });
    expect(written.statistics.by_module).toEqual({
      assistant: { call_count: 1, input_tokens: 100, output_tokens: 40, total_tokens: 140 },
      user_simulator: { call_count: 1, input_tokens: 60, output_tokens: 10, total_tokens: 70 },
    });
    expect(written.statistics.by_model).toEqual({
      'sim/sim-a': { call_count: 1, input_tokens: 100, output_tokens: 40, total_tokens: 140 },
      'sim/user-sim': { call_count: 1, input_tokens: 60, output_tokens: 10, total_tokens: 70 },
    });
    expect([written.interactions, written.failures]).toEqual([1, 1]);
  });

  it('leaves no temporary file behind', async () => {
    const sink = await DirSink.open(dir);
    await sink.write(ok(interaction('p', 'q', 'x', {})));
    await sink.close();
    expect((await readdir(dir)).filter((name) => name.startsWith('.'))).toEqual([]);
  });
});

describe('DirSink and what is on disk', () => {
  const call = (usage: UsageTotals, input: number, output: number): void => usage.call('assistant', { provider: 'openai', model: 'm' }, { input, output }, { operation: 'reply' });

  it('regression: spend is on disk as it is billed, not only at close (a kill -9 lost it), and a resume counts it once', async () => {
    const usage = new UsageTotals({ m: { input: 1, output: 2 } });
    const sink = await DirSink.open(dir, { usage });
    call(usage, 100, 10);
    call(usage, 200, 20);
    await sink.write(ok(interaction('p1', 'q1', 'hi', {})));
    // No close: the process dies here. The log has both calls.
    const logged = lines(await readFile(join(dir, FILES.usageLog), 'utf8')).map((line) => JSON.parse(line) as { input: number; output: number });
    expect(logged).toEqual([expect.objectContaining({ module: 'assistant', operation: 'reply', provider: 'openai', model: 'm', input: 100, output: 10 }), expect.objectContaining({ input: 200, output: 20 })]);
    const { readOutput } = await import('../../src/sinks/resume.js');
    for (let resume = 0; resume < 2; resume += 1) {
      const again = await DirSink.open(dir, { resume: await readOutput(dir), usage: new UsageTotals({ m: { input: 1, output: 2 } }) });
      await again.close();
      const json = JSON.parse(await readFile(join(dir, FILES.usage), 'utf8')) as { statistics: { summary: { total_calls: number; total_input_tokens: number } }; cost: { total: number } };
      // Folded once, however many resumes follow.
      expect(json.statistics.summary).toMatchObject({ total_calls: 2, total_input_tokens: 300 });
      expect(json.cost.total).toBeCloseTo((300 * 1 + 30 * 2) / 1e6, 12);
    }
  });

  it('regression: refuses to write through a symbolic link planted in --out, and leaves its target alone', async () => {
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'precious\n');
    const out = join(dir, 'out');
    await mkdir(out);
    await symlink(victim, join(out, FILES.interactions));
    const error = await DirSink.open(out).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(`${join(out, FILES.interactions)} is a symbolic link; personaflow writes only regular files of its own in --out and never through a link. Remove it, then run again`);
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
  });

  it('regression: a full disk is an error naming the file and the operation, not an internal error', async () => {
    const sink = await DirSink.open(dir);
    const handle = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(handle) as { appendFile: (...args: unknown[]) => Promise<void> };
    await handle.close();
    const spy = vi.spyOn(proto, 'appendFile').mockRejectedValue(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    try {
      const error = await sink.write(ok(interaction('p1', 'q1', 'hi', {}))).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(FatalError);
      expect((error as Error).message).toBe(`cannot append to ${join(dir, FILES.interactions)} (ENOSPC: no space left on device)`);
    } finally {
      spy.mockRestore();
    }
    await sink.close().catch(() => undefined);
  });

  it.each([
    ['a file', 'f'],
    ['a path under a file', join('f', 'sub')],
  ])('regression: refuses --out naming %s as a configuration error (exit 2), not an internal error', async (_name, under) => {
    await writeFile(join(dir, 'f'), 'x');
    const out = join(dir, under);
    const error = await prepareDirectory(out).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(`--out ${out}: is a file, or lies under one; --out names a directory (give -o - for stdout)`);
  });
});
