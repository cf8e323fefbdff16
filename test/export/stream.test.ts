import { Readable } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { ExportStatistics } from '../../src/export/statistics.js';
import { emptyCounts, exportSamples, type ExportStreamOptions } from '../../src/export/stream.js';
import { collect, interaction, ndjson, withDistinctIds, type TestInteraction } from './arbitraries.js';

const source = (text: string): AsyncIterable<Buffer> => Readable.from([Buffer.from(text)]);
const options = (extra: Partial<ExportStreamOptions> = {}): ExportStreamOptions => ({ name: 'in.ndjson', format: 'personagym', seed: 42, ...extra });
const RATIOS = { train: 0.6, validation: 0.2, test: 0.2 };

/** Interactions with distinct conversations and sample ids (so dedupe keeps all of them). */
const distinct = (max: number): fc.Arbitrary<TestInteraction[]> =>
  fc.uniqueArray(interaction(12), { maxLength: max, selector: (i) => JSON.stringify(i.messages.map((m) => [m.role, m.content])) }).map(withDistinctIds);

describe('exportSamples', () => {
  test.prop([distinct(40), fc.integer({ min: 0, max: 1000 })])('every interaction lands in exactly one split, and no persona in two', async (items, seed) => {
    const out = await collect(exportSamples(source(ndjson(items)), options({ ratios: RATIOS, seed })));
    expect(out.map((o) => o.interaction.interaction_id)).toEqual(items.map((i) => i.interaction_id));
    const splitOfPersona = new Map<string, string>();
    for (const { interaction: i, split } of out) {
      expect(splitOfPersona.get(i.persona_id) ?? split).toBe(split);
      splitOfPersona.set(i.persona_id, split);
    }
  });

  test.prop([distinct(30), fc.integer({ min: 0, max: 1000 })])('the same seed gives the same splits whatever the order of the input', async (items, seed) => {
    const forward = await collect(exportSamples(source(ndjson(items)), options({ ratios: RATIOS, seed })));
    const backward = await collect(exportSamples(source(ndjson([...items].reverse())), options({ ratios: RATIOS, seed })));
    const byId = new Map(forward.map((o) => [o.interaction.interaction_id, o.split]));
    for (const o of backward) expect(o.split).toBe(byId.get(o.interaction.interaction_id));
  });

  test.prop([fc.array(interaction(8), { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), fc.boolean(), fc.boolean()])(
    'filters: what comes out is exactly what passes --min-turns, --exclude-failed-guards, dedupe (the first of identical conversations) and the first of each sample id',
    async (items, minTurns, excludeGuards, dedupe) => {
      const counts = emptyCounts();
      const out = await collect(exportSamples(source(ndjson(items)), options({ minTurns, excludeGuardRejections: excludeGuards, dedupe }), counts));
      const seen = new Set<string>();
      const ids = new Set<string>();
      const expected = items.filter((i) => {
        if (i.num_turns < minTurns) return false;
        if (excludeGuards && Object.keys(i.metadata.guard as object).length > 0) return false;
        const key = JSON.stringify(i.messages.map((m) => [m.role, m.content]));
        if (dedupe && seen.has(key)) return false;
        const id = `sample_${i.persona_id}_${i.metadata.query_id as string}`;
        if (ids.has(id)) return false;
        seen.add(key);
        ids.add(id);
        return true;
      });
      expect(out.map((o) => o.interaction)).toEqual(expected);
      const { skipped } = counts;
      expect(counts.interactions).toBe(items.length);
      expect(skipped.below_min_turns + skipped.guard_rejections + skipped.duplicates + skipped.duplicate_ids + out.length).toBe(items.length);
    },
  );

  it('reports bad lines as FILE:LINE and goes on; --strict stops at the first', async () => {
    const good = fc.sample(interaction(), { numRuns: 2, seed: 1 });
    const text = `${JSON.stringify(good[0])}\n{not json\n\n{"persona_id":"p"}\n${JSON.stringify(good[1])}\n`;
    const warnings: string[] = [];
    const counts = emptyCounts();
    const out = await collect(exportSamples(source(text), options({ onWarning: (m) => warnings.push(m) }), counts));
    expect(out).toHaveLength(2);
    expect(counts.skipped.bad_lines).toBe(2);
    // V8's own JSON message differs between Node 20 and 22: only its start is ours.
    expect(warnings[0]).toMatch(/^in\.ndjson:2: invalid JSON: /);
    expect(warnings[1]).toMatchInlineSnapshot(`"in.ndjson:4: not an interaction: interaction_id: Invalid input: expected string, received undefined; messages: Invalid input: expected array, received undefined"`);
    await expect(collect(exportSamples(source(text), options({ strict: true })))).rejects.toThrow(ConfigError);
    await expect(collect(exportSamples(source(text), options({ strict: true })))).rejects.toThrow(/^in\.ndjson:2: invalid JSON/);
  });

  it('a sample its format rejects (an empty assistant message) is reported, not written', async () => {
    const [one] = fc.sample(interaction(), { numRuns: 1, seed: 3 });
    const broken = { ...one!, messages: one!.messages.map((m) => (m.role === 'assistant' ? { ...m, content: '' } : m)) };
    const warnings: string[] = [];
    const out = await collect(exportSamples(source(ndjson([broken])), options({ format: 'openai', onWarning: (m) => warnings.push(m) })));
    expect(out).toEqual([]);
    expect(warnings[0]).toMatch(/^in\.ndjson:1: cannot be exported as openai: messages\[1\]\.content: is empty/);
  });

  it('a sharegpt or openai conversation ending with an unanswered user turn loses that turn, so it ends with the assistant', async () => {
    const input = ndjson([{ interaction_id: 'i1', persona_id: 'p1', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'thanks, bye' }] }]);
    const [sharegpt] = await collect(exportSamples(source(input), options({ format: 'sharegpt' })));
    expect(sharegpt?.sample).toEqual({ conversations: [{ from: 'human', value: 'hi' }, { from: 'gpt', value: 'hello' }] });
    const [openai] = await collect(exportSamples(source(input), options({ format: 'openai' })));
    expect(openai?.sample).toEqual({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] });
  });

  it('a sharegpt conversation that starts with an assistant greeting starts with the first human turn', async () => {
    const input = ndjson([{ interaction_id: 'i1', persona_id: 'p1', messages: [{ role: 'assistant', content: 'Hi! How can I help?' }, { role: 'user', content: 'plan my week' }, { role: 'assistant', content: 'Sure.' }] }]);
    const out = await collect(exportSamples(source(input), options({ format: 'sharegpt' })));
    expect(out.map((o) => o.sample)).toEqual([{ conversations: [{ from: 'human', value: 'plan my week' }, { from: 'gpt', value: 'Sure.' }] }]);
  });

  it('a conversation that does not alternate (two user turns in a row) is reported as FILE:LINE, not written', async () => {
    const input = ndjson([{ interaction_id: 'i1', persona_id: 'p1', messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'assistant', content: 'c' }] }]);
    const warnings: string[] = [];
    const counts = emptyCounts();
    expect(await collect(exportSamples(source(input), options({ format: 'sharegpt', onWarning: (m) => warnings.push(m) }), counts))).toEqual([]);
    expect(counts.skipped.invalid_samples).toBe(1);
    expect(warnings).toMatchInlineSnapshot(`
      [
        "in.ndjson:1: cannot be exported as sharegpt: conversations: turn 1 is human, expected gpt (human and gpt alternate, human first)",
      ]
    `);
  });

  it('sample ids are unique: of two interactions with one interaction_id and different texts, the first is kept and the second reported', async () => {
    const chat = (answer: string) => ({ interaction_id: 'interaction_p1_q1', persona_id: 'p1', persona_features: { role: 'nurse' }, messages: [{ role: 'user', content: 'plan my shifts' }, { role: 'assistant', content: answer }], metadata: { query_id: 'q1' } });
    const input = ndjson([chat('Sleep first.'), chat('Eat first.'), chat('Sleep first.')]);
    const warnings: string[] = [];
    const counts = emptyCounts();
    const out = await collect(exportSamples(source(input), options({ onWarning: (m) => warnings.push(m) }), counts));
    expect(out.map((o) => [(o.sample as { sample_id: string }).sample_id, o.interaction.messages[1]?.content])).toEqual([['sample_p1_q1', 'Sleep first.']]);
    // The third line repeats the first conversation: a plain duplicate, not reported.
    expect(counts.skipped).toMatchObject({ duplicates: 1, duplicate_ids: 1 });
    expect(warnings).toMatchInlineSnapshot(`
      [
        "in.ndjson:2: duplicate sample id "sample_p1_q1" (interaction_id "interaction_p1_q1") came before: left out, the first one is kept",
      ]
    `);
    // --no-dedupe keeps identical conversations, but not two samples with one id.
    const undeduped = await collect(exportSamples(source(input), options({ dedupe: false })));
    expect(undeduped).toHaveLength(1);
  });

  it('dedupe compares what is written: with --system persona, the same turns under two personas are two samples', async () => {
    const chat = (id: string, role: string) => ({ interaction_id: id, persona_id: id, persona_features: { role }, messages: [{ role: 'user', content: 'help me sleep' }, { role: 'assistant', content: 'Try a routine.' }] });
    const input = ndjson([chat('i1', 'nurse'), chat('i2', 'pilot'), chat('i3', 'nurse')]);
    const out = await collect(exportSamples(source(input), options({ format: 'openai', sample: { system: 'persona' } })));
    expect(out.map((o) => o.interaction.interaction_id)).toEqual(['i1', 'i2']);
    // Without the system message the three lines are one conversation.
    expect(await collect(exportSamples(source(input), options({ format: 'openai' })))).toHaveLength(1);
  });

  it('without a split everything is train', async () => {
    const items = withDistinctIds(fc.sample(interaction(), { numRuns: 5, seed: 2 }));
    const out = await collect(exportSamples(source(ndjson(items)), options({ dedupe: false })));
    expect(out.map((o) => o.split)).toEqual(items.map(() => 'train'));
  });
});

