// `generate --out DIR --resume` alone: the flags of the run that made DIR come back from its run.json; the printed command continues it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GenerateFlags } from '../../src/commands/flags.js';
import { invocationOf, resumeCommand, resumeFlags } from '../../src/commands/invocation.js';
import { ConfigError } from '../../src/errors.js';
import type { RunRecord } from '../../src/sinks/layout.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-invocation-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const started: GenerateFlags = { config: 'c.yaml', out: 'ignored', seed: 11, minTurns: 2, maxTurns: 4, provider: 'openai', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', noise: 'rules', queries: 'q.jsonl', supplementRounds: 1, judge: true, concurrency: 8, threads: 2, maxCost: 3, strict: true };

async function recordFor(flags: GenerateFlags, file: string | undefined): Promise<void> {
  const settings = { seed: flags.seed, min_turns: flags.minTurns, max_turns: flags.maxTurns, provider: flags.provider ?? null, model: flags.model ?? null, base_url: flags.baseUrl ?? null, noise: flags.noise, supplement_rounds: flags.supplementRounds, queries: flags.queries ?? null, judge: flags.judge ?? false };
  const record: RunRecord = { version: '0', seed: flags.seed ?? 42, config_fingerprint: 'f', settings, created_at: '', invocation: invocationOf(file, flags) };
  await writeFile(join(dir, 'run.json'), JSON.stringify(record));
}

describe('resumeFlags', () => {
  it('regression: --out DIR --resume alone gets back every setting the run was started with (a pasted hint exited 2)', async () => {
    await recordFor(started, 'personas.ndjson');
    const { file, flags } = await resumeFlags(undefined, { out: dir, resume: true });
    expect(file).toBe(resolve('personas.ndjson'));
    expect(flags).toEqual({ out: dir, resume: true, config: resolve('c.yaml'), seed: 11, minTurns: 2, maxTurns: 4, provider: 'openai', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', noise: 'rules', supplementRounds: 1, judge: true, queries: 'q.jsonl', queriesPath: resolve('q.jsonl'), concurrency: 8, threads: 2, maxCost: 3, strict: true });
  });

  it('lets flags given now win (the fingerprint check then judges them)', async () => {
    await recordFor(started, 'personas.ndjson');
    const { file, flags } = await resumeFlags('other.ndjson', { out: dir, resume: true, seed: 12, maxCost: 10 });
    expect(file).toBe('other.ndjson');
    expect(flags).toMatchObject({ seed: 12, maxCost: 10, minTurns: 2 });
  });

  it('asks for --base-url again when the run was started with one holding credentials', async () => {
    await recordFor({ ...started, baseUrl: 'https://u:secret@proxy.example/v1' }, 'p.ndjson');
    await expect(resumeFlags(undefined, { out: dir, resume: true })).rejects.toThrow(ConfigError);
    await expect(resumeFlags(undefined, { out: dir, resume: true, baseUrl: 'https://u:secret@proxy.example/v1' })).resolves.toBeDefined();
  });

  it('keeps the --limit the run was started with; a new --limit replaces it and --no-limit lifts it', async () => {
    await recordFor({ ...started, limit: 20 }, 'personas.ndjson');
    expect((await resumeFlags(undefined, { out: dir, resume: true })).flags.limit).toBe(20);
    expect((await resumeFlags(undefined, { out: dir, resume: true, limit: 50 })).flags.limit).toBe(50);
    const lifted = (await resumeFlags(undefined, { out: dir, resume: true, limit: false })).flags;
    expect(lifted.limit).toBe(false);
    // What the resumed run records: no limit any more, so the next plain --resume keeps to the whole input.
    expect(invocationOf('personas.ndjson', lifted).limit).toBeNull();
    // A run.json written before --limit existed has none.
    await recordFor(started, 'personas.ndjson');
    expect((await resumeFlags(undefined, { out: dir, resume: true })).flags.limit).toBeUndefined();
  });

  it('changes nothing without --resume, or without a run.json that records the invocation', async () => {
    expect(await resumeFlags('x', { out: dir })).toEqual({ file: 'x', flags: { out: dir } });
    expect(await resumeFlags(undefined, { out: dir, resume: true })).toEqual({ file: undefined, flags: { out: dir, resume: true } });
  });
});

describe('resumeCommand', () => {
  it('is the directory and --resume, with what run.json cannot give', () => {
    expect(resumeCommand('run1', invocationOf('p.ndjson', started))).toBe('personaflow generate --out run1 --resume');
    expect(resumeCommand('run1', invocationOf(undefined, started))).toBe('<the same input> | personaflow generate - --out run1 --resume');
    expect(resumeCommand('run1', invocationOf('p.ndjson', { ...started, baseUrl: 'https://u:pw@x.example/v1' }), ' --max-cost <more>')).toBe('personaflow generate --out run1 --resume --base-url <the URL with its credentials> --max-cost <more>');
    // A directory the shell would split is quoted, so the line can be pasted as it is.
    expect(resumeCommand('My Runs/run 1', invocationOf('p.ndjson', started))).toBe("personaflow generate --out 'My Runs/run 1' --resume");
  });
});
