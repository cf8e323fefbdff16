// End to end: generate --limit N runs exactly the first N tasks of the input (of the shard), reads no further, and a resume keeps, changes or lifts the limit.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { expectIndexMatches, expectSameRun, interactionsOf, linesOf } from '../helpers/output.js';
import { shardOf } from '../../src/streams/shard.js';
import { interactionId } from '../../src/types.js';

const PERSONAS = 5;
const QUERIES = 3;
let dir: string;
let personas: string;

/** The interaction ids of the input's tasks, in input order. */
const inputOrder = (): string[] => Array.from({ length: PERSONAS }, (_, p) => Array.from({ length: QUERIES }, (_, q) => interactionId(`p${p}`, `q${q + 1}`))).flat();

const sim = ['--provider', 'sim', '--seed', '5', '-j', '3'];
const env = { OPENAI_API_KEY: undefined };

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-limit-e2e-'));
  personas = join(dir, 'personas.ndjson');
  const lines = Array.from({ length: PERSONAS }, (_, p) =>
    JSON.stringify({
      persona_id: `p${p}`,
      persona_features: { role: ['nurse', 'engineer', 'teacher'][p % 3], communication_style: p % 2 === 0 ? 'casual' : 'formal' },
      queries: Array.from({ length: QUERIES }, (_, q) => ({ query_id: `q${q + 1}`, original_query: `How do I handle chore ${p}.${q} this week?` })),
    }),
  );
  await writeFile(personas, `${lines.join('\n')}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('generate --limit', () => {
  it('writes exactly the first N tasks of the input into --out, with an index that matches', async () => {
    const out = join(dir, 'seven');
    const run = await runCli(['generate', personas, ...sim, '--limit', '7', '--out', out], { env });
    expect(run.code, run.stderr).toBe(0);
    const written = await interactionsOf(out);
    expect([...written.keys()].sort()).toEqual(inputOrder().slice(0, 7).sort());
    await expectIndexMatches(out);
    expect((await linesOf(join(out, 'index.ndjson'))).length).toBe(7);
    const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { interactions: number };
    expect(usage.interactions).toBe(7);
    expect(run.stderr).toContain('--limit 7: the first 7 tasks of the input were taken and the input was read no further');
    expect(run.stderr).toContain(`for the rest: personaflow generate --out ${out} --resume --no-limit`);
  });

  it('on stdout: the same first N', async () => {
    const run = await runCli(['generate', personas, ...sim, '--limit', '4', '-q'], { env });
    expect(run.code, run.stderr).toBe(0);
    const ids = run.stdout.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { interaction_id: string }).interaction_id);
    expect(ids.sort()).toEqual(inputOrder().slice(0, 4).sort());
  });

  it('reads no further than the limit: a bad line after it is never read, let alone reported', async () => {
    const withBadTail = join(dir, 'bad-tail.ndjson');
    await writeFile(withBadTail, `${await readFile(personas, 'utf8')}this line is not JSON\n`);
    const limited = await runCli(['generate', withBadTail, ...sim, '--limit', String(PERSONAS * QUERIES)], { env });
    expect(limited.code, limited.stderr).toBe(0);
    expect(limited.stderr).not.toContain('invalid JSON');
    // Without the limit the same input has a bad line: the test can tell.
    const whole = await runCli(['generate', withBadTail, ...sim], { env });
    expect(whole.code).toBe(3);
    expect(whole.stderr).toContain(`${withBadTail}:${PERSONAS + 1}: invalid JSON`);
  });

  it('with --shard: the first N tasks of the shard', async () => {
    const run = await runCli(['generate', personas, ...sim, '--shard', '1/2', '--limit', '2', '-q'], { env });
    expect(run.code, run.stderr).toBe(0);
    const ids = run.stdout.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { interaction_id: string }).interaction_id);
    const shardTasks = inputOrder().filter((_, i) => shardOf(`p${Math.floor(i / QUERIES)}`, 2) === 1);
    expect(shardTasks.length).toBeGreaterThan(2);
    expect(ids.sort()).toEqual(shardTasks.slice(0, 2).sort());
  });

  it('with --judge: N conversations are attempted; what the judge rejects is kept apart, not replaced by tasks past the limit', async () => {
    const out = join(dir, 'judged');
    const run = await runCli(['generate', personas, ...sim, '--judge', '--supplement-rounds', '0', '--limit', '5', '--out', out], { env });
    expect([0, 3]).toContain(run.code);
    const accepted = [...(await interactionsOf(out)).keys()];
    const rejected = (await linesOf(join(out, 'rejected.ndjson'))).map((line) => (JSON.parse(line) as { interaction_id: string }).interaction_id);
    expect([...accepted, ...rejected].sort()).toEqual(inputOrder().slice(0, 5).sort());
  });

  it('a resume finishes the limit, keeps it (run.json), takes a new one, and --no-limit lifts it', async () => {
    const out = join(dir, 'resumed');
    const first = await runCli(['generate', personas, ...sim, '--limit', '2', '--out', out, '-q'], { env });
    expect(first.code, first.stderr).toBe(0);
    expect([...(await interactionsOf(out)).keys()].sort()).toEqual(inputOrder().slice(0, 2).sort());

    // A larger limit: the first 6 tasks, of which 2 are already there.
    const wider = await runCli(['generate', '--out', out, '--resume', '--limit', '6'], { env });
    expect(wider.code, wider.stderr).toBe(0);
    expect([...(await interactionsOf(out)).keys()].sort()).toEqual(inputOrder().slice(0, 6).sort());
    expect(wider.stderr).toContain('2 tasks skipped');

    // A plain resume keeps the last limit: nothing left to do.
    const again = await runCli(['generate', '--out', out, '--resume'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect((await interactionsOf(out)).size).toBe(6);
    expect(again.stderr).toContain('--limit 6');

    // --no-limit: the rest of the input; the directory then equals a run without any limit.
    const rest = await runCli(['generate', '--out', out, '--resume', '--no-limit'], { env });
    expect(rest.code, rest.stderr).toBe(0);
    const whole = join(dir, 'whole');
    const reference = await runCli(['generate', personas, ...sim, '--out', whole, '-q'], { env });
    expect(reference.code, reference.stderr).toBe(0);
    await expectSameRun(out, whole);
  });
});
