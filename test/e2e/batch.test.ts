// End to end: generate --batch against a local files-and-batches server: every task accounted for, usage as billed, kill -9 then --resume paying nothing twice.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBatchServer, type BatchEvent, type BatchServer, type BatchServerOptions } from '../helpers/batch-server.js';
import { against, ensureBuilt, runCli, startCli } from '../helpers/cli.js';
import { personaLines } from '../helpers/rundir.js';

let work: string;
let personas: string;
let config: string;
const PERSONAS = 6;
/** Every task of the input: persona × query. */
const TASKS = Array.from({ length: PERSONAS }, (_, i) => [`persona_${i}/a`, `persona_${i}/b`]).flat().sort();

beforeAll(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'personaflow-batch-e2e-'));
  personas = join(work, 'personas.ndjson');
  await writeFile(personas, personaLines(PERSONAS));
  // Polling in hundredths of a second (the server completes a batch on its second look, not after a time),
  // small files so a round is split, and retries enough for the injected failures.
  config = join(work, 'config.yaml');
  await writeFile(config, ['batch:', '  poll_initial_s: 0.01', '  poll_max_s: 0.05', '  gather_ms: 30', '  max_requests_per_file: 5', 'interaction_generation:', '  max_retries: 5', '  min_turns: 2', '  max_turns: 3', ''].join('\n'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let outs = 0;
const freshOut = (): string => join(work, `out-${(outs += 1)}`);
const args = (out: string, server: BatchServer): string[] => ['generate', personas, '-c', config, '--batch', '--out', out, ...against(server), '--seed', '5', '-q'];

interface Line {
  interaction_id?: string;
  persona_id: string;
  query_id?: string;
  metadata?: { query_id?: string };
}

const readLines = async (path: string): Promise<Line[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Line);

/** The tasks DIR settled (interactions and failures), one entry per line: a task twice shows up twice. */
async function settled(out: string): Promise<string[]> {
  const interactions = await readLines(join(out, 'interactions.ndjson'));
  const failures = await readLines(join(out, 'failures.ndjson'));
  return [...interactions.map((i) => `${i.persona_id}/${i.metadata?.query_id ?? ''}`), ...failures.map((f) => `${f.persona_id}/${f.query_id ?? ''}`)].sort();
}

/** The interactions without their timestamps, in id order: what must be equal between two runs. */
async function dataset(out: string): Promise<string[]> {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((key) => key !== 'timestamp' && key !== 'created_at')
        .map((key) => [key, strip((value as Record<string, unknown>)[key])]),
    );
  };
  return (await readLines(join(out, 'interactions.ndjson'))).map((line) => JSON.stringify(strip(line))).sort();
}

const timesSubmitted = (server: BatchServer): number[] => [...new Set(server.submitted.values())];

const FAULTS: BatchServerOptions = { failedShare: 0.1, expiredShare: 0.1 };

