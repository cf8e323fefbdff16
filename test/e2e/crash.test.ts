// End to end: kill -9 at random moments under faults, several resumes; then usage.json is what the server billed, failures.ndjson what still failed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, TEST_KEY, childEnv, ensureBuilt, runCli } from '../helpers/cli.js';
import { randomFaults, startOpenAIServer, type FakeOpenAIServer } from '../helpers/openai-server.js';
import { interactionId } from '../../src/types.js';

let dir: string;
let input: string;
let config: string;
const PERSONAS = 20;
const DOOMED = { persona: 'doomed', query: 'q1' };
/** Every task of the input, by interaction id. */
const TASKS = new Set<string>([...Array.from({ length: PERSONAS }, (_, p) => [interactionId(`p${p}`, 'q1'), interactionId(`p${p}`, 'q2')]).flat(), interactionId(DOOMED.persona, DOOMED.query)]);

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-crash-'));
  input = join(dir, 'personas.ndjson');
  const lines = Array.from({ length: PERSONAS }, (_, p) => JSON.stringify({ persona_id: `p${p}`, persona_features: { role: 'tester' }, queries: [{ query_id: 'q1', original_query: `Plan step ${p}` }, { query_id: 'q2', original_query: `Review item ${p}` }] }));
  lines.push(JSON.stringify({ persona_id: DOOMED.persona, persona_features: { role: 'tester' }, queries: [{ query_id: DOOMED.query, original_query: 'DOOMED question' }] }));
  await writeFile(input, `${lines.join('\n')}\n`);
  config = join(dir, 'config.yaml');
  await writeFile(config, 'api:\n  timeout: 5\ninteraction_generation:\n  min_turns: 1\n  max_turns: 3\n  max_retries: 2\n  retry_delay: 0.01\npersonaflow:\n  prices:\n    test-model: { input: 0.15, output: 0.6 }\n');
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = async (path: string): Promise<string[]> => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');

/** What the client's usage log holds: calls and tokens, as the server counts them. */
async function logged(out: string): Promise<{ calls: number; prompt: number; completion: number }> {
  const records = (await lines(join(out, 'usage.ndjson'))).map((line) => JSON.parse(line) as { input: number; output: number });
  return { calls: records.length, prompt: records.reduce((s, r) => s + r.input, 0), completion: records.reduce((s, r) => s + r.output, 0) };
}

/**
 * Starts generate (a resume after the first) and, once the server has seen `requests` more of its
 * requests, holds every answer the server would bill, waits until the client's usage log has every
 * answer already sent, and kills it with SIGKILL: a kill at a random moment of the run, taken when no
 * billed answer is on the wire (one in transit can be billed by a provider and never reach the client:
 * that is the bound the README states). Then the held answers go nowhere, and are not billed.
 */
async function killAfter(server: FakeOpenAIServer, out: string, resume: boolean, requests: number): Promise<void> {
  const start = server.count;
  const args = resume ? ['generate', '--out', out, '--resume', '-q'] : ['generate', input, '-c', config, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'test-model', '--out', out, '-j', '4', '--seed', '5', '--supplement-rounds', '0', '-q'];
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv({ OPENAI_API_KEY: TEST_KEY }), stdio: 'ignore' });
  let running = true;
  const closed = new Promise<void>((resolve) => child.once('close', () => ((running = false), resolve())));
  while (running && server.count - start < requests) await new Promise((resolve) => setTimeout(resolve, 2));
  if (running) {
    server.hold();
    const billed = server.billed();
    for (let waited = 0; running && JSON.stringify(await logged(out)) !== JSON.stringify(billed); waited += 1) {
      if (waited > 5000) throw new Error(`the usage log never caught up with what the server billed: ${JSON.stringify(await logged(out))} vs ${JSON.stringify(billed)}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    child.kill('SIGKILL');
  }
  await closed;
  server.drop();
}

describe('kill -9 at random moments under faults, then resumes', () => {
  it('usage.json equals what the server billed, and failures.ndjson the tasks that still failed', async () => {
    let attempt = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 3, max: 120 }), { minLength: 2, maxLength: 3 }), fc.integer({ min: 1, max: 1000 }), async (kills, seed) => {
        attempt += 1;
        const out = join(dir, `run-${attempt}`);
        const random = randomFaults({ seed, rate: 0.2, mix: [{ kind: 'rate_limit', retryAfter: '0' }, 'server_error', 'malformed', 'no_choices', 'empty'] });
        const server = await startOpenAIServer({ apiKey: TEST_KEY, latencyMs: 5, faults: (request) => (JSON.stringify(request.body).includes('DOOMED') ? 'server_error' : random(request)) });
        try {
          for (const [i, requests] of kills.entries()) await killAfter(server, out, i > 0, requests);
          // `--resume` alone: everything else comes from run.json.
          const final = await runCli(['generate', '--out', out, '--resume'], { killAfterMs: 60_000 });
          expect(final.stderr).not.toMatch(/internal error/);
          expect(final.code, final.stderr).toBe(3);

          const billed = server.billed();
          const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { summary: { total_calls: number; total_input_tokens: number; total_output_tokens: number } }; cost: { total: number } };
          expect(usage.statistics.summary).toMatchObject({ total_calls: billed.calls, total_input_tokens: billed.prompt, total_output_tokens: billed.completion });
          expect(usage.cost.total).toBeCloseTo((billed.prompt * 0.15 + billed.completion * 0.6) / 1e6, 12);

          const written = (await lines(join(out, 'interactions.ndjson'))).map((line) => JSON.parse(line) as { interaction_id: string });
          const failed = (await lines(join(out, 'failures.ndjson'))).map((line) => JSON.parse(line) as { persona_id: string; query_id: string });
          const writtenIds = written.map((i) => i.interaction_id);
          const failedIds = failed.map((f) => interactionId(f.persona_id, f.query_id));
          // Each task once: written, or listed as still failed; never both, never twice.
          expect(new Set(writtenIds).size).toBe(writtenIds.length);
          expect(new Set(failedIds).size).toBe(failedIds.length);
          expect(failedIds.filter((id) => writtenIds.includes(id))).toEqual([]);
          expect(new Set([...writtenIds, ...failedIds])).toEqual(TASKS);
          expect(failedIds).toContain(interactionId(DOOMED.persona, DOOMED.query));
        } finally {
          await server.close();
          await rm(out, { recursive: true, force: true });
        }
      }),
      { numRuns: 3 },
    );
  }, 240_000);
});
