// End to end: rate limits against a local server with a hard requests-per-second limit, the circuit breaker, exact accounting.
// Only what does not depend on the machine's speed is asserted here (every task accounted for, exit codes, messages,
// files, usage equal to what the server billed); rates, shares of 429s and counts before the breaker opens are
// asserted in virtual time (test/limits/simulation.test.ts).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, TEST_KEY, against, childEnv, runCli, ensureBuilt } from '../helpers/cli.js';
import { randomFaults, startOpenAIServer } from '../helpers/openai-server.js';

let dir: string;
let personas: string;
const CONVERSATIONS = 40;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-limits-e2e-'));
  personas = join(dir, 'personas.ndjson');
  await writeFile(personas, Array.from({ length: CONVERSATIONS }, (_, i) => JSON.stringify({ persona_id: `p${i}`, queries: [{ query_id: 'q1', original_query: `question number ${i}` }] })).join('\n'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const readLines = async (path: string): Promise<string[]> => (await readFile(path, 'utf8')).split('\n').filter((line) => line !== '');

const yaml = async (name: string, text: string): Promise<string> => {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
};
// Two turns: assistant, user simulator, assistant: 3 calls a conversation.
const TURNS = ['--min-turns', '2', '--max-turns', '2', '--supplement-rounds', '0'];

describe('rate limits', () => {
  it('with the limit configured: every task written, every 429 retried', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY, rps: 25 });
    try {
      const config = await yaml('known.yaml', 'interaction_generation:\n  max_retries: 6\n  retry_delay: 0.05\npersonaflow:\n  limits:\n    test-model: { rpm: 1500 }\n');
      const run = await runCli(['generate', personas, '-c', config, ...against(server), ...TURNS, '-j', '16', '--out', join(dir, 'known')]);
      expect(run.code, run.stderr).toBe(0);
      expect(await readLines(join(dir, 'known', 'interactions.ndjson'))).toHaveLength(CONVERSATIONS);
      expect(server.requests.filter((r) => r.fault === 'ok')).toHaveLength(CONVERSATIONS * 3);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('with the limit unknown: every task completes, whatever share of requests the server refuses', async () => {
    // Answers take 40 ms, as a model's do: 25 requests a second need about one call in flight, and -j 32
    // starts far above that. (With instant answers no concurrency limit could hold a rate: see README.)
    const server = await startOpenAIServer({ apiKey: TEST_KEY, rps: 25, latencyMs: 40 });
    try {
      const config = await yaml('unknown.yaml', 'interaction_generation:\n  max_retries: 10\n  retry_delay: 0.05\npersonaflow:\n  breaker: { threshold: 1000 }\n');
      const run = await runCli(['generate', personas, '-c', config, ...against(server), ...TURNS, '-j', '32', '--out', join(dir, 'unknown')]);
      expect(run.code, run.stderr).toBe(0);
      expect(await readLines(join(dir, 'unknown', 'interactions.ndjson'))).toHaveLength(CONVERSATIONS);
      expect(server.requests.filter((r) => r.fault === 'ok')).toHaveLength(CONVERSATIONS * 3);
    } finally {
      await server.close();
    }
  }, 60_000);

  it('a dead server opens the breaker and the run stops early with one clear line, leaving a resumable DIR', async () => {
    // How many calls get through before the breaker opens is asserted in virtual time; here, that the run stops with one line.
    // The breaker opens only once a cool-down has passed since the run began, so with few retries the first 8
    // conversations could all fail before it did, and the early stop of the first failures (test/e2e/stopping.test.ts)
    // would speak instead: which one came first hung on how fast the machine started the run. Ten retries take at least
    // 5 s of backoff (half of 10 ms × 2^k is fixed), well past the breaker's 0.2 s cool-down and 2 s give-up.
    const server = await startOpenAIServer({ apiKey: TEST_KEY, faults: () => 'server_error', latencyMs: 20 });
    try {
      const config = await yaml('dead.yaml', 'interaction_generation:\n  max_retries: 10\n  retry_delay: 0.01\npersonaflow:\n  breaker: { threshold: 5, cooldown_s: 0.2, give_up_s: 2 }\n');
      const out = join(dir, 'dead');
      const run = await runCli(['generate', personas, '-c', config, ...against(server), ...TURNS, '-j', '8', '--out', out]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/openai\/test-model: every call failed for \d+ s \(429s, 5xx or timeouts\) and probes did not get through; stopping/);
      expect(run.stderr).toMatch(/--resume/);
      expect(existsSync(join(out, 'run.json'))).toBe(true);
    } finally {
      await server.close();
    }
  }, 30_000);
});

describe('accounting', () => {
  it('counts failed attempts the server billed, by module, by operation and per interaction', async () => {
    // 20% of requests fail; empty answers and answers without choices still carry usage, as real providers bill them.
    const server = await startOpenAIServer({ apiKey: TEST_KEY, faults: randomFaults({ seed: 5, rate: 0.2, mix: ['empty', 'no_choices', 'server_error'] }) });
    try {
      const out = join(dir, 'billed');
      const config = await yaml('billed.yaml', 'interaction_generation:\n  max_retries: 8\n  retry_delay: 0.01\n');
      const run = await runCli(['generate', personas, '-c', config, ...against(server), ...TURNS, '--out', out]);
      expect(run.code, run.stderr).toBe(0);
      type Counts = { call_count: number; input_tokens: number; output_tokens: number };
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as {
        statistics: { summary: { total_calls: number; total_input_tokens: number; total_output_tokens: number }; by_operation: Record<string, Counts>; failed_attempts: Counts };
      };
      const billed = server.requests.filter((r) => r.usage !== undefined);
      const sum = (requests: typeof billed, side: 'prompt' | 'completion'): number => requests.reduce((total, r) => total + (r.usage?.[side] ?? 0), 0);
      expect(new Set(server.requests.map((r) => r.fault))).toEqual(new Set(['ok', 'empty', 'no_choices', 'server_error']));
      expect(usage.statistics.summary).toEqual({
        total_calls: billed.length,
        total_input_tokens: sum(billed, 'prompt'),
        total_output_tokens: sum(billed, 'completion'),
        total_tokens: sum(billed, 'prompt') + sum(billed, 'completion'),
      });
      // Failed attempts: no choices from anyone, and empty assistant replies (an empty simulator reply is a guard re-ask).
      const failed = billed.filter((r) => r.fault === 'no_choices' || (r.fault === 'empty' && r.role === 'assistant'));
      expect(usage.statistics.failed_attempts).toMatchObject({ call_count: failed.length, input_tokens: sum(failed, 'prompt'), output_tokens: sum(failed, 'completion') });
      const ops = usage.statistics.by_operation;
      expect(ops['assistant.reply']?.call_count).toBe(billed.filter((r) => r.role === 'assistant').length);
      const simulator = billed.filter((r) => r.role === 'user_simulator');
      expect((ops['user_simulator.follow_up']?.call_count ?? 0) + (ops['user_simulator.guard_retry']?.call_count ?? 0)).toBe(simulator.length);
      // Every billed call belongs to one conversation: the interactions' own usage adds up to the totals.
      const lines = (await readFile(join(out, 'interactions.ndjson'), 'utf8')).trim().split('\n');
      const metadata = lines.map((line) => (JSON.parse(line) as { metadata: { usage: Record<string, { calls: number; input_tokens: number }>; guard: Record<string, number> } }).metadata);
      const perInteraction = metadata.map((m) => Object.values(m.usage));
      // Each rejected simulator reply (an empty one among them) was asked again: the guard re-asks, plus
      // those of them that came back without choices and were retried as the same operation.
      const rejected = metadata.reduce((total, m) => total + Object.values(m.guard).reduce((a, b) => a + b, 0), 0);
      const reasks = ops['user_simulator.guard_retry']?.call_count ?? 0;
      expect(reasks).toBeGreaterThanOrEqual(rejected);
      expect(reasks).toBeLessThanOrEqual(rejected + simulator.filter((r) => r.fault === 'no_choices').length);
      expect(rejected).toBeGreaterThanOrEqual(simulator.filter((r) => r.fault === 'empty').length);
      expect(perInteraction.flat().reduce((total, u) => total + u.calls, 0)).toBe(billed.length);
      expect(perInteraction.flat().reduce((total, u) => total + u.input_tokens, 0)).toBe(sum(billed, 'prompt'));
    } finally {
      await server.close();
    }
  }, 60_000);


  it('usage.json equals the usage the server returned, per module and in total', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      const out = join(dir, 'accounting');
      const run = await runCli(['generate', personas, ...against(server), ...TURNS, '--out', out]);
      expect(run.code, run.stderr).toBe(0);
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as {
        statistics: { summary: { total_calls: number; total_input_tokens: number; total_output_tokens: number }; by_module: Record<string, { call_count: number; input_tokens: number }> };
        cost: { unpriced_models: string[] };
      };
      const answered = server.requests.filter((r) => r.usage !== undefined);
      expect(usage.statistics.summary).toMatchObject({
        total_calls: answered.length,
        total_input_tokens: answered.reduce((sum, r) => sum + (r.usage?.prompt ?? 0), 0),
        total_output_tokens: answered.reduce((sum, r) => sum + (r.usage?.completion ?? 0), 0),
      });
      const bySimulator = answered.filter((r) => r.role === 'user_simulator');
      expect(usage.statistics.by_module.user_simulator).toMatchObject({ call_count: bySimulator.length, input_tokens: bySimulator.reduce((sum, r) => sum + (r.usage?.prompt ?? 0), 0) });
      // test-model has no price: listed, not counted as free.
      expect(usage.cost.unpriced_models).toEqual(['openai/test-model']);
    } finally {
      await server.close();
    }
  }, 30_000);
});

