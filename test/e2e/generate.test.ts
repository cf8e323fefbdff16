// End to end: the built CLI as a child process, against a real local OpenAI-compatible server with injected faults.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomFaults, startOpenAIServer, unusedPort, type FakeOpenAIOptions, type FakeOpenAIServer } from '../helpers/openai-server.js';

import { BIN, ROOT, TEST_KEY, against, childEnv, runCli, type Run, ensureBuilt } from '../helpers/cli.js';
import { interactionId } from '../../src/types.js';

interface Message {
  role: string;
  content: string;
  timestamp: string;
  metadata: Record<string, unknown>;
}
interface InteractionLine {
  interaction_id: string;
  persona_id: string;
  persona_features: Record<string, unknown>;
  original_query: string;
  initial_query: string;
  messages: Message[];
  num_turns: number;
  metadata: { created_at: string; query_id: string; distractor_applied: boolean; assistant_model: { model: string; provider: string }; [key: string]: unknown };
}
interface FailureLine {
  persona_id: string;
  query_id: string;
  interaction_id?: string;
  attempts: number;
  error: { kind: string; message: string };
  time: string;
}

const lines = (text: string): string[] => text.split('\n').filter((line) => line.trim() !== '');
const parseLines = <T>(text: string): T[] => lines(text).map((line) => JSON.parse(line) as T);

/** Checks one line against PersonaGym's Interaction format and the conversation invariants. */
function expectInteraction(interaction: InteractionLine, limits: { minTurns: number; maxTurns: number }): void {
  const queryId = interaction.metadata.query_id;
  expect(interaction.interaction_id).toBe(interactionId(interaction.persona_id, queryId));
  expect(typeof interaction.persona_id).toBe('string');
  expect(typeof interaction.persona_features).toBe('object');
  expect(typeof interaction.original_query).toBe('string');
  expect(typeof interaction.initial_query).toBe('string');
  expect(Number.isNaN(Date.parse(interaction.metadata.created_at))).toBe(false);
  expect(interaction.metadata.distractor_applied).toBe(false);
  expect(interaction.metadata.assistant_model).toEqual(expect.objectContaining({ model: expect.any(String), provider: expect.any(String) }));
  const { messages } = interaction;
  expect(messages.length).toBeGreaterThanOrEqual(2);
  expect(messages[0]?.content).toBe(interaction.initial_query);
  messages.forEach((message, index) => {
    expect(message.role).toBe(index % 2 === 0 ? 'user' : 'assistant');
    expect(typeof message.content).toBe('string');
    expect(message.content.trim()).not.toBe('');
    expect(Number.isNaN(Date.parse(message.timestamp))).toBe(false);
    expect(typeof message.metadata).toBe('object');
  });
  const answers = messages.filter((message) => message.role === 'assistant').length;
  expect(interaction.num_turns).toBe(answers);
  expect(interaction.num_turns).toBeGreaterThanOrEqual(limits.minTurns);
  expect(interaction.num_turns).toBeLessThanOrEqual(limits.maxTurns);
}

/** Persona NDJSON with explicit ids: `count` personas × `queries` queries each. */
function personas(count: number, queries = 1, options: { targetTurns?: boolean; prefix?: string } = {}): string {
  const styles = ['casual', 'formal', 'concise', 'friendly', 'direct'];
  const topics = ['sorting a CSV file', 'profiling a slow SQL query', 'writing a cover letter', 'planning a garden', 'learning Rust lifetimes', 'fixing a flaky test'];
  const out: string[] = [];
  for (let p = 0; p < count; p += 1) {
    const id = `${options.prefix ?? 'p'}${String(p).padStart(5, '0')}`;
    out.push(
      JSON.stringify({
        persona_id: id,
        persona_features: { role: `role ${p % 7}`, communication_style: styles[p % styles.length] },
        queries: Array.from({ length: queries }, (_, q) => ({
          query_id: `q${q + 1}`,
          original_query: `Help me with ${topics[(p + q) % topics.length]} (case ${p}.${q})`,
          ...(options.targetTurns === false ? {} : { target_turns: 1 + ((p + q) % 4) }),
        })),
      }),
    );
  }
  return `${out.join('\n')}\n`;
}

