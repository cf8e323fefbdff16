// Dataset: pages through the index, filters over the scan, one conversation with its rejected replies, the dashboard's counts.
import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../../src/view/api.js';
import { Dataset } from '../../src/view/dataset.js';
import { interaction, writeDir } from './fixtures.js';

const ROLES = ['nurse', 'engineer', 'teacher'];
const many = (n: number): Record<string, unknown>[] =>
  Array.from({ length: n }, (_, i) =>
    interaction({
      persona: `persona_${i}`,
      features: { role: ROLES[i % 3] },
      model: i % 2 === 0 ? 'm1' : 'm2',
      endReason: i % 5 === 0 ? 'max_turns' : i % 5 === 1 ? undefined : 'user_stop',
      turns: [{ user: i % 4 === 0 ? 'nosy' : 'noisy text', clean: i % 4 === 0 ? 'noisy' : undefined, assistant: `answer ${i}` }],
      quality: i % 3 === 0 ? { verdict: i % 2 === 0 ? 'pass' : 'fail', scores: { helpfulness: i % 6 } } : undefined,
      round: i >= 100 ? 1 : undefined,
    }),
  );

const opened: Dataset[] = [];
const dirs: string[] = [];
async function openDir(spec: Parameters<typeof writeDir>[0]): Promise<{ dataset: Dataset; offsets: number[] }> {
  const { dir, offsets } = await writeDir(spec);
  dirs.push(dir);
  const dataset = await Dataset.open(dir, { prices: {} });
  opened.push(dataset);
  return { dataset, offsets };
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('Dataset', () => {
  it('serves the pages of the unfiltered list through the index, in order', async () => {
    const items = many(120);
    const { dataset, offsets } = await openDir({ interactions: items });
    void dataset.start();
    const first = await dataset.page({}, 0);
    expect(first.rows).toHaveLength(PAGE_SIZE);
    expect(first.rows[0]).toMatchObject({ n: 1, at: 0, id: 'interaction_persona_0_q1', first: 'nosy' });
    const last = await dataset.page({}, 2);
    expect(last.rows.map((r) => r.n)).toEqual(Array.from({ length: 20 }, (_, i) => 101 + i));
    expect(last.rows.map((r) => r.at)).toEqual(offsets.slice(100));
    expect(last).toMatchObject({ matches: 120, complete: true });
    expect((await dataset.page({}, 3)).rows).toEqual([]);
  });

  it('filters over the scanned facets and counts the matches', async () => {
    const items = many(120);
    const { dataset } = await openDir({ interactions: items });
    await dataset.start();
    const nurses = await dataset.page({ features: { role: 'nurse' }, model: 'sim/m1' }, 0);
    const expected = items.map((_, i) => i).filter((i) => i % 3 === 0 && i % 2 === 0);
    expect(nurses.matches).toBe(expected.length);
    expect(nurses.rows.map((r) => r.n)).toEqual(expected.map((i) => i + 1));
    expect((await dataset.page({ noised: 'yes' }, 0)).matches).toBe(30);
    expect((await dataset.page({ endReason: '(not recorded)' }, 0)).matches).toBe(24);
    expect((await dataset.page({ round: '1' }, 0)).matches).toBe(20);
    expect((await dataset.page({ verdict: 'fail' }, 0)).matches).toBe(items.filter((_, i) => i % 3 === 0 && i % 2 === 1).length);
    const threes = await dataset.page({ score: 'helpfulness', scoreMin: 2.5, scoreMax: 3 }, 0);
    expect(threes.rows.map((r) => r.n - 1)).toEqual(items.map((_, i) => i).filter((i) => i % 6 === 3));
    expect(threes.rows.length).toBeGreaterThan(0);
    expect((await dataset.page({ model: 'never-seen' }, 0))).toMatchObject({ matches: 0, rows: [] });
  });

  it('without an index, lists in the scan order; a torn last line is counted and skipped', async () => {
    const { dataset } = await openDir({ interactions: many(60), index: false, tail: '{"interaction_id":"torn' });
    const scan = dataset.start();
    const first = await dataset.page({}, 0);
    expect(first.rows.map((r) => r.n)).toEqual(Array.from({ length: PAGE_SIZE }, (_, i) => i + 1));
    await scan;
    expect(dataset.summary()).toMatchObject({ interactions: 60, interactionsFinal: true, badLines: 1, scanDone: true });
  });

  it('shows one conversation by its offset, with its rejected replies, and nothing at an offset inside a line', async () => {
    const items = many(5);
    const rejections = [
      { interaction_id: 'interaction_persona_2_q1', reason: 'echo', text: 'answer 2', turn: 1 },
      { persona_id: 'persona_2', query_id: 'q1', reason: 'assistant_voice', text: 'Sure! Here is a list:' },
      { persona_id: 'persona_3', query_id: 'q1', reason: 'echo', text: 'not this one' },
    ];
    const { dataset, offsets } = await openDir({ interactions: items, rejections, failures: [{ persona_id: 'x', query_id: 'y', error: { kind: 'rate_limit', message: 'm' } }, { error: { kind: 'guard' } }, { nope: 1 }] });
    await dataset.start();
    const view = await dataset.conversation(offsets[2]!);
    expect(view).toMatchObject({ id: 'interaction_persona_2_q1', n: 3 });
    expect(view?.rejections.map((r) => [r.reason, r.text])).toEqual([
      ['echo', 'answer 2'],
      ['assistant_voice', 'Sure! Here is a list:'],
    ]);
    expect(await dataset.conversation(offsets[2]! + 1)).toBeUndefined();
    expect((await dataset.page({ reason: 'assistant_voice' }, 0)).rows.map((r) => r.id)).toEqual(['interaction_persona_2_q1']);
    const stats = dataset.stats();
    expect(stats.rejectionReasons).toEqual({ echo: 2, assistant_voice: 1 });
    expect(stats.failures).toEqual({ rate_limit: 1, guard: 1, unknown: 1 });
    expect(dataset.summary()).toMatchObject({ failures: 3, rejections: 3 });
  });

  it('counts what the dashboard draws', async () => {
    const { dataset } = await openDir({
      interactions: many(30),
      usage: { statistics: { by_model: { 'openai/gpt': { input_tokens: 10, output_tokens: 5, call_count: 2 } }, by_module: { assistant: { input_tokens: 10, output_tokens: 5, call_count: 2 } } }, cost: { total: 0.5, by_model: { 'openai/gpt': 0.5 }, unpriced_models: ['x/y'] } },
    });
    await dataset.start();
    const stats = dataset.stats();
    expect(stats).toMatchObject({ scanned: 30, done: true, turns: { 1: 30 }, models: { 'sim/m1': 15, 'sim/m2': 15 }, endReasons: { max_turns: 6, '(not recorded)': 6, user_stop: 18 }, noiseStrategies: { typo: 8 }, noisedTurns: 8, userTurns: 30 });
    // Nurses are 0, 3, ..., 27: three of them (0, 12, 24) wrote one word, the other seven two.
    expect(stats.userWords.role?.nurse).toEqual({ turns: 10, words: 3 * 1 + 7 * 2 });
    expect(stats.usage).toEqual({ byModel: [{ name: 'openai/gpt', calls: 2, input: 10, output: 5, cost: 0.5 }], byModule: [{ name: 'assistant', calls: 2, input: 10, output: 5, cost: null }], totalCost: 0.5, unpriced: ['x/y'] });
    expect(stats.features).toEqual({ role: ['engineer', 'nurse', 'teacher'] });
  });

  it('refuses what is not a generate --out directory', async () => {
    await expect(Dataset.open('/nonexistent/dir')).rejects.toThrow(/cannot open \(ENOENT\)/);
    const { dir } = await writeDir({ interactions: [] });
    dirs.push(dir);
    await rm(`${dir}/interactions.ndjson`);
    await expect(Dataset.open(dir)).rejects.toThrow(/has no interactions\.ndjson/);
  });
});
