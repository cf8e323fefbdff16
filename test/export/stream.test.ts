import { Readable } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { ExportStatistics } from '../../src/export/statistics.js';
import { emptyCounts, exportSamples, type ExportStreamOptions } from '../../src/export/stream.js';
import { collect, interaction, ndjson, type TestInteraction } from './arbitraries.js';

const source = (text: string): AsyncIterable<Buffer> => Readable.from([Buffer.from(text)]);
const options = (extra: Partial<ExportStreamOptions> = {}): ExportStreamOptions => ({ name: 'in.ndjson', format: 'personagym', seed: 42, ...extra });
const RATIOS = { train: 0.6, validation: 0.2, test: 0.2 };

/** Interactions with distinct conversations (so dedupe keeps all of them). */
const distinct = (max: number): fc.Arbitrary<TestInteraction[]> =>
  fc.uniqueArray(interaction(12), { maxLength: max, selector: (i) => JSON.stringify(i.messages.map((m) => [m.role, m.content])) });

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
    'filters: what comes out is exactly what passes --min-turns, --exclude-failed-guards and dedupe (the first of identical conversations)',
    async (items, minTurns, excludeGuards, dedupe) => {
      const counts = emptyCounts();
      const out = await collect(exportSamples(source(ndjson(items)), options({ minTurns, excludeGuardRejections: excludeGuards, dedupe }), counts));
      const seen = new Set<string>();
      const expected = items.filter((i) => {
        if (i.num_turns < minTurns) return false;
        if (excludeGuards && Object.keys(i.metadata.guard as object).length > 0) return false;
        const key = JSON.stringify(i.messages.map((m) => [m.role, m.content]));
        if (dedupe && seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      expect(out.map((o) => o.interaction)).toEqual(expected);
      const { skipped } = counts;
      expect(counts.interactions).toBe(items.length);
      expect(skipped.below_min_turns + skipped.guard_rejections + skipped.duplicates + out.length).toBe(items.length);
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

  it('without a split everything is train', async () => {
    const items = fc.sample(interaction(), { numRuns: 5, seed: 2 });
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