const expectedIds = (count: number, queries: number, prefix = 'p'): string[] =>
  Array.from({ length: count }, (_, p) => Array.from({ length: queries }, (_, q) => `interaction_${prefix}${String(p).padStart(5, '0')}_q${q + 1}`)).flat().sort();

let tmp: string;
let servers: FakeOpenAIServer[] = [];

async function serve(options: FakeOpenAIOptions = {}): Promise<FakeOpenAIServer> {
  const server = await startOpenAIServer({ apiKey: TEST_KEY, ...options });
  servers.push(server);
  return server;
}

interface ConfigOptions {
  readonly minTurns?: number;
  readonly maxTurns?: number;
  readonly maxRetries?: number;
  readonly retryDelay?: number;
  readonly timeout?: number;
  readonly extra?: string;
}

let configs = 0;
/** A small config.yaml in the temp dir: short retries and call deadline so faults and hangs settle fast. */
async function config(options: ConfigOptions = {}): Promise<string> {
  configs += 1;
  const path = join(tmp, `config-${configs}.yaml`);
  await writeFile(
    path,
    [
      'api:',
      `  timeout: ${options.timeout ?? 1}`,
      ...(options.extra === undefined ? [] : [options.extra]),
      'interaction_generation:',
      `  min_turns: ${options.minTurns ?? 1}`,
      `  max_turns: ${options.maxTurns ?? 3}`,
      `  max_retries: ${options.maxRetries ?? 2}`,
      `  retry_delay: ${options.retryDelay ?? 0.01}`,
      '',
    ].join('\n'),
  );
  return path;
}

async function writeInput(name: string, text: string): Promise<string> {
  const path = join(tmp, name);
  await writeFile(path, text);
  return path;
}

/** No crash: no internal error and no stack trace on stderr. */
function expectNoCrash(run: Run): void {
  expect(run.signal).toBeNull();
  expect(run.stderr).not.toMatch(/internal error/i);
  expect(run.stderr).not.toMatch(/^\s+at .+\(.*:\d+:\d+\)$/m);
  expect(run.stderr).not.toMatch(/Unhandled|uncaught/i);
}

beforeAll(ensureBuilt, 120_000);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'personaflow-e2e-'));
});

afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('personaflow generate (end to end)', () => {
  it('clean run: one valid interaction per persona × query on stdout, exit 0', async () => {
    const server = await serve();
    const input = await writeInput('clean.ndjson', personas(6, 2));
    const run = await runCli(['generate', input, ...against(server), '-c', await config({ minTurns: 1, maxTurns: 3, timeout: 10 }), '-j', '4']);

    expectNoCrash(run);
    expect(run.stderr).not.toMatch(/^personaflow: (warning: )?failed /m);
    expect(run.code).toBe(0);
    const interactions = parseLines<InteractionLine>(run.stdout);
    expect(interactions.map((i) => i.interaction_id).sort()).toEqual(expectedIds(6, 2));
    for (const interaction of interactions) {
      expectInteraction(interaction, { minTurns: 1, maxTurns: 3 });
      expect(interaction.metadata.assistant_model).toEqual({ provider: 'openai', model: 'test-model' });
    }
    // Both sides of the conversation went through the server, with the key from the environment.
    expect(server.requests.some((r) => r.role === 'user_simulator')).toBe(true);
    expect(server.requests.some((r) => r.role === 'assistant')).toBe(true);
    expect(server.requests.every((r) => r.authorization === `Bearer ${TEST_KEY}` && r.fault === 'ok')).toBe(true);
    // No faults: every assistant turn took exactly one call, and every follow-up came from a simulator call.
    expect(server.requests.filter((r) => r.role === 'assistant')).toHaveLength(interactions.reduce((sum, i) => sum + i.num_turns, 0));
    expect(server.requests.filter((r) => r.role === 'user_simulator').length).toBeGreaterThanOrEqual(interactions.reduce((sum, i) => sum + i.num_turns - 1, 0));
    // The simulator both followed up and stopped, and its follow-ups are the user turns of the transcripts.
    const simulatorReplies = server.requests.filter((r) => r.role === 'user_simulator').map((r) => r.reply);
    expect(simulatorReplies).toContain('###STOP###');
    const followUps = interactions.flatMap((i) => i.messages.slice(1).filter((m) => m.role === 'user').map((m) => m.content));
    expect(followUps.length).toBeGreaterThan(0);
    for (const text of followUps) expect(simulatorReplies).toContain(text);
  });

  it('faults (429, 500, hangs, malformed bodies): every task ends exactly once, --out files are consistent', async () => {
    const random = randomFaults({
      seed: 11,
      rate: 0.3,
      mix: [{ kind: 'rate_limit', retryAfter: '0' }, 'server_error', 'hang', 'malformed', 'no_choices', 'stall', { kind: 'server_error', status: 503 }],
    });
    // One task can never succeed, so the failure path is always exercised.
    const server = await serve({ faults: (request) => (JSON.stringify(request.body).includes('DOOMED') ? 'server_error' : random(request)) });
    const doomed = JSON.stringify({ persona_id: 'doomed', persona_features: { role: 'tester' }, queries: [{ query_id: 'q1', original_query: 'DOOMED question' }] });
    const input = await writeInput('faults.ndjson', `${personas(12, 2)}${doomed}\n`);
    const out = join(tmp, 'out-faults');
    // The faults come in bursts, which would open the circuit breaker and pause the run for seconds;
    // this test is about every task ending once, so the breaker is out of the way (it has its own test).
    const run = await runCli(['generate', input, ...against(server), '-c', await config({ maxRetries: 2, timeout: 1, extra: 'personaflow:\n  breaker: { threshold: 1000 }' }), '-j', '8', '--out', out, '--supplement-rounds', '0']);

    expectNoCrash(run);
    expect(run.stdout).toBe('');
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['interactions.ndjson', 'failures.ndjson', 'index.ndjson', 'usage.json']));
    const data = await readFile(join(out, 'interactions.ndjson'));
    const interactions = parseLines<InteractionLine>(data.toString('utf8'));
    const failures = parseLines<FailureLine>(await readFile(join(out, 'failures.ndjson'), 'utf8'));

    // Exactly one outcome per task, none twice.
    const ids = [...interactions.map((i) => i.interaction_id), ...failures.map((f) => `interaction_${f.persona_id}_${f.query_id}`)];
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual([...expectedIds(12, 2), 'interaction_doomed_q1'].sort());
    for (const interaction of interactions) expectInteraction(interaction, { minTurns: 1, maxTurns: 3 });
    for (const failure of failures) {
      expect(failure.attempts).toBeGreaterThanOrEqual(1);
      expect(typeof failure.error.kind).toBe('string');
      expect(typeof failure.error.message).toBe('string');
      expect(Number.isNaN(Date.parse(failure.time))).toBe(false);
    }
    const doomedFailure = failures.find((f) => f.persona_id === 'doomed');
    expect(doomedFailure).toMatchObject({ query_id: 'q1', attempts: 3, error: { kind: 'server' } });
    expect(run.code).toBe(failures.length > 0 ? 3 : 0);
    // The faults really happened.
    expect(new Set(server.requests.map((r) => r.fault))).toEqual(new Set(['ok', 'rate_limit', 'server_error', 'hang', 'malformed', 'no_choices', 'stall']));

    // index.ndjson: one line per interaction, in file order, whose offset/bytes cut out exactly that line.
    const index = parseLines<{ n: number; interaction_id: string; offset: number; bytes: number }>(await readFile(join(out, 'index.ndjson'), 'utf8'));
    expect(index).toHaveLength(interactions.length);
    let offset = 0;
    index.forEach((entry, i) => {
      expect(entry.n).toBe(i + 1);
      expect(entry.offset).toBe(offset);
      const slice = data.subarray(entry.offset, entry.offset + entry.bytes).toString('utf8');
      expect(slice.endsWith('\n')).toBe(true);
      expect((JSON.parse(slice) as InteractionLine).interaction_id).toBe(entry.interaction_id);
      expect(entry.interaction_id).toBe(interactions[i]?.interaction_id);
      offset += entry.bytes;
    });
    expect(offset).toBe(data.length);

    const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { summary: { total_calls: number } }; interactions: number; failures: number };
    expect(usage.interactions).toBe(interactions.length);
    expect(usage.failures).toBe(failures.length);
    expect(usage.statistics.summary.total_calls).toBeGreaterThan(0);
  });

  it('honours Retry-After: the retry of a 429 with Retry-After: 1 comes about a second later', async () => {
    const server = await serve({ faults: [{ kind: 'rate_limit', retryAfter: '1' }] });
    const input = await writeInput('one.ndjson', `${JSON.stringify({ persona_id: 'solo', queries: [{ query_id: 'q1', original_query: 'One short question', target_turns: 1 }] })}\n`);
    const run = await runCli(['generate', input, ...against(server), '-c', await config({ minTurns: 1, maxTurns: 1, retryDelay: 0.01, timeout: 10 }), '-j', '1']);

    expectNoCrash(run);
    expect(run.code).toBe(0);
    expect(parseLines<InteractionLine>(run.stdout)).toHaveLength(1);
    expect(server.requests.map((r) => r.fault)).toEqual(['rate_limit', 'ok']);
    const [first, second] = server.requests;
    // retry_delay is 10 ms, so only Retry-After explains a wait of about a second.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it('wrong API key: stops at once with exit 1, a handful of requests and one clear line without the key', async () => {
    const server = await serve({ apiKey: 'sk-the-right-key', echoKeyInErrors: true });
    const wrongKey = 'sk-wrong-key-e2e-777';
    const input = await writeInput('many-401.ndjson', personas(2000, 1));
    const run = await runCli(['generate', input, ...against(server), '-c', await config({ timeout: 10 }), '-j', '8'], { env: { OPENAI_API_KEY: wrongKey } });

    expectNoCrash(run);
    expect(run.code).toBe(1);
    expect(server.count).toBeGreaterThan(0);
    expect(server.count).toBeLessThan(50);
    expect(server.requests.every((r) => r.authorization === `Bearer ${wrongKey}`)).toBe(true);
    expect(run.stdout).toBe('');
    expect(lines(run.stderr).filter((line) => /authenticat/i.test(line))).toHaveLength(1);
    expect(run.stderr).not.toContain(wrongKey);
  });

  it('unreachable endpoint: the run stops after the retries with exit 1 and one clear line', async () => {
    const port = await unusedPort();
    const input = await writeInput('unreachable.ndjson', personas(3, 1));
    const run = await runCli(['generate', input, ...against({ baseURL: `http://127.0.0.1:${port}/v1` }), '-c', await config({ maxRetries: 1 }), '-j', '2']);

    expectNoCrash(run);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(new RegExp(`connection failed \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\); still unreachable after 2 attempt`));
  });

  it('`generate | head -n 1`: a closed pipe ends the run quietly with exit 0', async () => {
    const input = await writeInput('many-sim.ndjson', personas(20_000, 1));
    const child = spawn(process.execPath, [BIN, 'generate', input, '--provider', 'sim', '-j', '16'], { cwd: ROOT, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    const first = await new Promise<string>((resolve, reject) => {
      let buffered = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        const newline = buffered.indexOf('\n');
        if (newline !== -1) {
          child.stdout.destroy();
          resolve(buffered.slice(0, newline));
        }
      });
      child.once('error', reject);
      child.once('close', () => reject(new Error(`exited before writing a line; stderr: ${stderr}`)));
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve([child.exitCode, child.signalCode]);
      else child.once('close', (c, s) => resolve([c, s]));
    });
    clearTimeout(killer);

    expect((JSON.parse(first) as InteractionLine).interaction_id).toMatch(/^interaction_p\d+_q1$/);
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/EPIPE|Error|^\s+at /m);
    // It stopped early instead of simulating all 20 000 conversations for nobody.
    expect(stderr).not.toMatch(/20000 interactions/);
  });

  it('bad input lines: FILE:LINE messages, good lines still produce interactions, exit 3 (lines were skipped); --strict exits 2', async () => {
    const good = (id: string): string => JSON.stringify({ persona_id: id, persona_features: { role: 'x' }, queries: [{ query_id: 'q1', original_query: `Question from ${id}`, target_turns: 2 }] });
    const text = [good('good1'), '{"persona_id": "broken", "queries": [', JSON.stringify({ persona_features: { role: 'nobody' }, queries: [{ original_query: 'who am i' }] }), good('good2'), ''].join('\n');
    const input = await writeInput('bad-lines.ndjson', text);

    const run = await runCli(['generate', input, '--provider', 'sim', '--seed', '3']);
    expectNoCrash(run);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/personaflow: result: incomplete \(exit 3\): 2 bad input line\(s\) skipped\n$/);
    expect(run.stderr).toContain(`${input}:2: `);
    expect(run.stderr).toMatch(new RegExp(`^personaflow: warning: ${input.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: .*persona_id`, 'm'));
    expect(run.stderr).not.toContain(`${input}:1:`);
    expect(run.stderr).not.toContain(`${input}:4:`);
    const ids = parseLines<InteractionLine>(run.stdout).map((i) => i.interaction_id).sort();
    expect(ids).toEqual(['interaction_good1_q1', 'interaction_good2_q1']);

    const strict = await runCli(['generate', input, '--provider', 'sim', '--seed', '3', '--strict']);
    expectNoCrash(strict);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toContain(`${input}:2: `);
  });

  it('determinism: with sim and the same seed, -j 1 and -j 16 give the same interactions (timestamps aside)', async () => {
    const input = await writeInput('determinism.ndjson', personas(40, 2, { targetTurns: false }));
    const normalize = (stdout: string): unknown[] =>
      parseLines<InteractionLine>(stdout)
        .map((interaction) => ({
          ...interaction,
          messages: interaction.messages.map(({ timestamp: _timestamp, ...message }) => message),
          metadata: { ...interaction.metadata, created_at: undefined },
        }))
        .sort((a, b) => a.interaction_id.localeCompare(b.interaction_id));
    const one = await runCli(['generate', input, '--provider', 'sim', '--seed', '7', '-j', '1']);
    const many = await runCli(['generate', input, '--provider', 'sim', '--seed', '7', '-j', '16']);
    expect(one.code).toBe(0);
    expect(many.code).toBe(0);
    const a = normalize(one.stdout);
    expect(a).toHaveLength(80);
    expect(normalize(many.stdout)).toEqual(a);
  });

  it('reads personas from stdin with `generate -`', async () => {
    const server = await serve();
    const text = await readFile(join(ROOT, 'examples', 'personas.ndjson'), 'utf8');
    const personaIds = lines(text).map((line) => (JSON.parse(line) as { persona_id: string }).persona_id);
    const run = await runCli(['generate', '-', ...against(server), '-c', await config({ timeout: 10 })], { input: text });

    expectNoCrash(run);
    expect(run.code).toBe(0);
    const interactions = parseLines<InteractionLine>(run.stdout);
    expect(interactions).toHaveLength(8);
    expect(new Set(interactions.map((i) => i.interaction_id)).size).toBe(8);
    expect(new Set(interactions.map((i) => i.persona_id))).toEqual(new Set(personaIds));
    for (const interaction of interactions) expectInteraction(interaction, { minTurns: 1, maxTurns: 3 });
  });

  it('a literal key in the config file never reaches stdout, stderr or any output file', async () => {
    const secret = 'sk-test-SECRET-123';
    const server = await serve({ apiKey: 'sk-the-right-key', echoKeyInErrors: true });
    const out = join(tmp, 'out-secret');
    const input = await writeInput('secret.ndjson', personas(5, 1));
    const configFile = await config({ extra: `  api_key: ${secret}` });
    const run = await runCli(['generate', input, ...against(server), '-c', configFile, '-j', '2', '--out', out], { env: { OPENAI_API_KEY: undefined } });

    expectNoCrash(run);
    expect(run.code).toBe(1);
    // The key was used (the server saw it), and echoed back in the 401 message.
    expect(server.requests[0]?.authorization).toBe(`Bearer ${secret}`);
    expect(run.stdout).not.toContain(secret);
    expect(run.stderr).not.toContain(secret);
    expect(run.stderr).toMatch(/authenticat/i);
    for (const name of await readdir(out)) {
      expect(await readFile(join(out, name), 'utf8'), name).not.toContain(secret);
    }
  });

  describe('Ctrl-C', () => {
    /** Spawns a sim run with 100 ms calls; resolves once the first interaction line is on disk or stdout. */
    async function startSlowRun(args: string[], stdin: 'ignore' | 'pipe') {
      const slow = await writeFile(join(tmp, 'slow.yaml'), 'personaflow:\n  sim:\n    latency_ms: 100\n').then(() => join(tmp, 'slow.yaml'));
      const child = spawn(process.execPath, [BIN, 'generate', ...args, '--provider', 'sim', '-c', slow, '-j', '4'], { cwd: ROOT, env: childEnv(), stdio: [stdin, 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => { clearTimeout(killer); resolve(code); }));
      return { child, exited, out: () => stdout, err: () => stderr };
    }

    it('stops reading, finishes what is in flight, writes consistent files and exits 130', async () => {
      const input = await writeInput('sigint.ndjson', personas(2000, 1));
      const out = join(tmp, 'out-sigint');
      const run = await startSlowRun([input, '--out', out], 'ignore');
      const interactionsFile = join(out, 'interactions.ndjson');
      while (!existsSync(interactionsFile) || (await readFile(interactionsFile, 'utf8')).length === 0) await new Promise((r) => setTimeout(r, 50));
      run.child.kill('SIGINT');
      const code = await run.exited;

      expect(code).toBe(130);
      expect(run.err()).toMatch(/stopping: no new conversations/);
      expect(run.err()).toMatch(/interrupted: \d+ interactions/);
      const text = await readFile(interactionsFile, 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      const written = parseLines<InteractionLine>(text);
      expect(written.length).toBeGreaterThan(0);
      expect(written.length).toBeLessThan(2000);
      expect(new Set(written.map((i) => i.interaction_id)).size).toBe(written.length);
      const index = parseLines<{ interaction_id: string }>(await readFile(join(out, 'index.ndjson'), 'utf8'));
      expect(index.map((entry) => entry.interaction_id)).toEqual(written.map((i) => i.interaction_id));
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { summary: { total_calls: number } } };
      expect(usage.statistics.summary.total_calls).toBeGreaterThanOrEqual(written.reduce((n, i) => n + 2 * i.num_turns - 1, 0));
    });

    it('does not hang on a stdin that stays open, and a second Ctrl-C aborts at once', async () => {
      const run = await startSlowRun(['-'], 'pipe');
      run.child.stdin!.write(personas(50, 1));
      while (run.out().length === 0) await new Promise((r) => setTimeout(r, 50));
      run.child.kill('SIGINT');
      // The second Ctrl-C once the first has been taken (it says so), not after a guess at how long that takes.
      while (!/stopping: no new conversations/.test(run.err())) await new Promise((r) => setTimeout(r, 10));
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(130);
      for (const line of lines(run.out())) expect(() => JSON.parse(line) as unknown).not.toThrow();
    });
  });

  it('honours --min-turns, --max-turns and -j from the command line over the config', async () => {
    const input = await writeInput('flags.ndjson', personas(30, 1, { targetTurns: false }));
    const run = await runCli(['generate', input, '--provider', 'sim', '--min-turns', '3', '--max-turns', '4', '-j', '3', '-c', await config({ minTurns: 1, maxTurns: 2 })]);
    expect(run.code).toBe(0);
    const interactions = parseLines<InteractionLine>(run.stdout);
    expect(interactions).toHaveLength(30);
    for (const interaction of interactions) expectInteraction(interaction, { minTurns: 3, maxTurns: 4 });
    const bad = await runCli(['generate', input, '--provider', 'sim', '--min-turns', '5', '--max-turns', '2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-turns 2 is below --min-turns 5');
    const zero = await runCli(['generate', input, '-j', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain("option '-j, --concurrency <n>' argument '0' is invalid. expected an integer from 1 to 1024, got `0`");
  });
});
