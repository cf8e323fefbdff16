// End to end: --queries for personas without queries, style transfer, and supplement rounds, against a local server.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_KEY, against, runCli, ensureBuilt } from '../helpers/cli.js';
import { startOpenAIServer, type RecordedRequest } from '../helpers/openai-server.js';

let dir: string;
beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-queries-e2e-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = <T>(text: string): T[] =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);

interface Interaction {
  interaction_id: string;
  persona_id: string;
  original_query: string;
  initial_query: string;
  persona_features: Record<string, unknown>;
  messages: { role: string; content: string }[];
  metadata: { query_id: string; supplement_round?: number; style_transfer?: { applied: boolean; inferred_domain: string; inferred_scenario: string } };
}

/** The assistant refuses (400, not retried) every conversation whose first user message mentions FAIL. */
const failingOnFail = (request: RecordedRequest) => {
  if (request.role !== 'assistant') return 'ok' as const;
  const messages = (request.body as { messages: { role: string; content: string }[] }).messages;
  const first = messages.find((m) => m.role === 'user')?.content ?? '';
  return first.includes('FAIL') ? ({ kind: 'server_error', status: 400 } as const) : ('ok' as const);
};

describe('queries from a dataset, style transfer, supplement', () => {
  it('assigns dataset queries, restyles them, and tops up failed personas until every target is met', async () => {
    const queries = join(dir, 'query.jsonl');
    await writeFile(
      queries,
      [
        '{"prompt": "Write a haiku about autumn leaves.", "dataset": "demo", "source_id": "1"}',
        '{"instruction": "Explain the difference between TCP and UDP.", "id": "2"}',
        '{"question": "FAIL: plan a surprise party"}',
        '{"conversations": [{"from": "human", "value": "How do I center a div in CSS?"}]}',
        'not json',
      ].join('\n'),
    );
    const config = join(dir, 'config.yaml');
    await writeFile(config, 'interaction_generation:\n  max_retries: 0\n  retry_delay: 0\n  max_supplement_rounds: 2\nquery_generation:\n  style_transfer: { enabled: true, transfer_probability: 1 }\n  selection: { queries_per_persona: 5 }\n');
    const personas = ['ana', 'ben', 'cy'].map((id) => JSON.stringify({ persona_id: id, persona_features: { role: 'student', communication_style: 'casual' } })).join('\n');
    const out = join(dir, 'run');
    const server = await startOpenAIServer({ apiKey: TEST_KEY, faults: failingOnFail });
    try {
      const run = await runCli(['generate', '-', '-c', config, '--queries', queries, '--out', out, ...against(server), '--min-turns', '2', '--max-turns', '2', '--seed', '4'], { input: personas });
      // Some tasks failed (exit 3), but every persona met its target through supplement round 1.
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toMatch(new RegExp(`${queries.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5: invalid JSON`));
      expect(run.stderr).toMatch(/4 usable queries, fewer than queries_per_persona \(5\): each persona without queries gets 4/);
      expect(run.stderr).toMatch(/targets met: 0\/3 personas after the main pass, 3\/3 personas after round 1 \(3 supplement tasks\)/);

      const interactions = lines<Interaction>(await readFile(join(out, 'interactions.ndjson'), 'utf8'));
      const failures = lines<{ persona_id: string; query_id: string; error: { kind: string } }>(await readFile(join(out, 'failures.ndjson'), 'utf8'));
      // 4 usable queries, one of them failing: 3 interactions each in the main pass, 1 failure each, 1 supplement each.
      expect(failures.map((f) => [f.persona_id, f.error.kind]).sort()).toEqual([['ana', 'bad_request'], ['ben', 'bad_request'], ['cy', 'bad_request']]);
      for (const persona of ['ana', 'ben', 'cy']) {
        const mine = interactions.filter((i) => i.persona_id === persona);
        expect(mine).toHaveLength(4);
        expect(mine.filter((i) => i.metadata.supplement_round === 1).map((i) => i.metadata.query_id)).toEqual(['supplement_r1_0']);
        const fromDataset = mine.filter((i) => i.metadata.supplement_round === undefined);
        const ids = fromDataset.map((i) => i.metadata.query_id).sort();
        expect(ids).toHaveLength(3);
        expect(ids.slice(0, 2)).toEqual(['demo:1', expect.stringMatching(/^hash:[0-9a-f]{16}$/)]);
        expect(ids[2]).toBe('query.jsonl:2');
        for (const interaction of fromDataset) {
          // Style transfer: the adapted query opens the conversation, the dataset query is kept.
          expect(interaction.initial_query).toBe(`styled: ${interaction.original_query}`);
          expect(interaction.messages[0]?.content).toBe(interaction.initial_query);
          expect(interaction.metadata.style_transfer).toMatchObject({ applied: true, inferred_domain: 'coding', inferred_scenario: 'others' });
          expect(interaction.persona_features).toMatchObject({ domain: 'coding', scenario: 'others' });
        }
      }
      // The generator was asked once per persona, for one query, avoiding the one that failed.
      const generations = server.requests.filter((r) => r.role === 'query_generation');
      expect(generations).toHaveLength(3);
      for (const request of generations) {
        const prompt = (request.body as { messages: { content: string }[] }).messages[0]?.content ?? '';
        expect(prompt).toMatch(/Write 1 new request/);
        expect(prompt).toMatch(/- FAIL: plan a surprise party/);
      }
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { by_module: Record<string, { call_count: number }> } };
      expect(usage.statistics.by_module.query_generation?.call_count).toBe(3);
      expect(usage.statistics.by_module.style_transfer?.call_count).toBe(12);
    } finally {
      await server.close();
    }
  });

  it('stops topping up when the rounds run out, and says who is still short', async () => {
    const config = join(dir, 'no-luck.yaml');
    await writeFile(config, 'interaction_generation:\n  max_retries: 0\n  retry_delay: 0\n');
    // Every conversation fails, generated ones too: the persona stays short after each round.
    const server = await startOpenAIServer({ apiKey: TEST_KEY, faults: (request) => (request.role === 'assistant' ? { kind: 'server_error', status: 400 } : 'ok') });
    try {
      const input = JSON.stringify({ persona_id: 'p1', persona_features: { role: 'chef' }, queries: [{ query_id: 'q1', original_query: 'a' }, { query_id: 'q2', original_query: 'b' }] });
      const run = await runCli(['generate', '-', '-c', config, ...against(server), '--supplement-rounds', '2'], { input });
      expect(run.code).toBe(3);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/targets met: 0\/1 personas after the main pass, 0\/1 personas after round 1 \(2 supplement tasks\), 0\/1 personas after round 2 \(2 supplement tasks\); 1 still short by 2 interaction\(s\) after 2 supplement round\(s\)/);
      expect(server.requests.filter((r) => r.role === 'query_generation')).toHaveLength(2);
      // Round 2 avoids the queries of the main pass and of round 1.
      const last = (server.requests.filter((r) => r.role === 'query_generation')[1]?.body as { messages: { content: string }[] }).messages[0]?.content ?? '';
      expect(last.match(/^- (a|b|generated request .*)$/gm)).toHaveLength(4);
    } finally {
      await server.close();
    }
  });

  it('--supplement-rounds 0 never calls the query generator', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY, faults: (request) => (request.role === 'assistant' ? { kind: 'server_error', status: 400 } : 'ok') });
    try {
      const input = JSON.stringify({ persona_id: 'p1', queries: [{ query_id: 'q1', original_query: 'a' }] });
      const run = await runCli(['generate', '-', ...against(server), '--supplement-rounds', '0', '--max-turns', '2'], { input });
      expect(run.code).toBe(3);
      expect(server.requests.some((r) => r.role === 'query_generation')).toBe(false);
      expect(run.stderr).not.toMatch(/targets met/);
    } finally {
      await server.close();
    }
  });
});
