// End to end: who ends a conversation, and what the guards do, against a local server whose simulated user is scripted.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_KEY, against, ensureBuilt, runCli } from '../helpers/cli.js';
import { startOpenAIServer, type FakeOpenAIOptions } from '../helpers/openai-server.js';

const STOP = '###STOP###';
const CONVERSATIONS = 12;

let dir: string;
let personas: string;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-simulator-e2e-'));
  personas = join(dir, 'personas.ndjson');
  const lines = Array.from({ length: CONVERSATIONS }, (_, i) =>
    JSON.stringify({ persona_id: `p${i}`, persona_features: { communication_style: i % 2 === 0 ? 'casual' : 'formal', query_length_pref: 'short' }, queries: [{ query_id: 'q1', original_query: `How do I clean up dataset number ${i}?`, target_turns: 2 }] }),
  );
  await writeFile(personas, `${lines.join('\n')}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Interaction {
  num_turns: number;
  messages: { role: string; content: string; metadata: Record<string, unknown> }[];
  metadata: Record<string, unknown>;
}

const readNdjson = async <T>(path: string): Promise<T[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);

/** Runs generate --out against a server whose simulated user follows `simulator`; PersonaGym's feedback_probability in the config. */
async function generate(name: string, simulator: FakeOpenAIOptions['simulator'], turns: { min: number; max: number }) {
  const server = await startOpenAIServer({ apiKey: TEST_KEY, simulator });
  try {
    const config = join(dir, `${name}.yaml`);
    await writeFile(config, 'interaction_generation:\n  retry_delay: 0.01\n  user_model:\n    feedback_probability: 0.6\n');
    const out = join(dir, name);
    const run = await runCli(['generate', personas, '-c', config, ...against(server), '--min-turns', String(turns.min), '--max-turns', String(turns.max), '--supplement-rounds', '0', '--out', out]);
    const interactions = await readNdjson<Interaction>(join(out, 'interactions.ndjson'));
    return { run, server, interactions, out };
  } finally {
    await server.close();
  }
}

describe('who ends the conversation', () => {
  it('a user that never stops reaches max_turns every time, recorded as max_turns, never as ended by the user', async () => {
    const { run, interactions } = await generate('never', (answered) => `and what about part ${answered}?`, { min: 2, max: 4 });
    expect(run.code, run.stderr).toBe(0);
    expect(interactions).toHaveLength(CONVERSATIONS);
    for (const interaction of interactions) {
      expect(interaction.num_turns).toBe(4);
      expect(interaction.metadata).toMatchObject({ end_reason: 'max_turns', conversation_ended: false, stop_policy: 'user' });
    }
    // PersonaGym's feedback_probability loads, and the run says it does not cut conversations.
    expect(run.stderr).toMatch(/feedback_probability: not used with stop_policy: user/);
  });

  it('a user that stops alone after k ≥ min_turns answers ends at k, recorded as user_stop', async () => {
    const { run, interactions } = await generate('stops', (answered) => (answered >= 3 ? STOP : `ok and step ${answered}?`), { min: 2, max: 5 });
    expect(run.code, run.stderr).toBe(0);
    expect(interactions).toHaveLength(CONVERSATIONS);
    for (const interaction of interactions) {
      expect(interaction.num_turns).toBe(3);
      expect(interaction.metadata).toMatchObject({ end_reason: 'user_stop', conversation_ended: true });
      expect(interaction.messages.at(-1)?.role).toBe('assistant');
    }
  });

  it('the simulator is never told a turn count', async () => {
    const { server } = await generate('prompts', (answered) => (answered >= 2 ? STOP : 'and then?'), { min: 2, max: 5 });
    const prompts = server.requests.filter((r) => r.role === 'user_simulator').map((r) => JSON.stringify(r.body));
    expect(prompts.length).toBeGreaterThan(0);
    for (const prompt of prompts) expect(prompt).not.toMatch(/answers in all|answered \d+ time|\{current_turn\}|\{target_turns\}|turn \d+ of/i);
  });
});

describe('the guards end to end', () => {
  it('a stop glued to a question is rejected and regenerated, and guard-rejections.ndjson keeps its text and reason', async () => {
    const glued = `What about the encoding? ${STOP} Also, how do I handle 2 million rows?`;
    // At the second answer the user first glues a stop to a question, then, asked again, writes the question alone.
    const script = (answered: number, attempt: number): string => (answered === 2 && attempt === 0 ? glued : answered >= 3 ? STOP : `what about step ${answered}?`);
    const { run, interactions, out } = await generate('glued', script, { min: 2, max: 5 });
    expect(run.code, run.stderr).toBe(0);
    expect(interactions).toHaveLength(CONVERSATIONS);
    for (const interaction of interactions) {
      expect(interaction.messages.map((m) => m.content).join('\n')).not.toContain(STOP);
      expect(interaction.metadata.guard).toEqual({ misplaced_stop: 1 });
      expect(interaction.num_turns).toBe(3);
    }
    const rejections = await readNdjson<{ interaction_id: string; reason: string; text: string; turn: number }>(join(out, 'guard-rejections.ndjson'));
    expect(rejections).toHaveLength(CONVERSATIONS);
    for (const rejection of rejections) expect(rejection).toMatchObject({ reason: 'misplaced_stop', text: glued, turn: 2 });
    const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { rejected_replies: Record<string, number>; by_operation: Record<string, { call_count: number }> } };
    expect(usage.statistics.rejected_replies).toEqual({ misplaced_stop: CONVERSATIONS });
    expect(usage.statistics.by_operation['user_simulator.guard_retry']?.call_count).toBe(CONVERSATIONS);
    expect(run.stderr).toMatch(new RegExp(`rejected simulator replies: ${CONVERSATIONS} \\(misplaced_stop ${CONVERSATIONS}\\)`));
  });

  it('a simulator that keeps answering as the assistant fails its task with every reply it asked for counted, and nothing edited in', async () => {
    const voice = 'Sure! Here is a quick overview:\n1. **Load** the data\n2. **Clean** it\nLet me know if you have any other questions!';
    const { run, out } = await generate('voice', (answered) => (answered >= 1 ? voice : 'x'), { min: 2, max: 4 });
    expect(run.code).toBe(3);
    const failures = await readNdjson<{ attempts: number; error: { kind: string } }>(join(out, 'failures.ndjson'));
    expect(failures).toHaveLength(CONVERSATIONS);
    for (const failure of failures) expect(failure).toMatchObject({ attempts: 4, error: { kind: 'guard' } });
    const rejections = await readNdjson<{ reason: string }>(join(out, 'guard-rejections.ndjson'));
    expect(rejections).toHaveLength(CONVERSATIONS * 4);
    expect(new Set(rejections.map((r) => r.reason))).toEqual(new Set(['assistant_voice']));
  });
});
