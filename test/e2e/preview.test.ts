// End to end: generate --dry-run (no model call at all) and --preview (one real conversation) print the prompts and one conversation, and write nothing.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_KEY, against, ensureBuilt, runCli } from '../helpers/cli.js';
import { startOpenAIServer, type FakeOpenAIServer } from '../helpers/openai-server.js';

let dir: string;
let personas: string;
let config: string;
let servers: FakeOpenAIServer[] = [];

const FIRST_QUERY = 'How do I keep my hives alive through a cold winter?';

async function serve(): Promise<FakeOpenAIServer> {
  const server = await startOpenAIServer({ apiKey: TEST_KEY });
  servers.push(server);
  return server;
}

/** The text under `== title... ==` up to the next heading. */
function section(stdout: string, title: string): string {
  const start = stdout.indexOf(`\n== ${title}`);
  expect(start, `no "${title}" section in:\n${stdout}`).toBeGreaterThanOrEqual(0);
  const body = stdout.slice(stdout.indexOf('\n', start + 1) + 1);
  const end = body.indexOf('\n== ');
  return end === -1 ? body : body.slice(0, end);
}

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-preview-e2e-'));
  personas = join(dir, 'personas.ndjson');
  await writeFile(
    personas,
    [
      JSON.stringify({ persona_id: 'keeper', persona_features: { role: 'beekeeper', communication_style: 'casual', home_town: 'Ljubljana' }, queries: [{ query_id: 'winter', original_query: FIRST_QUERY }, { query_id: 'plants', original_query: 'What should I plant near the hives?' }] }),
      JSON.stringify({ persona_id: 'nurse', persona_features: { role: 'nurse' }, queries: [{ query_id: 'sleep', original_query: 'Tips for sleeping after night shifts?' }] }),
    ].join('\n') + '\n',
  );
  config = join(dir, 'config.yaml');
  // Every user turn noised by a typo strategy, so the noise is shown against the clean text; test-model priced.
  await writeFile(
    config,
    [
      'api:',
      '  timeout: 10',
      'interaction_generation:',
      '  min_turns: 2',
      '  max_turns: 3',
      '  retry_delay: 0.01',
      'distractor:',
      '  enabled: true',
      '  activation_probability: 1',
      '  noise_strategies:',
      '    - {name: typo, probability: 1, intensity: 0.5}',
      'personaflow:',
      '  prices:',
      '    test-model: {input: 3, output: 7}',
      '',
    ].join('\n'),
  );
});
afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('generate --dry-run', () => {
  it('calls no model (no request reaches the server), prints the rendered prompt with the persona and one conversation, and writes nothing', async () => {
    const server = await serve();
    // The same command without --dry-run does reach the server (so the count below can tell a call).
    const real = await runCli(['generate', personas, '-c', config, ...against(server), '--seed', '3', '--limit', '1', '-q']);
    expect(real.code, real.stderr).toBe(0);
    const before = server.requests.length;
    expect(before).toBeGreaterThan(0);
    const out = join(dir, 'dry-out');
    const again = await runCli(['generate', personas, '-c', config, ...against(server), '--out', out, '--seed', '3', '--dry-run']);
    expect(again.code, again.stderr).toBe(0);
    expect(server.requests.length).toBe(before);
    expect(existsSync(out)).toBe(false);

    const { stdout } = again;
    expect(stdout).toContain('no model was called');
    expect(stdout).toContain('task: persona keeper, query winter');
    const prompt = section(stdout, 'user simulator');
    expect(prompt).toContain('role-playing a human user');
    expect(prompt).toContain('beekeeper');
    expect(prompt).toContain(FIRST_QUERY);
    expect(section(stdout, 'assistant')).toContain('helpful AI assistant');
    const conversation = section(stdout, 'conversation');
    expect(conversation).toMatch(/^\[1\] user: /m);
    expect(conversation).toMatch(/^\[1\] assistant: /m);
    // The typo noise shown against the clean text it was made from.
    expect(conversation).toContain(`(noised; the clean text: ${FIRST_QUERY})`);
    expect(section(stdout, 'usage')).toContain('nothing spent (sim)');
    expect(again.stderr).toContain('not applied: --out');
  });

  it('shows the same for the same seed (sim is deterministic), and is refused together with --preview', async () => {
    const a = await runCli(['generate', personas, '-c', config, '--seed', '9', '--dry-run'], { env: { OPENAI_API_KEY: undefined } });
    const b = await runCli(['generate', personas, '-c', config, '--seed', '9', '--dry-run'], { env: { OPENAI_API_KEY: undefined } });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const both = await runCli(['generate', personas, '-c', config, '--dry-run', '--preview']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--dry-run and --preview do not go together');
  });
});

describe('generate --preview', () => {
  it('holds one real conversation with the configured models, prints what they were sent, and its usage and cost', async () => {
    const server = await serve();
    const out = join(dir, 'preview-out');
    const run = await runCli(['generate', personas, '-c', config, ...against(server), '--out', out, '--seed', '3', '--preview']);
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(out)).toBe(false);
    // One conversation: the first task's, its assistant and simulator calls only.
    const requests = server.requests;
    expect(requests.length).toBeGreaterThan(0);
    expect(new Set(requests.map((request) => request.role))).toEqual(new Set(['assistant', 'user_simulator']));
    const answers = requests.filter((request) => request.role === 'assistant');
    const firstUser = (request: (typeof requests)[number]): string => ((request.body as { messages: { role: string; content: string }[] }).messages.find((m) => m.role === 'user')?.content ?? '');
    expect(new Set(answers.map(firstUser)).size).toBe(1);
    const conversation = section(run.stdout, 'conversation');
    expect(conversation.match(/^\[\d+\] assistant: /gm)?.length).toBe(answers.length);
    // The simulator prompt shown is the one the server was sent, word for word.
    const simulatorRequest = requests.find((request) => request.role === 'user_simulator');
    const system = (simulatorRequest?.body as { messages: { role: string; content: string }[] }).messages[0]?.content ?? '';
    expect(section(run.stdout, 'user simulator openai/test-model').trimEnd()).toBe(system.trimEnd());
    expect(run.stdout).toContain('one conversation with the configured models');
    // Usage and cost are what the server billed, at the configured price.
    const billed = requests.reduce((sum, request) => ({ prompt: sum.prompt + (request.usage?.prompt ?? 0), completion: sum.completion + (request.usage?.completion ?? 0) }), { prompt: 0, completion: 0 });
    const usage = section(run.stdout, 'usage');
    expect(usage).toContain(`${requests.length} call(s), ${billed.prompt + billed.completion} tokens; $${((billed.prompt * 3 + billed.completion * 7) / 1e6).toFixed(6)}`);
  });

  it('shows a conversation that failed, and exits 3', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY, faults: () => 'server_error' });
    servers.push(server);
    const failing = join(dir, 'failing.yaml');
    await writeFile(failing, 'api:\n  timeout: 10\ninteraction_generation:\n  max_retries: 1\n  retry_delay: 0.01\n');
    const run = await runCli(['generate', personas, '-c', failing, ...against(server), '--preview']);
    expect(run.code, run.stderr).toBe(3);
    expect(section(run.stdout, 'the conversation failed')).toMatch(/^server after 2 attempt\(s\): /m);
    expect(server.count).toBe(2);
  });

  it('with --verbose, says every call attempt and retry on stderr, as generate does, and never the key', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY, faults: () => 'server_error' });
    servers.push(server);
    const failing = join(dir, 'failing-verbose.yaml');
    await writeFile(failing, 'api:\n  timeout: 10\ninteraction_generation:\n  max_retries: 1\n  retry_delay: 0.01\n');
    const run = await runCli(['generate', personas, '-c', failing, ...against(server), '--preview', '--verbose']);
    expect(run.code, run.stderr).toBe(3);
    const lines = run.stderr.split('\n');
    expect(lines.filter((line) => line.startsWith('personaflow: verbose: call assistant '))).toHaveLength(server.count);
    expect(lines.filter((line) => line.startsWith('personaflow: verbose: retry 1 of 1 '))).toHaveLength(1);
    expect(run.stderr).not.toContain(TEST_KEY);
  });

  it('says when the cost is unknown: a model without a price is named, never counted as free', async () => {
    const server = await serve();
    const unpriced = join(dir, 'unpriced.yaml');
    await writeFile(unpriced, 'api:\n  timeout: 10\ninteraction_generation:\n  min_turns: 1\n  max_turns: 2\n');
    const run = await runCli(['generate', personas, '-c', unpriced, ...against(server), '--preview']);
    expect(run.code, run.stderr).toBe(0);
    expect(section(run.stdout, 'usage')).toContain('cost unknown: no price for openai/test-model under personaflow.prices');
  });
});
