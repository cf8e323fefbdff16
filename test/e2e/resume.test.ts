// End to end: generate --out killed with SIGKILL at random points of its progress, then resumed, equals an uninterrupted run.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, childEnv, runCli, ensureBuilt } from '../helpers/cli.js';
import { expectIndexMatches, interactionsOf } from '../helpers/output.js';

let dir: string;
let personas: string;
let config: string;
const PERSONAS = 80;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-resume-e2e-'));
  personas = join(dir, 'personas.ndjson');
  const styles = ['casual', 'formal', 'concise'];
  await writeFile(
    personas,
    Array.from({ length: PERSONAS }, (_, i) =>
      JSON.stringify({ persona_id: `p${i}`, persona_features: { communication_style: styles[i % 3] }, queries: [{ query_id: 'q1', original_query: `How do I organise task ${i} this week?` }, { query_id: 'q2', original_query: `What should I read about topic ${i}?` }] }),
    ).join('\n'),
  );
  // A little latency so a kill lands mid-run; no faults, so every task succeeds and runs are comparable.
  config = join(dir, 'config.yaml');
  await writeFile(config, 'personaflow:\n  sim:\n    latency_ms: 4\n    jitter_ms: 3\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ARGS = (out: string): string[] => ['generate', personas, '-c', config, '--out', out, '--seed', '11', '-j', '8', '-q'];

/**
 * Starts generate (a resume when `resume`) and SIGKILLs it once its interactions.ndjson has grown by
 * `bytes`, or lets it finish first. Progress, not time, picks the moment, so the kills land at the same
 * points of a run on a fast machine and on a slow one (0: as soon as the run has started writing).
 */
async function killAfterGrowth(out: string, resume: boolean, bytes: number): Promise<void> {
  const file = join(out, 'interactions.ndjson');
  const size = async (): Promise<number> => (await stat(file).catch(() => undefined))?.size ?? 0;
  const before = await size();
  const child = spawn(process.execPath, [BIN, ...ARGS(out), ...(resume ? ['--resume'] : [])], { cwd: ROOT, env: childEnv({ OPENAI_API_KEY: undefined }), stdio: 'ignore' });
  let running = true;
  const closed = new Promise<void>((resolve) =>
    child.once('close', () => {
      running = false;
      resolve();
    }),
  );
  while (running) {
    if (existsSync(file) && (await size()) - before >= bytes) {
      child.kill('SIGKILL');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await closed;
}

describe('resume after SIGKILL', () => {
  let reference: Map<string, string>;

  beforeAll(async () => {
    const out = join(dir, 'reference');
    const run = await runCli(ARGS(out), { env: { OPENAI_API_KEY: undefined } });
    expect(run.code, run.stderr).toBe(0);
    reference = await interactionsOf(out);
    expect(reference.size).toBe(PERSONAS * 2);
  });

  it('loses nothing and writes nothing twice, wherever the kills land', async () => {
    const total = (await stat(join(dir, 'reference', 'interactions.ndjson'))).size;
    let attempt = 0;
    await fc.assert(
      // Each kill after a share (in thousandths) of the whole run's output has been written since its start.
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 3 }), async (kills) => {
        attempt += 1;
        const out = join(dir, `killed-${attempt}`);
        // Later kills hit a resumed run.
        for (const [i, share] of kills.entries()) await killAfterGrowth(out, i > 0, Math.floor((total * share) / 1000));
        const resumed = await runCli([...ARGS(out), '--resume'], { env: { OPENAI_API_KEY: undefined } });
        expect(resumed.code, resumed.stderr).toBe(0);
        const result = await interactionsOf(out);
        expect([...result.keys()].sort()).toEqual([...reference.keys()].sort());
        for (const [id, interaction] of result) expect(interaction, id).toBe(reference.get(id));
        await expectIndexMatches(out);
        await rm(out, { recursive: true, force: true });
      }),
      { numRuns: 4 },
    );
  }, 120_000);

  it('repairs a torn last line and an index that fell behind', async () => {
    const out = join(dir, 'torn');
    // A whole run, then the worst moment staged on it (a kill cannot be timed that precisely).
    const whole = await runCli(ARGS(out), { env: { OPENAI_API_KEY: undefined } });
    expect(whole.code, whole.stderr).toBe(0);
    const interactions = join(out, 'interactions.ndjson');
    const index = join(out, 'index.ndjson');
    // Simulate the worst moment: an interaction half written, and the index behind by two lines.
    const lines = (await readFile(index, 'utf8')).split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(3);
    await writeFile(index, `${lines.slice(0, -2).join('\n')}\n`);
    await writeFile(interactions, '{"interaction_id":"interaction_p999_q1","persona', { flag: 'a' });
    const resumed = await runCli([...ARGS(out), '--resume'].filter((arg) => arg !== '-q'), { env: { OPENAI_API_KEY: undefined } });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/interactions\.ndjson: removed a torn last line \(\d+ bytes\)/);
    expect(resumed.stderr).toMatch(/index\.ndjson: 2 interaction\(s\) were not indexed yet/);
    expect(resumed.stderr).toMatch(/resumed: \d+ interactions were already in/);
    const result = await interactionsOf(out);
    expect([...result.keys()].sort()).toEqual([...reference.keys()].sort());
    await expectIndexMatches(out);
  }, 60_000);

  it('refuses a non-empty DIR without --resume, and a resume with other settings without --force', async () => {
    const out = join(dir, 'guarded');
    // Any output makes DIR a run's: a whole run is the surest way to have some.
    const first = await runCli(ARGS(out), { env: { OPENAI_API_KEY: undefined } });
    expect(first.code, first.stderr).toBe(0);
    const again = await runCli(ARGS(out), { env: { OPENAI_API_KEY: undefined } });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/use --resume to continue that run, or --force to overwrite it/);
    const otherSeed = await runCli([...ARGS(out).filter((a) => a !== '11'), '--resume'].map((a) => (a === '--seed' ? '--seed=12' : a)), { env: { OPENAI_API_KEY: undefined } });
    expect(otherSeed.code).toBe(2);
    expect(otherSeed.stderr).toMatch(/other settings \(seed 11 → 12\)/);
    const forced = await runCli([...ARGS(out), '--resume', '--force', '--max-turns', '4'], { env: { OPENAI_API_KEY: undefined } });
    expect(forced.code, forced.stderr).toBe(0);
  }, 60_000);

  it('SIGINT: finishes what is in flight, writes everything, says how to resume, exits 130', async () => {
    const out = join(dir, 'interrupted');
    // Slow replies, so the run is surely still going when the first interaction is on disk; the signal
    // is sent then, not after a fixed delay that a fast or a slow machine would get wrong.
    const slow = join(dir, 'slow.yaml');
    await writeFile(slow, 'personaflow:\n  sim:\n    latency_ms: 60\n');
    const args = [...ARGS(out).filter((a) => a !== '-q')].map((a) => (a === config ? slow : a));
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv({ OPENAI_API_KEY: undefined }), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const file = join(out, 'interactions.ndjson');
    while (!existsSync(file) || (await readFile(file, 'utf8')).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.once('close', (exit: number | null) => resolve(exit)));
    expect(code).toBe(130);
    // --resume alone continues it: the settings come from run.json.
    expect(stderr).toMatch(/to continue where this run stopped: personaflow generate --out \S+ --resume\n/);
    const partial = await interactionsOf(out);
    expect(partial.size).toBeGreaterThan(0);
    expect(partial.size).toBeLessThan(PERSONAS * 2);
    await expectIndexMatches(out);
    const printed = /to continue where this run stopped: personaflow generate (--out \S+ --resume)\n/.exec(stderr)?.[1];
    const resumed = await runCli(['generate', ...(printed ?? '').split(' ')], { env: { OPENAI_API_KEY: undefined } });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect([...(await interactionsOf(out)).keys()].sort()).toEqual([...reference.keys()].sort());
  }, 60_000);
});
