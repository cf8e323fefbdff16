// personaflow() against `personaflow generate`: the same config and personas give the same interactions, rejections and failures.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { personaflow, type Generated } from '../../src/library.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { failuresOf, interactionsOf, linesOf } from '../helpers/output.js';

let dir: string;
beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-library-e2e-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What generate honours from a config: a weighted pool, rule noise, the judge, supplement rounds, and (sim's) failing calls. */
const CONFIG = `interaction_generation:
  min_turns: 1
  max_turns: 4
  max_retries: 0
  retry_delay: 0
  max_supplement_rounds: 2
  assistant_model:
    model_pool:
      - { model: model-a, weight: 3 }
      - { model: model-b, weight: 1 }
distractor:
  enabled: true
  activation_probability: 0.6
  noise_strategies:
    - { name: typo, probability: 0.6, intensity: 0.1 }
judge:
  enabled: true
personaflow:
  sim:
    faults: { server: 0.06 }
`;

const withoutTimes = (value: unknown): string => {
  const copy = JSON.parse(JSON.stringify(value)) as { metadata?: Record<string, unknown>; messages?: Record<string, unknown>[]; time?: string };
  delete copy.metadata?.created_at;
  for (const message of copy.messages ?? []) delete message.timestamp;
  delete copy.time;
  return JSON.stringify(copy);
};

describe('personaflow() sets a run up as generate does', () => {
  it('gives the interactions, judge rejections and failures that generate writes for the same config, personas and seed', async () => {
    const config = join(dir, 'config.yaml');
    await writeFile(config, CONFIG);
    const personas = join(dir, 'personas.ndjson');
    const styles = ['casual, short messages', 'formal and detailed'];
    await writeFile(
      personas,
      Array.from({ length: 10 }, (_, i) =>
        JSON.stringify({ persona_id: `p${i}`, persona_features: { role: i % 2 === 0 ? 'student' : 'accountant', communication_style: styles[i % 2] }, queries: [{ query_id: 'a', original_query: `How do I start learning topic ${i}?` }, { query_id: 'b', original_query: `Compare two tools for job ${i}` }] }),
      ).join('\n'),
    );
    const out = join(dir, 'run');
    // One conversation at a time: the judge's near-duplicate check goes by the order conversations finish.
    const cli = await runCli(['generate', personas, '-c', config, '--provider', 'sim', '--seed', '11', '-j', '1', '--out', out, '--quiet'], { env: { OPENAI_API_KEY: undefined } });
    expect([0, 3], cli.stderr).toContain(cli.code);

    const results: Generated[] = [];
    for await (const result of personaflow({ config, personas, provider: 'sim', seed: 11, concurrency: 1 })) results.push(result);

    const interactions = [...(await interactionsOf(out)).values()].sort();
    const rejected = (await linesOf(join(out, 'rejected.ndjson'))).map((line) => withoutTimes(JSON.parse(line))).sort();
    const failures = [...(await failuresOf(out)).values()].sort();
    const of = (kind: Generated['kind']) =>
      results
        .filter((result) => result.kind === kind)
        .map((result) => withoutTimes(result.kind === 'failure' ? result.failure : result.interaction))
        .sort();
    expect(of('interaction')).toEqual(interactions);
    expect(of('rejected')).toEqual(rejected);
    expect(of('failure')).toEqual(failures);

    // The comparison means something only if the run used what the config asks for.
    const parsed = [...interactions, ...rejected].map((line) => JSON.parse(line) as { metadata: { assistant_model: { model: string }; distractor_applied: boolean; quality?: { verdict: string }; supplement_round?: number } });
    expect(new Set(parsed.map((interaction) => interaction.metadata.assistant_model.model))).toEqual(new Set(['model-a', 'model-b']));
    expect(parsed.some((interaction) => interaction.metadata.distractor_applied)).toBe(true);
    expect(parsed.every((interaction) => interaction.metadata.quality !== undefined)).toBe(true);
    expect(rejected.length).toBeGreaterThan(0);
    expect(failures.length).toBeGreaterThan(0);
    expect(parsed.some((interaction) => interaction.metadata.supplement_round !== undefined)).toBe(true);
  }, 120_000);
});