describe('generate --batch', () => {
  let reference: string[];

  it('settles every task through failed and expired requests and a batch that fails whole, and counts the usage the server reported', async () => {
    const server = await startBatchServer({ ...FAULTS, failWhole: (index) => index === 1 });
    try {
      const out = freshOut();
      const run = await runCli(args(out, server).filter((arg) => arg !== '-q'));
      expect(run.code, run.stderr).toBe(0);
      expect(await settled(out)).toEqual(TASKS);
      expect(server.faults.failed).toBeGreaterThan(0);
      expect(server.faults.expired).toBeGreaterThan(0);
      expect(server.faults.failedWhole).toBe(1);
      // A round of 12 conversations in files of at most 5 requests.
      expect(server.batches.length).toBeGreaterThanOrEqual(3);
      expect(timesSubmitted(server)).toEqual([1]);
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { summary: { total_calls: number; total_input_tokens: number; total_output_tokens: number } } };
      expect(usage.statistics.summary).toMatchObject({ total_calls: server.reported.calls, total_input_tokens: server.reported.input, total_output_tokens: server.reported.output });
      // Progress: rounds, batch states, requests per round.
      expect(run.stderr).toMatch(/batch round 1: 12 request\(s\) in 3 file\(s\), results due within 24h/);
      expect(run.stderr).toMatch(/batch batch_\d+: failed/);
      expect(run.stderr).toMatch(/batch batch_\d+: expired/);
      expect(run.stderr).toMatch(/batch round \d+: done, \d+ answered, \d+ failed or expired/);
    } finally {
      await server.close();
    }
  });

  it('gives the same dataset on the same server without a batch failing whole (the reference for the kills)', async () => {
    const server = await startBatchServer(FAULTS);
    try {
      const out = freshOut();
      const run = await runCli(args(out, server));
      expect(run.code, run.stderr).toBe(0);
      reference = await dataset(out);
      expect(reference).toHaveLength(TASKS.length);
      expect(timesSubmitted(server)).toEqual([1]);
    } finally {
      await server.close();
    }
  });

  /**
   * Runs generate --batch, SIGKILLs it at the `nth` event that `matches` (the server holds that answer,
   * so the process is killed in the middle of it), then resumes it; returns the server and DIR.
   */
  async function killThenResume(matches: (event: BatchEvent) => boolean, nth: number): Promise<{ server: BatchServer; out: string; resumed: { code: number | null; stderr: string } }> {
    let seen = 0;
    let holding = true;
    const chosen = (event: BatchEvent): boolean => holding && matches(event) && (seen += 1) === nth;
    const server = await startBatchServer({ ...FAULTS, hold: chosen });
    const out = freshOut();
    const held = server.next((event) => seen === nth && matches(event));
    const first = startCli(args(out, server));
    const event = await Promise.race([held, first.done.then((run) => Promise.reject(new Error(`ended before the moment to kill it (${run.code}): ${run.stderr}`)))]);
    expect(event).toBeDefined();
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    holding = false;
    const resumed = await runCli([...args(out, server), '--resume']);
    return { server, out, resumed };
  }

  const cases: readonly [string, (event: BatchEvent) => boolean, number][] = [
    ['during an upload', (event) => event.kind === 'upload', 4],
    ['between asking for a batch and hearing its id', (event) => event.kind === 'create', 4],
    ['during polling', (event) => event.kind === 'retrieve' && event.status === 'in_progress', 5],
    ['during a download', (event) => event.kind === 'content' && event.file === 'output', 4],
  ];
  for (const [moment, matches, nth] of cases) {
    it(`killed -9 ${moment}, then resumed: every task once, no request submitted twice, the same dataset`, async () => {
      const { server, out, resumed } = await killThenResume(matches, nth);
      try {
        expect(resumed.code, resumed.stderr).toBe(0);
        expect(await settled(out)).toEqual(TASKS);
        expect(timesSubmitted(server)).toEqual([1]);
        expect(await dataset(out)).toEqual(reference);
      } finally {
        await server.close();
      }
    });
  }

  it('prices calls at the batch price and starts no conversation once --max-cost is reached', async () => {
    const server = await startBatchServer();
    try {
      const priced = join(work, 'priced.yaml');
      // Small completion caps keep a conversation's worst case (what --max-cost holds for it) near its real cost.
      const caps = ['  assistant_model: { max_completion_tokens: 60 }', '  user_model: { max_completion_tokens: 30 }', ''].join('\n');
      await writeFile(priced, `${await readFile(config, 'utf8')}${caps}personaflow:\n  prices:\n    test-model: { input: 100, output: 200, batch: { input: 50, output: 100 } }\n`);
      const out = freshOut();
      const run = await runCli([...args(out, server).map((arg) => (arg === config ? priced : arg)), '-j', '2', '--max-cost', '0.5']);
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toMatch(/budget reached/);
      const done = await settled(out);
      expect(done.length).toBeGreaterThan(0);
      expect(done.length).toBeLessThan(TASKS.length);
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { cost: { total: number } };
      expect(usage.cost.total).toBeCloseTo((server.reported.input * 50 + server.reported.output * 100) / 1e6, 10);
    } finally {
      await server.close();
    }
  });

  it('with sim, gives the dataset online sim gives for the same seed (semantic noise and the judge batched too)', async () => {
    const common = ['generate', personas, '--provider', 'sim', '--seed', '21', '--noise', 'semantic', '--judge', '-c', config, '-q'];
    const online = freshOut();
    const batched = freshOut();
    const [a, b] = await Promise.all([runCli([...common, '--out', online]), runCli([...common, '--batch', '--out', batched])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const expected = await dataset(online);
    expect(expected.length).toBeGreaterThan(0);
    expect(await dataset(batched)).toEqual(expected);
    const usage = async (out: string): Promise<unknown> => (JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { by_module: unknown } }).statistics.by_module;
    expect(await usage(batched)).toEqual(await usage(online));
  });

  it('refuses --batch for a provider with no Batch API', async () => {
    const run = await runCli(['generate', personas, '--provider', 'openrouter', '--batch', '--out', freshOut()], { env: { OPENROUTER_API_KEY: 'sk-or-test' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--batch: interaction_generation\.assistant_model is on OpenRouter, which has no Batch API/);
  });

  it('refuses --batch without --out, where no ids could be recorded', async () => {
    const run = await runCli(['generate', personas, '--provider', 'sim', '--batch']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatchInlineSnapshot(`
      "personaflow: error: --batch needs --out DIR: the batch and file ids are recorded there as they are created, so a resumed run reattaches to them instead of paying again
      "
    `);
  });
});
