// End to end: what a run does with what a server (or a hostile one) says: secrets, wrong endpoints, missing or absurd usage, absurd waits, keys and providers.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { personasOf, scratchArea } from '../helpers/scratch.js';
import { BIN, ROOT, TEST_KEY, against, childEnv, runCli, type Run } from '../helpers/cli.js';

const scratch = scratchArea('endpoints');
const { serve, file } = scratch;
const personas = personasOf;

/** Short retries and deadlines, so a fault settles fast. */
const fastConfig = (extra = ''): Promise<string> => file(`api:\n  timeout: 5\ninteraction_generation:\n  min_turns: 1\n  max_turns: 2\n  max_retries: 1\n  retry_delay: 0.01\n${extra}`, 'config.yaml');


function expectNoCrash(run: Run): void {
  expect(run.signal).toBeNull();
  expect(run.stderr).not.toMatch(/internal error/i);
  expect(run.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
}


describe('secrets (item 16)', () => {
  it('regression: credentials and query values of --base-url never reach run.json or stderr', async () => {
    const server = await serve({ faults: () => 'unauthorized', echoHeaders: true });
    const out = join(scratch.dir, 'secret-url');
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

describe('a wrong endpoint (item 11)', () => {
  it.each([
    ['404', { kind: 'status', status: 404, message: 'no route POST /v1/chat/completions' }, /answered 404 \(no route POST \/v1\/chat\/completions\): check the base URL and the model name/],
    ['model not found', { kind: 'status', status: 404, message: 'The model `test-model` does not exist', code: 'model_not_found' }, /answered 404 \(The model `test-model` does not exist\)/],
    ['a redirect', { kind: 'status', status: 301, headers: { location: 'https://elsewhere.example/v1/chat/completions' } }, /answered 301 \(a redirect to https:\/\/elsewhere\.example\/v1\/chat\/completions, not followed\)/],
  ] as const)('regression: %s ends the run at the first answer, with one line naming the URL', async (_name, fault, message) => {
    const server = await serve({ faults: () => fault });
    const out = scratch.fresh('wrong');
    const run = await runCli(['generate', await file(personas(40)), ...against(server), '-c', await fastConfig(), '-j', '4', '--supplement-rounds', '3', '--out', out]);
    expectNoCrash(run);
    expect(run.code).toBe(1);
    const lines = run.stderr.split('\n').filter((line) => message.test(line));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${server.baseURL}/chat/completions`);
    // The calls already in flight when the first answer came, not one per task (40) times rounds.
    expect(server.count).toBeLessThanOrEqual(4);
    expect(run.stderr).toMatch(/personaflow generate .*--resume/);
  });

  it.each([
    ['not a url', /--base-url: expected an http:\/\/ or https:\/\/ URL, got text that is not a URL/],
    ['file:///etc/passwd', /--base-url: expected an http:\/\/ or https:\/\/ URL, got a file: URL \(file:\/\/\/etc\/passwd\)/],
  ])('regression: --base-url %j is a configuration error before any call', async (url, message) => {
    const run = await runCli(['generate', await file(personas(2)), '--provider', 'openai', '--model', 'm', '--base-url', url]);
    expectNoCrash(run);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });

  it('regression: base_url in the config that is not a URL is a configuration error naming the key', async () => {
    const config = await file('api:\n  base_url: "localhost:8000/v1"\n', 'config.yaml');
    const run = await runCli(['generate', await file(personas(2)), '-c', config, '--model', 'm']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/api\.base_url: expected an http:\/\/ or https:\/\/ URL, got a localhost: URL/);
  });
});

describe('absurd waits (item 10)', () => {
  it.each([
    ['Retry-After: 3600', { 'retry-after': '3600' }],
    ['Retry-After a week ahead', { 'retry-after': new Date(Date.now() + 7 * 86_400_000).toUTCString() }],
    ['x-ratelimit-reset-requests: 100h with nothing remaining', { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '100h' }],
  ])('regression: a 429 with %s fails its call at once instead of stalling the run', async (_name, headers) => {
    const server = await serve({ faults: (request) => (request.index === 0 ? { kind: 'status', status: 429, headers, message: 'Rate limit reached' } : 'ok') });
    const run = await runCli(['generate', await file(personas(3)), ...against(server), '-c', await fastConfig(), '-j', '1', '--supplement-rounds', '0'], { killAfterMs: 20_000 });
    expectNoCrash(run);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/failed: persona "p0" query "q1" after 1 attempt\(s\): rate_limit: .*it asks to wait (1 h 0 min|16\d h \d+ min|100 h 0 min), over personaflow\.max_wait_s \(10 min 0 s\)/);
    expect(run.stdout.split('\n').filter((line) => line !== '')).toHaveLength(2);
  });

  it('regression: a 100-hour reset header on answers is ignored with one notice, and the run finishes', async () => {
    const server = await serve({ answerHeaders: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '100h' } });
    const run = await runCli(['generate', await file(personas(4)), ...against(server), '-c', await fastConfig(), '-j', '2'], { killAfterMs: 20_000 });
    expectNoCrash(run);
    expect(run.code).toBe(0);
    expect(run.stderr.match(/ignoring an x-ratelimit-reset header of 100 h 0 min, over personaflow\.max_wait_s/g)).toHaveLength(1);
  });

  it('max_wait_s is configurable: a Retry-After under it is waited out and said with until when', async () => {
    const server = await serve({ faults: (request) => (request.index === 0 ? { kind: 'status', status: 429, headers: { 'retry-after': '6' } } : 'ok') });
    const run = await runCli(['generate', await file(personas(1)), ...against(server), '-c', await fastConfig('personaflow:\n  max_wait_s: 30\n')], { killAfterMs: 20_000 });
    expectNoCrash(run);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/openai\/test-model: waiting 6 s, until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: a refused call sits out its Retry-After/);
  });
});

describe('every wait is abortable (item 9)', () => {
  /** Starts generate, waits until stderr says `ready`, sends `signal`, and resolves with the exit. */
  async function signalWhen(args: readonly string[], ready: RegExp, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (!sent && ready.test(stderr)) {
        sent = true;
        child.kill(signal);
      }
    });
    // The harness's own limit: a run that does not end is killed, and the test fails on its exit code.
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', (exit: number | null) => resolve(exit)));
    clearTimeout(killer);
    return { code, stderr };
  }

  it.each(['SIGTERM', 'SIGINT'] as const)('regression: %s while calls wait for a 9-minute reset ends the run now, exit 130', async (signal) => {
    const server = await serve({ answerHeaders: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '9m' } });
    const out = join(scratch.dir, `waiting-${signal}`);
    const { code, stderr } = await signalWhen(['generate', await file(personas(6)), ...against(server), '-c', await fastConfig(), '-j', '2', '--out', out], /waiting 9 min/, signal);
    expect(code).toBe(130);
    expect(stderr).toMatch(/stopping: no new conversations/);
    expect(stderr).toMatch(/to continue where this run stopped: personaflow generate/);
    // Conversations cut short by the stop are not failures: a resume does them.
    expect(await readFile(join(out, 'failures.ndjson'), 'utf8')).toBe('');
  });

  it('regression: a stop during a long retry backoff ends the run now too', async () => {
    const server = await serve({ faults: () => ({ kind: 'status', status: 429, headers: { 'retry-after': '300' } }) });
    const { code } = await signalWhen(['generate', await file(personas(2)), ...against(server), '-c', await fastConfig(), '-j', '1'], /waiting 5 min 0 s/, 'SIGTERM');
    expect(code).toBe(130);
  });
});

describe('a server that reports no usage (item 6)', () => {
  it('regression: tokens are counted with the model\'s tokenizer, priced, and marked as estimated', async () => {
    const server = await serve({ usage: () => null });
    const out = join(scratch.dir, 'no-usage');
    const run = await runCli(['generate', await file(personas(5)), '--provider', 'openai', '--base-url', server.baseURL, '--model', 'gpt-4o-mini', '-c', await fastConfig(), '--out', out]);
    expectNoCrash(run);
    expect(run.code).toBe(0);
    const answered = server.requests.filter((r) => r.fault === 'ok').length;
    const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { summary: { total_calls: number; total_input_tokens: number }; estimated: { call_count: number } }; cost: { total: number; estimated: boolean } };
    expect(usage.statistics.estimated.call_count).toBe(answered);
    expect(usage.statistics.summary.total_calls).toBe(answered);
    expect(usage.statistics.summary.total_input_tokens).toBeGreaterThan(answered * 10);
    expect(usage.cost.total).toBeGreaterThan(0);
    expect(usage.cost.estimated).toBe(true);
    expect(run.stderr.match(/the server reports no token usage; counting tokens with the o200k_base tokenizer/g)).toHaveLength(1);
    expect(run.stderr).toMatch(new RegExp(`\\$0\\.\\d{4} \\(tokens of ${answered} of ${answered} calls estimated by personaflow\\)`));
  });
});

describe('no silent fallback to sim (item 7)', () => {
  it('regression: naming a hosted model without its key is an error, not a quiet sim run', async () => {
    const run = await runCli(['generate', await file(personas(1)), '--model', 'gpt-4o'], { env: { OPENAI_API_KEY: undefined } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--model: no API key for openai\/gpt-4o: set OPENAI_API_KEY \(or api_key \/ api_key_env in the config\), or add --provider sim for a dry run on simulated replies/);
    expect(run.stdout).toBe('');
  });

  it('runs on sim when asked with --provider sim, and records the provider really used', async () => {
    const out = join(scratch.dir, 'sim-explicit');
    const run = await runCli(['generate', await file(personas(1)), '--model', 'gpt-4o', '--provider', 'sim', '--out', out], { env: { OPENAI_API_KEY: undefined } });
    expect(run.code).toBe(0);
    expect(JSON.parse(await readFile(join(out, 'run.json'), 'utf8'))).toMatchObject({ providers: ['sim'] });
  });

  it('regression: a sim directory is not resumed with real calls (a key set since), unless --force', async () => {
    const server = await serve();
    const out = join(scratch.dir, 'no-mix');
    const input = await file(personas(4));
    // Nothing names a model and no key is set: the default falls back to sim, with a notice.
    const first = await runCli(['generate', input, '--out', out, '--seed', '3'], { env: { OPENAI_API_KEY: undefined } });
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/using the built-in sim provider/);
    expect(JSON.parse(await readFile(join(out, 'run.json'), 'utf8'))).toMatchObject({ providers: ['sim'], settings: { provider: null } });
    // The same command, now with a key and the SDK's OPENAI_BASE_URL: it would call a real endpoint.
    const env = { OPENAI_API_KEY: TEST_KEY, OPENAI_BASE_URL: server.baseURL };
    const mixed = await runCli(['generate', input, '--out', out, '--seed', '3', '--resume'], { env });
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/it was written by sim models, and this run would call openai models .*one directory never mixes providers/);
    expect(server.count).toBe(0);
    const forced = await runCli(['generate', input, '--out', out, '--seed', '3', '--resume', '--force'], { env });
    expect(forced.code).toBe(0);
    expect(JSON.parse(await readFile(join(out, 'run.json'), 'utf8'))).toMatchObject({ providers: ['openai', 'sim'] });
  });
});