describe('progress', () => {
  it('--progress json prints the figures as JSON lines on stderr, the last one final', async () => {
    const run = await runCli(['generate', personas, '--provider', 'sim', '--progress', 'json', ...TURNS], { env: { OPENAI_API_KEY: undefined } });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { progress: Record<string, unknown>; final?: boolean });
    const last = lines.at(-1);
    expect(last?.final).toBe(true);
    expect(last?.progress).toMatchObject({ interactions: CONVERSATIONS, failures: 0, rejected: 0, input_read: 1, cost_usd: 0, throttled: [] });
    expect(last?.progress).toMatchObject({ total: CONVERSATIONS, total_exact: true });
    expect(Object.keys(last?.progress ?? {}).sort()).toEqual(['cost_usd', 'counting', 'elapsed_s', 'eta_s', 'failures', 'input_read', 'interactions', 'interactions_per_s', 'projected_cost_usd', 'rejected', 'retries', 'throttled', 'tokens_per_s', 'top_failure', 'total', 'total_exact'].sort());
  });

  // A real terminal: util-linux `script` runs the CLI on a pseudo-terminal and copies what it draws.
  const script = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!script)('redraws one live line on a terminal, with the figures moving, and clears it before the summary', async () => {
    const config = await yaml('slow.yaml', 'personaflow:\n  sim: { latency_ms: 60 }\n');
    const out = join(dir, 'tty');
    const command = `stty cols 200 rows 40; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} generate ${JSON.stringify(personas)} -c ${JSON.stringify(config)} --provider sim ${TURNS.join(' ')} -j 4 --out ${JSON.stringify(out)}`;
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: ROOT, env: childEnv({ OPENAI_API_KEY: undefined }), stdio: ['pipe', 'pipe', 'pipe'] });
    let drawn = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (drawn += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, drawn).toBe(0);
    // Each redraw is the line itself; log-update erases the previous one with ESC[2K (erase line) first.
    const frames = [...drawn.matchAll(/\[[#-]{20}\] (\d+)%\s+(\d+)\/~?(\d+) done\s+0 failed\s+\d+ retries\s+[\d.]+\/s\s+[\d,]+ tok\/s\s+\$0\.00\s+(ETA \S+|\S+ elapsed)/g)];
    expect(frames.length).toBeGreaterThanOrEqual(3);
    const done = frames.map((frame) => Number(frame[2]));
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(done.at(-1)).toBeGreaterThan(done[0]!);
    // The share is conversations settled, not bytes read (the small file is read at once): it moves with them.
    for (const frame of frames) expect(Number(frame[1])).toBe(Math.floor((100 * Number(frame[2])) / Number(frame[3])));
    expect(Number(frames[0]![1])).toBeLessThan(50);
    expect(drawn).toContain('\u001b[2K');
    // The summary comes after the last frame, on a cleared line, and names every conversation.
    const summary = drawn.slice(drawn.lastIndexOf(frames.at(-1)![0]));
    expect(summary).toMatch(new RegExp(`${CONVERSATIONS} interactions`));
  }, 60_000);

  it('shows no live line when stderr is not a terminal', async () => {
    const run = await runCli(['generate', personas, '--provider', 'sim', ...TURNS], { env: { OPENAI_API_KEY: undefined } });
    expect(run.stderr).not.toMatch(/tok\/s/);
  });
});

