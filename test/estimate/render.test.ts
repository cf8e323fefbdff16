// Renderings of an estimate's sample through the real pipeline with stand-in models: ordered ends, monotone in turns, a pool mixed by its weights.
import { fc, test } from '@fast-check/vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reporter } from '../../src/commands/reporter.js';
import { settingsOf, setUpConversations, type SettingFlags } from '../../src/commands/setup.js';
import { loadConfig } from '../../src/config/load.js';
import type { Tallies, Tally } from '../../src/estimate/figures.js';
import { renderEnds, type RenderSetup } from '../../src/estimate/render.js';
import { StandIns } from '../../src/estimate/standIns.js';
import type { Task } from '../../src/types.js';
import { task } from '../helpers/fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-render-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let configs = 0;
/** The setup generate would make of this config and these flags, every model a stand-in. */
async function setUp(yaml: string, flags: SettingFlags = {}): Promise<{ setup: RenderSetup; standIns: StandIns; exact: boolean }> {
  const path = join(dir, `config-${(configs += 1)}.yaml`);
  await writeFile(path, yaml);
  const loaded = await loadConfig(path);
  const settings = settingsOf(loaded.config, flags);
  const standIns = new StandIns({ replyTokens: 120, judgeRetries: loaded.config.judge.validation_retries });
  const made = await setUpConversations(loaded, settings, { concurrency: 1, quiet: true, onUsage: undefined, standIn: (spec) => standIns.model(spec) }, new Reporter(true));
  await standIns.ready();
  return { setup: { conversations: made.options, judge: made.judge, generator: made.queries.generator, rounds: settings.supplement_rounds }, standIns, exact: made.models.providers.every((p) => p === 'sim') };
}

const tasks = (n: number, targetTurns = 3): Task[] => Array.from({ length: n }, (_, i) => task({ personaId: `p${i % 3}`, queryId: `q${i}`, originalQuery: `How do I plan task number ${i} for my team?`, initialQuery: `how do i plan task ${i}`, targetTurns }));
const tokens = (tallies: Tallies): number => [...tallies.values()].reduce((sum, t) => sum + t.input + t.output, 0);
const calls = (tallies: Tallies): number => [...tallies.values()].reduce((sum, t) => sum + t.calls, 0);
const of = (tallies: Tallies, model: string): Tally => tallies.get(model) ?? { calls: 0, input: 0, output: 0 };

const FULL = `
api: { model: gpt-4o-mini }
interaction_generation: { min_turns: 2, max_turns: 4, max_supplement_rounds: 2, user_model: { model: gpt-4.1-nano } }
distractor: { enabled: true, use_semantic: true, llm: { model: gpt-4.1-mini } }
judge: { enabled: true, llm: { model: gpt-4.1-mini } }
query_generation: { style_transfer: { enabled: true, transfer_probability: 0.5 } }
`;

describe('renderEnds', () => {
  it('the high end holds more of every model than the low end, with the judge re-asked and supplement rounds topping up its rejections', async () => {
    const { setup, standIns, exact } = await setUp(FULL);
    expect(exact).toBe(false);
    const ends = await renderEnds(tasks(12), 12, setup, standIns, exact);
    expect([...ends.low.tallies.keys()].sort()).toEqual(['openai/gpt-4.1-mini', 'openai/gpt-4.1-nano', 'openai/gpt-4o-mini']);
    for (const [model, low] of ends.low.tallies) {
      const high = of(ends.high.tallies, model);
      expect(high.calls, model).toBeGreaterThan(low.calls);
      expect(high.input, model).toBeGreaterThan(low.input);
      expect(high.output, model).toBeGreaterThan(low.output);
    }
    expect(ends.low.turns).toBe(2);
    expect(ends.high.turns).toBe(4);
    expect(ends.low.topUps).toBe(0);
    expect(ends.high.rejected).toBeGreaterThan(0);
    expect(ends.high.topUps).toBeGreaterThan(0);
  });

  test.prop([fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 3 })], { numRuns: 8 })('more turns never cost less: each end grows with its turn limit', async (minTurns, more) => {
    const config = 'api: { model: gpt-4o-mini }\ndistractor: { enabled: true, use_semantic: true }\njudge: { enabled: true }\n';
    const { setup, standIns } = await setUp(config, { minTurns, maxTurns: minTurns + more });
    const longer = await setUp(config, { minTurns: minTurns + 1, maxTurns: minTurns + more + 1 });
    const [a, b] = [await renderEnds(tasks(3, minTurns), 3, setup, standIns, false), await renderEnds(tasks(3, minTurns + 1), 3, longer.setup, longer.standIns, false)];
    expect(tokens(b.low.tallies)).toBeGreaterThan(tokens(a.low.tallies));
    expect(tokens(b.high.tallies)).toBeGreaterThan(tokens(a.high.tallies));
    expect(calls(b.high.tallies)).toBeGreaterThan(calls(a.high.tallies));
    expect(tokens(a.low.tallies)).toBeLessThanOrEqual(tokens(a.high.tallies));
  });

  it('gives each assistant model of a pool its weight\'s share of the conversations, whatever a small sample would draw', async () => {
    const pool = `
api: { model: gpt-4o-mini }
interaction_generation:
  user_model: { model: gpt-4.1-nano }
  assistant_model:
    model_pool:
      - { provider: openai, model: gpt-4o, weight: 3 }
      - { provider: openai, model: gpt-4.1, weight: 1 }
`;
    const { setup, standIns } = await setUp(pool);
    const ends = await renderEnds(tasks(2), 2, setup, standIns, false);
    for (const end of [ends.low, ends.high]) {
      // The two entries are set up alike, so their conversations are alike: calls split 3 to 1.
      expect(of(end.tallies, 'openai/gpt-4o').calls).toBeCloseTo(3 * of(end.tallies, 'openai/gpt-4.1').calls, 9);
    }
  });

  it('carries a sample over to the whole input', async () => {
    const { setup, standIns } = await setUp('api: { model: gpt-4o-mini }\n');
    const sample = tasks(2);
    const [alone, carried] = [await renderEnds(sample, 2, setup, standIns, false), await renderEnds(sample, 10, setup, standIns, false)];
    for (const [model, t] of alone.high.tallies) expect(of(carried.high.tallies, model)).toEqual({ calls: 5 * t.calls, input: 5 * t.input, output: 5 * t.output });
  });

  it('with every model on sim: one rendering, as the run would go, is both ends', async () => {
    const { setup, standIns, exact } = await setUp(FULL, { provider: 'sim' });
    expect(exact).toBe(true);
    const ends = await renderEnds(tasks(4), 4, setup, standIns, exact);
    expect(ends.low).toBe(ends.high);
    expect([...ends.low.tallies.keys()].every((model) => model.startsWith('sim/'))).toBe(true);
    // A sample of a larger input: still one end, carried over.
    const sampled = await renderEnds(tasks(4), 12, setup, standIns, exact);
    expect(sampled.low).toBe(sampled.high);
    expect(calls(sampled.low.tallies)).toBeCloseTo(3 * calls(ends.low.tallies), 9);
  });

  it('renders nothing for an empty input', async () => {
    const { setup, standIns } = await setUp('api: { model: gpt-4o-mini }\n');
    const ends = await renderEnds([], 0, setup, standIns, false);
    expect(ends.low.tallies.size + ends.high.tallies.size).toBe(0);
  });
});
