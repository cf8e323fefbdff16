// End to end: a run split with --shard into three directories and merged equals the same run in one process (timestamps aside).
import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { expectSameRun, interactionsOf, linesOf } from '../helpers/output.js';

let dir: string;
let personas: string;
let config: string;
const PERSONAS = 40;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-merge-e2e-'));
  personas = join(dir, 'personas.ndjson');
  await writeFile(personas, Array.from({ length: PERSONAS }, (_, i) => JSON.stringify({ persona_id: `p${i}`, persona_features: { role: 'engineer' }, queries: [{ query_id: 'q1', original_query: `How do I plan project ${i}?` }, { query_id: 'q2', original_query: `Explain idea ${i} simply` }] })).join('\n'));
  // Some calls fail for good (no retries), so failures are merged too.
  config = join(dir, 'config.yaml');
  await writeFile(config, 'interaction_generation:\n  max_retries: 0\npersonaflow:\n  sim:\n    faults: { server: 0.04 }\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const generate = (out: string, ...extra: string[]) => runCli(['generate', personas, '-c', config, '--out', out, '--seed', '5', '--supplement-rounds', '0', '-j', '4', '-q', ...extra], { env: { OPENAI_API_KEY: undefined } });

describe('personaflow generate --shard and merge', () => {
  it('three shards merged hold exactly what one process writes: interactions, failures, usage, a valid index', async () => {
    const single = join(dir, 'single');
    expect((await generate(single)).code).toBe(3);
    const shards = [1, 2, 3].map((i) => join(dir, `shard${i}`));
    const runs = await Promise.all(shards.map((out, i) => generate(out, '--shard', `${i + 1}/3`)));
    for (const run of runs) expect(run.stderr).not.toMatch(/internal error/);
    // Every shard got some personas, and no persona is in two shards.
    const owners = new Map<string, number>();
    for (const [i, out] of shards.entries()) {
      const ids = [...(await interactionsOf(out)).keys()];
      expect(ids.length).toBeGreaterThan(0);
      for (const id of ids) {
        const persona = id.split('_')[1] as string;
        expect(owners.get(persona) ?? i).toBe(i);
        owners.set(persona, i);
      }
      expect(JSON.parse(await readFile(join(out, 'run.json'), 'utf8')).shard).toBe(`${i + 1}/3`);
    }
    const merged = join(dir, 'merged');
    const run = await runCli(['merge', ...shards, '--out', merged], { env: { OPENAI_API_KEY: undefined } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/merged 3 directories: \d+ interactions, \d+ failures → /);
    await expectSameRun(merged, single);
    const record = JSON.parse(await readFile(join(merged, 'run.json'), 'utf8')) as { config_fingerprint: string; shard?: string; merged_from: { shard: string }[] };
    const original = JSON.parse(await readFile(join(single, 'run.json'), 'utf8')) as { config_fingerprint: string };
    expect(record.config_fingerprint).toBe(original.config_fingerprint);
    expect(record.shard).toBeUndefined();
    expect(record.merged_from.map((m) => m.shard)).toEqual(['1/3', '2/3', '3/3']);
  });

  it("with the judge, shards merged keep what the judge rejected, the guards' rejected replies and the judge's counts", async () => {
    const judged = (out: string, ...extra: string[]) => generate(out, '--judge', ...extra);
    const single = join(dir, 'judged-single');
    expect((await judged(single)).code).not.toBe(1);
    const shards = [1, 2].map((i) => join(dir, `judged-shard${i}`));
    for (const [i, out] of shards.entries()) expect((await judged(out, '--shard', `${i + 1}/2`)).code).not.toBe(1);
    // One more rejected reply in one shard's file, as a run with a real model would write it.
    const slip = { interaction_id: 'interaction_p1_q1', persona_id: 'p1', query_id: 'q1', turn: 1, reason: 'assistant_voice', text: 'Certainly! Here is an overview.' };
    await appendFile(join(shards[0] as string, 'guard-rejections.ndjson'), `${JSON.stringify(slip)}\n`);
    const merged = join(dir, 'judged-merged');
    const run = await runCli(['merge', ...shards, '--out', merged], { env: { OPENAI_API_KEY: undefined } });
    expect(run.code, run.stderr).toBe(0);
    await expectSameRun(merged, single);
    const ids = async (path: string) => (await linesOf(path)).map((line) => (JSON.parse(line) as { interaction_id: string }).interaction_id).sort();
    const rejected = await ids(join(single, 'rejected.ndjson'));
    expect(rejected.length).toBeGreaterThan(0);
    expect(await ids(join(merged, 'rejected.ndjson'))).toEqual(rejected);
    // As written, but for when.
    const replies = async (out: string) => (await linesOf(join(out, 'guard-rejections.ndjson'))).map((line) => JSON.stringify({ ...(JSON.parse(line) as object), time: undefined }));
    const guarded = await replies(single);
    expect(guarded.length).toBeGreaterThan(0);
    expect((await replies(merged)).sort()).toEqual([...guarded, JSON.stringify({ ...slip, time: undefined })].sort());
    const judge = async (out: string) => (JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { judge: unknown }).judge;
    expect(await judge(merged)).toEqual(await judge(single));
  });

  it('leaves out duplicate interactions and failures, and a torn last line; says when shards are missing', async () => {
    const a = join(dir, 'dup-a');
    expect((await generate(a, '--shard', '1/2')).code).not.toBe(1);
    const b = join(dir, 'dup-b');
    expect((await generate(b, '--shard', '1/2')).code).not.toBe(1);
    // A killed run's torn last line.
    await appendFile(join(b, 'interactions.ndjson'), '{"interaction_id":"interaction_torn');
    const merged = join(dir, 'dup-merged');
    const run = await runCli(['merge', a, b, '--out', merged], { env: { OPENAI_API_KEY: undefined } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/shard 2 of 2 not given/);
    expect(run.stderr).toMatch(/interactions\.ndjson:\d+: .*torn/);
    expect(run.stderr).toMatch(/duplicate interactions left out/);
    expect([...(await interactionsOf(merged)).keys()].sort()).toEqual([...(await interactionsOf(a)).keys()].sort());
    expect(await linesOf(join(merged, 'failures.ndjson'))).toHaveLength((await linesOf(join(a, 'failures.ndjson'))).length);
  });

  it('refuses directories made with other settings, and an --out that holds output', async () => {
    const other = join(dir, 'other-seed');
    await runCli(['generate', personas, '-c', config, '--out', other, '--seed', '6', '--supplement-rounds', '0', '-q', '--shard', '2/3'], { env: { OPENAI_API_KEY: undefined } });
    const first = join(dir, 'first');
    await generate(first, '--shard', '1/3');
    const refused = await runCli(['merge', first, other, '--out', join(dir, 'never')], { env: { OPENAI_API_KEY: undefined } });
    expect(refused.code).toBe(2);
    expect(refused.stderr.replaceAll(dir, '<dir>')).toMatchInlineSnapshot(`
      "personaflow: error: <dir>/other-seed cannot join <dir>/first: it was written with other settings (seed 5 → 6); one dataset must come from one configuration
      "
    `);
    const taken = await runCli(['merge', first, '--out', other], { env: { OPENAI_API_KEY: undefined } });
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(/already holds .*--force/);
  });
});