/** The parts of statistics.json recounted here. */
interface Stats {
  total_samples: number;
  samples_by_split: Record<string, number>;
  avg_turns: number;
  avg_trajectory_length: number;
  unique_personas: number;
  turn_histogram: Record<string, number>;
  distractor_stats: { samples_with_noise: number };
  persona_distribution: Record<string, number>;
}

describe('ExportStatistics', () => {
  test.prop([distinct(40)])('counts agree with a recount of the interactions', async (items) => {
    const stats = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: RATIOS, seed: 42, clean: false });
    for (const o of await collect(exportSamples(source(ndjson(items)), options({ ratios: RATIOS })))) stats.add(o.interaction, o.split);
    const json = stats.toJSON({ skipped: emptyCounts().skipped, inputLines: items.length, interactions: items.length, createdAt: 'now' }) as unknown as Stats;
    const n = items.length;
    expect(json.total_samples).toBe(n);
    expect(json.samples_by_split.train! + json.samples_by_split.validation! + json.samples_by_split.test!).toBe(n);
    const turns = items.reduce((sum, i) => sum + i.num_turns, 0);
    expect(json.avg_turns).toBeCloseTo(n === 0 ? 0 : turns / n, 3);
    expect(json.avg_trajectory_length).toBeCloseTo(n === 0 ? 0 : turns / n, 3);
    expect(json.unique_personas).toBe(new Set(items.map((i) => i.persona_id)).size);
    const histogram: Record<string, number> = {};
    for (const i of items) histogram[i.num_turns] = (histogram[i.num_turns] ?? 0) + 1;
    expect(json.turn_histogram).toEqual(histogram);
    const noised = items.filter((i) => i.messages.some((m) => m.metadata.was_noised === true)).length;
    expect(json.distractor_stats.samples_with_noise).toBe(noised);
    const roles: Record<string, number> = {};
    for (const i of items) roles[i.persona_features.role as string] = (roles[i.persona_features.role as string] ?? 0) + 1;
    expect(json.persona_distribution).toEqual(roles);
  });
});
