// End to end (issue 23): a run whose first conversations all fail alike stops with one line; --verbose shows the calls and never a key; --progress json tells the truth.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FakeOpenAIServer } from '../helpers/openai-server.js';
import { personasOf, scratchArea } from '../helpers/scratch.js';
import { TEST_KEY, against, runCli, type Run } from '../helpers/cli.js';

const scratch = scratchArea('stopping');
const { serve, file } = scratch;
const personas = personasOf;

const MAX_RETRIES = 2;
/** Short turns, `MAX_RETRIES` retries 10 ms apart. */
const config = (extra = ''): Promise<string> => file(`api:\n  timeout: 5\ninteraction_generation:\n  min_turns: 1\n  max_turns: 2\n  max_retries: ${MAX_RETRIES}\n  retry_delay: 0.01\n${extra}`, 'config.yaml');

const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');
const chat = (server: FakeOpenAIServer): number => server.requests.filter((request) => request.url.endsWith('/chat/completions')).length;

function expectNoCrash(run: Run): void {
  expect(run.signal).toBeNull();
  expect(run.stderr).not.toMatch(/internal error/i);
}


describe('a run whose first conversations all fail alike (issue 23)', () => {
  // -j 4: the rule waits for max(8, min(4, 32)) = 8 conversations.
  const N = 8;
  const J = 4;

  it('401 to every call: the run stops at the first answer with one line naming the URL and the key to check, having sent at most N × (retries + 1) requests', async () => {
    const server = await serve({ faults: () => 'unauthorized' });
    const run = await runCli(['generate', await file(personas(300)), ...against(server), '-c', await config(), '-j', String(J), '--out', join(scratch.dir, 'unauthorized')]);
    expectNoCrash(run);
    expect(run.code).toBe(1);
    expect(chat(server)).toBeGreaterThan(0);
    expect(chat(server)).toBeLessThanOrEqual(N * (MAX_RETRIES + 1));
    const errors = lines(run.stderr).filter((line) => line.startsWith('personaflow: error: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^personaflow: error: openai/test-model: authentication failed \\(401\\) at ${server.baseURL.replace(/[.]/g, '\\.')}/chat/completions: .*; check OPENAI_API_KEY$`));
    expect(lines(run.stderr).at(-1)).toBe('personaflow: result: stopped (exit 1): see the error above');
    expect(run.stderr).not.toContain(TEST_KEY);
  });

  it('400 to every call (not retried, not fatal by itself): stops after N, says why and what to do, and a resume retries the failures', async () => {
    let refusing = true;
    const server = await serve({ faults: () => (refusing ? { kind: 'status', status: 400, message: "Unsupported value: 'temperature' does not support 0.7 with this model." } : 'ok') });
    const out = join(scratch.dir, 'bad-request');
    const total = 60;
    const run = await runCli(['generate', await file(personas(total)), ...against(server), '-c', await config(), '-j', String(J), '--supplement-rounds', '0', '--out', out]);
    expectNoCrash(run);
    expect(run.code).toBe(1);
    const errors = lines(run.stderr).filter((line) => line.startsWith('personaflow: error: '));
    expect(errors).toEqual([
      `personaflow: error: every one of the first ${N} conversations failed the same way (bad_request): openai/test-model: request rejected (400): Unsupported value: 'temperature' does not support 0.7 with this model.; stopped before spending on the rest. The server rejects the requests: check the model's settings in the config (temperature, max_completion_tokens, headers) and the model name`,
    ]);
    expect(run.stderr).toMatch(/^personaflow: what finished is in .*; once the cause is fixed: personaflow generate --out .* --resume$/m);
    // Not the rest: the N that failed, and at most the pipeline's window (2 × j) begun before the stop.
    expect(chat(server)).toBeLessThanOrEqual((N + 2 * J) * (MAX_RETRIES + 1));
    const failures = lines(await readFile(join(out, 'failures.ndjson'), 'utf8'));
    expect(failures.length).toBeGreaterThanOrEqual(N);
    expect(failures.length).toBeLessThan(total);
    // Once the cause is fixed, a resume retries every failure and does the rest.
    refusing = false;
    const resumed = await runCli(['generate', '--out', out, '--resume']);
    expectNoCrash(resumed);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(lines(await readFile(join(out, 'interactions.ndjson'), 'utf8'))).toHaveLength(total);
    expect(resumed.stderr).toMatch(new RegExp(`resumed: 0 interactions were already in .*; 0 tasks skipped, ${failures.length} failed tasks retried`));
  });

  it('500 to every call (retried, then failed): stops after N with at most (N + 2j) × (retries + 1) requests', async () => {
    const server = await serve({ faults: () => ({ kind: 'server_error' }) });
    // The circuit breaker would also stop this run, once 5 s had passed without a success; it is out of the way so
    // that which stop speaks never hangs on the machine's speed (the breaker's own stop: test/e2e/limits.test.ts).
    const run = await runCli(['generate', await file(personas(200)), ...against(server), '-c', await config('personaflow:\n  breaker: { threshold: 100000 }\n'), '-j', String(J), '--supplement-rounds', '0']);
    expectNoCrash(run);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^personaflow: error: every one of the first ${N} conversations failed the same way \\(server\\): .*; stopped before spending on the rest\\. The server fails every call`, 'm'));
    expect(chat(server)).toBeLessThanOrEqual((N + 2 * J) * (MAX_RETRIES + 1));
  });

  it('does not stop when one of the first N succeeds, or they fail for different reasons', async () => {
    // Case 3 is answered; every other assistant call is refused.
    const server = await serve({ faults: (request) => (request.role !== 'assistant' || JSON.stringify(request.body).includes('case 3') ? 'ok' : { kind: 'status', status: 400, message: 'no' }) });
    const run = await runCli(['generate', await file(personas(20)), ...against(server), '-c', await config(), '-j', '1', '--supplement-rounds', '0']);
    expectNoCrash(run);
    expect(run.code).toBe(3);
    expect(run.stderr).not.toMatch(/every one of the first/);
    expect(lines(run.stdout)).toHaveLength(1);
  });
});

describe('--verbose (issue 23)', () => {
  it('shows each call (role, model, attempt, latency, tokens or status) and each retry with its delay, and never the key a server echoes', async () => {
    // The first call fails with a 500 whose body quotes the key, as a careless proxy would.
    const server = await serve({ faults: (request) => (request.index === 0 ? { kind: 'status', status: 500, message: `upstream refused key ${TEST_KEY}` } : 'ok') });
    const run = await runCli(['generate', await file(personas(2)), ...against(server), '-c', await config(), '-j', '1', '--verbose']);
    expectNoCrash(run);
    expect(run.code, run.stderr).toBe(0);
    const verbose = lines(run.stderr).filter((line) => line.startsWith('personaflow: verbose: '));
    expect(verbose[0]).toMatch(/^personaflow: verbose: call assistant openai\/test-model \(reply, attempt 1\): (waited [\d.]+ m?s for the limiter; )?failed in [\d.]+ m?s: 500 server: openai\/test-model: server error \(500\): upstream refused key \*\*\*$/);
    expect(verbose[1]).toMatch(/^personaflow: verbose: retry 1 of 2 of an assistant call to openai\/test-model in [\d.]+ m?s, after 500 server: /);
    // (Meanwhile the other conversation may take the slot the retry lends.)
    expect(verbose.filter((line) => /^personaflow: verbose: call assistant openai\/test-model \(reply, attempt 2\): (waited [\d.]+ m?s for the limiter; )?ok in [\d.]+ m?s, \d+\+\d+ tokens$/.test(line))).toHaveLength(1);
    expect(verbose.some((line) => /call user openai\/test-model \(follow_up, attempt 1\): .*ok in/.test(line))).toBe(true);
    // One line per call the server saw, and one per retry.
    expect(verbose.filter((line) => line.includes(': verbose: call '))).toHaveLength(chat(server));
    expect(verbose.filter((line) => line.includes(': verbose: retry '))).toHaveLength(1);
    expect(run.stderr).not.toContain(TEST_KEY);
    expect(run.stdout).not.toContain(TEST_KEY);
  });

  it('judge --verbose shows the judge\'s calls too', async () => {
    const conversations = await runCli(['generate', await file(personas(2)), '--provider', 'sim', '--min-turns', '1', '--max-turns', '1'], { env: { OPENAI_API_KEY: undefined } });
    expect(conversations.code, conversations.stderr).toBe(0);
    const server = await serve();
    const run = await runCli(['judge', await file(conversations.stdout), '--provider', 'openai', '--base-url', server.baseURL, '--model', 'test-model', '-c', await config(), '--verbose']);
    expectNoCrash(run);
    const calls = lines(run.stderr).filter((line) => /^personaflow: verbose: call judge openai\/test-model \(review, attempt 1\): ok in [\d.]+ m?s, \d+\+\d+ tokens$/.test(line));
    expect(calls).toHaveLength(chat(server));
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(run.stderr).not.toContain(TEST_KEY);
  });

  it('is off by default', async () => {
    const server = await serve();
    const run = await runCli(['generate', await file(personas(2)), ...against(server), '-c', await config(), '-j', '1']);
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain('verbose:');
  });
});

describe('--progress json (issue 23)', () => {
  it('has the exact total of the input (bad lines, duplicates and other shards left out), the projected cost, and the top failure', async () => {
    const server = await serve({ faults: (request) => (JSON.stringify(request.body).includes('case 3') ? { kind: 'status', status: 400, message: 'case 3 is refused' } : 'ok') });
    const input = await file(`${personas(12)}not json\n${JSON.stringify({ persona_id: 'p1', queries: [{ query_id: 'q1', original_query: 'again' }] })}\n`);
    const priced = await config('personaflow:\n  prices:\n    test-model: { input: 1, output: 2 }\n');
    const run = await runCli(['generate', input, ...against(server), '-c', priced, '-j', '2', '--supplement-rounds', '0', '--progress', 'json']);
    expectNoCrash(run);
    expect(run.code).toBe(3);
    const progress = lines(run.stderr)
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { progress: Record<string, unknown>; final?: boolean });
    const last = progress.at(-1);
    expect(last?.final).toBe(true);
    expect(last?.progress).toMatchObject({ interactions: 11, failures: 1, total: 12, total_exact: true, counting: false, top_failure: { reason: 'openai/test-model: request rejected (400): case 3 is refused', count: 1 } });
    expect(Object.keys(last?.progress ?? {})).toEqual(expect.arrayContaining(['projected_cost_usd', 'top_failure', 'counting', 'eta_s']));
  });
});