describe('--max-cost', () => {
  it('stops starting conversations before the budget could pass, writes what finished, exits 3 with one line', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      // Small completion caps keep a conversation's worst case (what --max-cost holds for it) near its real cost.
      const config = await yaml('priced.yaml', 'interaction_generation:\n  assistant_model: { max_completion_tokens: 60 }\n  user_model: { max_completion_tokens: 30 }\npersonaflow:\n  prices:\n    test-model: { input: 100, output: 100 }\n');
      const out = join(dir, 'budget');
      const run = await runCli(['generate', personas, '-c', config, ...against(server), ...TURNS, '-j', '2', '--max-cost', '0.5', '--out', out]);
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toMatch(/budget reached: \$0\.\d{4} spent of --max-cost \$0\.5 \(a ceiling on the directory's spend\); no conversation starts whose worst case would pass it\. To continue: personaflow generate --out \S+ --resume --max-cost <more than 0\.5>/);
      expect(run.stderr).toMatch(/result: incomplete \(exit 3\): --max-cost reached before every task started$/m);
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { cost: { total: number } };
      const written = (await readFile(join(out, 'interactions.ndjson'), 'utf8')).split('\n').filter((l) => l !== '').length;
      expect(written).toBeGreaterThan(0);
      expect(written).toBeLessThan(CONVERSATIONS);
      // A ceiling: with no retries, never passed.
      expect(usage.cost.total).toBeLessThanOrEqual(0.5);
      // The resume continues under the same ceiling (for the directory): nothing more fits.
      const again = await runCli(['generate', '--out', out, '--resume']);
      expect(again.code, again.stderr).toBe(3);
      expect(again.stderr).toMatch(/budget reached/);
      const after = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { cost: { total: number } };
      expect(after.cost.total).toBeLessThanOrEqual(0.5);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('regression: a budget smaller than one conversation\'s worst case starts none (--max-cost 0.0005 spent $0.0106)', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      const run = await runCli(['generate', personas, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'gpt-4o-mini', ...TURNS, '--max-cost', '0.0005']);
      expect(run.code, run.stderr).toBe(3);
      expect(server.count).toBe(0);
      expect(run.stderr).toMatch(/budget reached: \$0\.0000 spent of --max-cost \$0\.0005/);
    } finally {
      await server.close();
    }
  });

  it('refuses to start when a model it calls has no price', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      const run = await runCli(['generate', personas, ...against(server), ...TURNS, '--max-cost', '1']);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/--max-cost needs a price for every model the run calls; none for openai\/test-model/);
      expect(server.requests).toHaveLength(0);
    } finally {
      await server.close();
    }
  });
});
