// End to end: generate --queue with three `personaflow worker` processes on a real redis-server: every task written once, a killed worker's task redone, the output a single process would write.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, against, childEnv, ensureBuilt, runCli, type Run } from '../helpers/cli.js';
import { startOpenAIServer, unusedPort } from '../helpers/openai-server.js';
import { expectIndexMatches, expectSameRun, failuresOf, interactionsOf } from '../helpers/output.js';
import { HAVE_REDIS, NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';

let dir: string;
let personas: string;
let redis: RedisServer;
const PERSONAS = 24;

beforeAll(async () => {
  if (!HAVE_REDIS) return;
  ensureBuilt();
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-queue-e2e-'));
  personas = join(dir, 'personas.ndjson');
  await writeFile(personas, Array.from({ length: PERSONAS }, (_, i) => JSON.stringify({ persona_id: `p${i}`, persona_features: { role: 'analyst' }, queries: [{ query_id: 'q1', original_query: `How do I check report ${i}?` }, { query_id: 'q2', original_query: `Summarise topic ${i}` }] })).join('\n'));
});
afterAll(async () => {
  await redis?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A child process of the CLI whose end can be awaited (stdout and stderr kept). */
function start(args: readonly string[], env: Record<string, string | undefined> = { OPENAI_API_KEY: undefined }): { child: ChildProcess; done: Promise<Run> } {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  const done = new Promise<Run>((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    }),
  );
  return { child, done };
}

const worker = (name: string, config: string, ...extra: string[]) => start(['worker', '--queue', redis.url, '--name', name, '-c', config, '--lock-ms', '2000', '-j', '4', '-q', ...extra]);

describe.skipIf(!HAVE_REDIS)(`generate --queue and personaflow worker${NO_REDIS}`, () => {
  it('three workers against a server with a hard rate limit: every task written once, and one shared bucket in Redis for the model', async () => {
    const server = await startOpenAIServer({ rps: 20, latencyMs: 20 });
    try {
      const config = join(dir, 'limited.yaml');
      await writeFile(config, 'personaflow:\n  limits:\n    test-model: { rpm: 1200 }\n');
      const out = join(dir, 'limited');
      const workers = [1, 2, 3].map(() => worker('limited', config));
      const producer = await start(['generate', personas, '--queue', redis.url, '--name', 'limited', '-c', config, '--out', out, '--seed', '3', '--supplement-rounds', '0', '-q', ...against(server)], {}).done;
      expect(producer.code, producer.stderr).toBe(0);
      for (const w of await Promise.all(workers.map((w) => w.done))) expect(w.code, w.stderr).toBe(0);
      const interactions = await interactionsOf(out);
      expect(interactions.size).toBe(PERSONAS * 2);
      expect((await failuresOf(out)).size).toBe(0);
      await expectIndexMatches(out);
      // Every call of every worker was admitted by the one bucket of test-model at that endpoint.
      const client = new Redis(redis.url);
      try {
        const keys = await client.keys('personaflow:limits:*');
        expect(keys).toHaveLength(1);
        expect(Number(await client.hget(keys[0]!, 'req_clear'))).toBeGreaterThan(0);
        // Finished jobs were removed as their outcomes were written: Redis keeps no copy of the dataset.
        expect(await client.keys('personaflow:limited:*[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*')).toEqual([]);
      } finally {
        await client.quit();
      }
    } finally {
      await server.close();
    }
  }, 120_000);

  it('a worker killed with SIGKILL mid-run: its tasks are picked up again, each written once, and the output is what one process writes with the same seed', async () => {
    const config = join(dir, 'sim.yaml');
    // Latency so that conversations are in flight when the kill lands; faults, so failures go through the queue too.
    await writeFile(config, 'interaction_generation:\n  max_retries: 0\npersonaflow:\n  sim:\n    latency_ms: 40\n    jitter_ms: 10\n    faults: { server: 0.03 }\n');
    const single = join(dir, 'single');
    const alone = await runCli(['generate', personas, '-c', config, '--out', single, '--seed', '9', '--supplement-rounds', '0', '-q'], { env: { OPENAI_API_KEY: undefined }, killAfterMs: 60_000 });
    expect(alone.code).not.toBe(1);
    const out = join(dir, 'killed');
    const workers = [worker('killed', config)];
    const producer = start(['generate', personas, '--queue', redis.url, '--name', 'killed', '-c', config, '--out', out, '--seed', '9', '--supplement-rounds', '0', '-q']);
    // Progress, not time, picks the moment: once a few outcomes are written, the only worker so far holds
    // the conversations in flight; the others start after it is killed and take them up.
    const file = join(out, 'interactions.ndjson');
    while (((await stat(file).catch(() => undefined))?.size ?? 0) < 2000) await new Promise((resolve) => setTimeout(resolve, 20));
    workers[0]!.child.kill('SIGKILL');
    workers.push(worker('killed', config), worker('killed', config));
    const run = await producer.done;
    expect(run.code, run.stderr).toBe(alone.code);
    const [killed, ...rest] = await Promise.all(workers.map((w) => w.done));
    expect(killed!.signal).toBe('SIGKILL');
    for (const w of rest) expect(w.code, w.stderr).toBe(0);
    // Same interactions and failures, each once; the index matches. (Usage differs: the killed worker's lost conversations were billed.)
    const got = await interactionsOf(out);
    const want = await interactionsOf(single);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [id, interaction] of want) expect(got.get(id), id).toBe(interaction);
    expect(Object.fromEntries(await failuresOf(out))).toEqual(Object.fromEntries(await failuresOf(single)));
    await expectIndexMatches(out);
    // The kill did land mid-conversation: the run counts conversations begun that never ended, and they were done again.
    const client = new Redis(redis.url);
    try {
      const state = await client.hgetall('personaflow-run:killed:state');
      expect(Number(state.begun) - Number(state.settled)).toBeGreaterThan(0);
      expect(Number(state.settled)).toBe(PERSONAS * 2);
    } finally {
      await client.quit();
    }
  }, 120_000);

  it('with no worker lost, the queue run equals the single-process run, usage included; a worker with another config is refused', async () => {
    const config = join(dir, 'plain.yaml');
    await writeFile(config, 'personaflow:\n  sim:\n    latency_ms: 5\n');
    const single = join(dir, 'plain-single');
    expect((await runCli(['generate', personas, '-c', config, '--out', single, '--seed', '4', '--supplement-rounds', '0', '-q'], { env: { OPENAI_API_KEY: undefined } })).code).toBe(0);
    const other = join(dir, 'other.yaml');
    await writeFile(other, 'interaction_generation:\n  max_turns: 3\n');
    const workers = [1, 2].map(() => worker('plain', config));
    const out = join(dir, 'plain-queue');
    const producer = start(['generate', personas, '--queue', redis.url, '--name', 'plain', '-c', config, '--out', out, '--seed', '4', '--supplement-rounds', '0', '-q']);
    const refused = await worker('plain', other).done;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/was started with another configuration than .*other\.yaml.*give this worker the producer's config file with -c/);
    expect((await producer.done).code).toBe(0);
    for (const w of await Promise.all(workers.map((w) => w.done))) expect(w.code, w.stderr).toBe(0);
    await expectSameRun(out, single);
    // A producer with another configuration does not take over the run's name, and ends (its connections closed).
    const taken = await runCli(['generate', personas, '--queue', redis.url, '--name', 'plain', '-c', other, '--out', join(dir, 'plain-other'), '-q'], { env: { OPENAI_API_KEY: undefined } });
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(/the run named plain there was written with other settings \(.*max_turns 5 → 3.*\); use --name for another run, or --force to start this one over/);
  }, 120_000);

  it('with --judge, the producer judges what the workers return: the same accepted and rejected conversations as one process', async () => {
    const config = join(dir, 'judged.yaml');
    await writeFile(config, 'personaflow:\n  sim:\n    latency_ms: 5\n');
    const single = join(dir, 'judged-single');
    const alone = await runCli(['generate', personas, '-c', config, '--out', single, '--seed', '4', '--supplement-rounds', '0', '--judge', '-q'], { env: { OPENAI_API_KEY: undefined } });
    expect(alone.code, alone.stderr).not.toBe(1);
    const workers = [1, 2].map(() => worker('judged', config));
    const out = join(dir, 'judged-queue');
    const run = await start(['generate', personas, '--queue', redis.url, '--name', 'judged', '-c', config, '--out', out, '--seed', '4', '--supplement-rounds', '0', '--judge', '-q']).done;
    expect(run.code, run.stderr).toBe(alone.code);
    for (const w of await Promise.all(workers.map((w) => w.done))) expect(w.code, w.stderr).toBe(0);
    const got = await interactionsOf(out);
    const want = await interactionsOf(single);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [id, interaction] of want) expect(got.get(id), id).toBe(interaction);
    const rejected = async (path: string) => (await readFile(join(path, 'rejected.ndjson'), 'utf8')).split('\n').filter((line) => line !== '').map((line) => (JSON.parse(line) as { interaction_id: string }).interaction_id).sort();
    expect((await rejected(single)).length).toBeGreaterThan(0);
    expect(await rejected(out)).toEqual(await rejected(single));
    const judge = async (path: string) => (JSON.parse(await readFile(join(path, 'usage.json'), 'utf8')) as { judge: unknown }).judge;
    expect(await judge(out)).toEqual(await judge(single));
  }, 120_000);

  it('--max-cost is the whole run\'s: workers start no conversation once the spend of all of them reaches it', async () => {
    const server = await startOpenAIServer({ latencyMs: 10 });
    try {
      const config = join(dir, 'priced.yaml');
      await writeFile(config, 'personaflow:\n  prices:\n    test-model: { input: 100, output: 100 }\n');
      const out = join(dir, 'budget');
      // Two workers at -j 1 hold at most four conversations, as one process at -j 2 does in the single-process test of --max-cost.
      const workers = [1, 2].map(() => worker('budget', config, '-j', '1'));
      const run = await start(['generate', personas, '--queue', redis.url, '--name', 'budget', '-c', config, '--out', out, '--max-cost', '0.5', '--supplement-rounds', '0', ...against(server)], {}).done;
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toMatch(/budget reached: \$0\.\d{4} spent of --max-cost \$0\.5; no new conversations were started after that\. To continue: personaflow generate --out \S+ --resume --queue .* --max-cost <more>/);
      for (const w of await Promise.all(workers.map((w) => w.done))) expect(w.code, w.stderr).toBe(0);
      // At $100 a million tokens a conversation costs a few cents: the two workers together stopped near $0.5, far from the end.
      const written = (await interactionsOf(out)).size;
      expect(written).toBeGreaterThan(0);
      expect(written).toBeLessThan(PERSONAS * 2);
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { cost: { total: number }; interactions: number };
      expect(usage.cost.total).toBeLessThan(0.5 * 1.5);
      expect(usage.interactions).toBe(written);
    } finally {
      await server.close();
    }
  }, 120_000);

  it('never shows a password from the --queue URL, and says when Redis cannot be reached', async () => {
    const port = await unusedPort();
    const run = await runCli(['generate', personas, '--queue', `redis://:hunter2-secret@127.0.0.1:${port}`, '-q'], { env: { OPENAI_API_KEY: undefined } });
    expect(run.code).toBe(2);
    expect(run.stderr).not.toContain('hunter2');
    expect(run.stderr).toContain(`redis://:***@127.0.0.1:${port}`);
    const bad = await runCli(['worker', '--queue', 'http://example.invalid'], { env: { OPENAI_API_KEY: undefined } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatchInlineSnapshot(`
      "personaflow: error: --queue: expected a redis:// or rediss:// URL, got \`http://example.invalid\`
      "
    `);
  });
});
