// End to end: what a run does with what a server (or a hostile one) says: secrets, wrong endpoints, missing or absurd usage, absurd waits, keys and providers.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAIServer, type FakeOpenAIOptions, type FakeOpenAIServer } from '../helpers/openai-server.js';
import { TEST_KEY, against, ensureBuilt, runCli, type Run } from '../helpers/cli.js';

let tmp: string;
let servers: FakeOpenAIServer[] = [];
let files = 0;

async function serve(options: FakeOpenAIOptions = {}): Promise<FakeOpenAIServer> {
  const server = await startOpenAIServer({ apiKey: TEST_KEY, ...options });
  servers.push(server);
  return server;
}

/** Writes `text` to a new file in the temp dir and returns its path. */
async function file(text: string, name = 'f'): Promise<string> {
  files += 1;
  const path = join(tmp, `${name}-${files}`);
  await writeFile(path, text);
  return path;
}

/** `count` personas with one query each, explicit ids. */
const personas = (count: number): string =>
  Array.from({ length: count }, (_, i) => JSON.stringify({ persona_id: `p${i}`, persona_features: { role: 'tester' }, queries: [{ query_id: 'q1', original_query: `Help me with case ${i}` }] })).join('\n') + '\n';

/** Short retries and deadlines, so a fault settles fast. */
const fastConfig = (extra = ''): Promise<string> => file(`api:\n  timeout: 5\ninteraction_generation:\n  min_turns: 1\n  max_turns: 2\n  max_retries: 1\n  retry_delay: 0.01\n${extra}`, 'config.yaml');


function expectNoCrash(run: Run): void {
  expect(run.signal).toBeNull();
  expect(run.stderr).not.toMatch(/internal error/i);
  expect(run.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
}

beforeAll(ensureBuilt, 120_000);
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'personaflow-endpoints-'));
});
afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('secrets (item 16)', () => {
  it('regression: credentials and query values of --base-url never reach run.json or stderr', async () => {
    const server = await serve({ faults: () => 'unauthorized', echoHeaders: true });
    const out = join(tmp, 'secret-url');
    const url = server.baseURL.replace('http://', 'http://alice:pw-SECRET-9@');
    const run = await runCli(['generate', await file(personas(2)), '--provider', 'openai', '--model', 'test-model', '--base-url', `${url}?api-key=QUERY-SECRET-7`, '-c', await fastConfig(), '--out', out]);
    expectNoCrash(run);
    const record = await readFile(join(out, 'run.json'), 'utf8');
    expect(record).toContain('"base_url": "http://127.0.0.1:');
    expect(record).toContain('api-key=***');
    for (const text of [record, run.stderr, run.stdout]) {
      expect(text).not.toContain('pw-SECRET-9');
      expect(text).not.toContain('QUERY-SECRET-7');
      expect(text).not.toContain(TEST_KEY);
    }
  });

  it('regression: header values are ${VAR}-expanded when sent and never echoed back', async () => {
    const server = await serve({ faults: (request) => (request.index === 0 ? 'ok' : 'unauthorized'), echoHeaders: true });
    const config = await fastConfig(`  assistant_model:\n    headers: {X-Team-Token: "\${TEAM_TOKEN}"}\n  user_model:\n    headers: {X-Team-Token: "\${TEAM_TOKEN}"}\n`);
    const run = await runCli(['generate', await file(personas(3)), ...against(server), '-c', config, '-j', '1'], { env: { TEAM_TOKEN: 'team-SECRET-4242' } });
    expectNoCrash(run);
    const first = server.requests[0]!;
    expect(first.headers['x-team-token']).toBe('team-SECRET-4242');
    expect(run.stderr).toMatch(/authentication failed \(401\)/);
    expect(run.stderr).not.toContain('team-SECRET-4242');
    expect(run.stderr).not.toContain(TEST_KEY);
  });
});
