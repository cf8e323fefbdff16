import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { interactionInputSchema } from '../../src/export/samples.js';
import { ExportStatistics, noiseOfTurns } from '../../src/export/statistics.js';
import { emptyCounts } from '../../src/export/stream.js';

const input = interactionInputSchema.parse(JSON.parse(readFileSync(new URL('../fixtures/export/interaction.ndjson', import.meta.url), 'utf8')));

/** A legacy (rule) noised follow-up, as generate writes it. */
const legacy = interactionInputSchema.parse({
  ...input,
  messages: [
    { role: 'user', content: 'plan shifts', metadata: { turn: 0, is_initial: true, clean_version: 'plan shifts', was_noised: false } },
    { role: 'assistant', content: 'ok', metadata: { turn: 0 } },
    { role: 'user', content: 'and mels?', metadata: { turn: 1, is_followup: true, clean_version: 'and meals?', was_noised: true } },
    { role: 'assistant', content: 'ok', metadata: { turn: 1 } },
  ],
  metadata: { ...input.metadata, distractor_type: 'legacy', semantic_noise: undefined, noisy_versions: { followups: [{ clean_feedback: 'and meals?', noisy_versions: [{ noisy_text: 'and mels?', noise_type: 'typo', noise_intensity: 0.3 }], used_version: 'and mels?', turn: 1 }] } },
});

describe('noiseOfTurns', () => {
  it('names the layer and strategies of each noised user turn', () => {
    expect(noiseOfTurns(input)).toEqual([{ layer: 'surface_noise', strategies: ['typo_misspelling'] }]);
    expect(noiseOfTurns(legacy)).toEqual([{ layer: 'legacy', strategies: ['typo'] }]);
  });
});

describe('ExportStatistics', () => {
  it('has PersonaGym fields and ours', () => {
    const stats = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    stats.add(input, 'train');
    stats.add(legacy, 'train');
    expect(stats.toJSON({ skipped: emptyCounts().skipped, inputLines: 3, interactions: 2, createdAt: '2026-01-01T00:00:00.000Z' })).toMatchInlineSnapshot(`
      {
        "assistant_models": {
          "sim/m1": 2,
        },
        "avg_trajectory_length": 2,
        "avg_turns": 2,
        "created_at": "2026-01-01T00:00:00.000Z",
        "distractor_stats": {
          "distractor_types": {
            "legacy": 1,
            "semantic": 1,
          },
          "layer_distribution": {
            "legacy": 1,
            "surface_noise": 1,
          },
          "noise_rate": 1,
          "noised_user_turns": 2,
          "samples_with_noise": 2,
          "strategy_distribution": {
            "typo": 1,
            "typo_misspelling": 1,
          },
          "turn_layer_distribution": {
            "legacy": 1,
            "surface_noise": 1,
          },
          "turn_noise_rate": 0.5,
        },
        "export": {
          "clean": false,
          "format": "personagym",
          "input_lines": 3,
          "interactions_read": 2,
          "skipped": {
            "bad_lines": 0,
            "below_min_score": 0,
            "below_min_turns": 0,
            "duplicate_ids": 0,
            "duplicates": 0,
            "excluded_tags": {},
            "guard_rejections": 0,
            "invalid_samples": 0,
            "not_judged": 0,
            "other_verdict": 0,
            "refusals": 0,
            "truncated_answers": 0,
          },
          "split": null,
        },
        "max_turns": 2,
        "min_turns": 2,
        "persona_distribution": {
          "nurse": 2,
        },
        "persona_distribution_feature": "role",
        "personas_by_split": {
          "test": 0,
          "train": 1,
          "validation": 0,
        },
        "samples_by_split": {
          "test": 0,
          "train": 2,
          "validation": 0,
        },
        "token_usage": {
          "exported": {
            "by_module": {
              "assistant": {
                "calls": 4,
                "input_tokens": 200,
                "output_tokens": 40,
                "total_tokens": 240,
              },
            },
            "summary": {
              "calls": 4,
              "input_tokens": 200,
              "output_tokens": 40,
              "total_tokens": 240,
            },
          },
          "run": null,
        },
        "total_samples": 2,
        "total_user_prompts": 4,
        "turn_histogram": {
          "2": 2,
        },
        "unique_personas": 1,
      }
    `);
  });

  /** A one-exchange interaction of a persona with this role (and metadata). */
  const plain = (id: string, role: string, metadata: Record<string, unknown> = {}) =>
    interactionInputSchema.parse({ interaction_id: id, persona_id: id, persona_features: { role }, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], metadata });
  const statsOf = (...items: ReturnType<typeof plain>[]): Record<string, unknown> => {
    const stats = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    for (const item of items) stats.add(item, 'train');
    return stats.toJSON({ skipped: emptyCounts().skipped, inputLines: items.length, interactions: items.length, createdAt: 'x' });
  };

  it('counts roles named like Object.prototype properties ("constructor", "toString", "__proto__") like any other value', () => {
    const json = statsOf(plain('i1', 'constructor'), plain('i2', 'constructor'), plain('i3', 'toString'), plain('i4', '__proto__'));
    const distribution = json.persona_distribution as Record<string, unknown>;
    expect(Object.values(distribution).every((n) => typeof n === 'number')).toBe(true);
    expect(Object.values(distribution).reduce<number>((sum, n) => sum + (n as number), 0)).toBe(json.total_samples);
    const own = (key: string): unknown => (Object.hasOwn(distribution, key) ? distribution[key] : undefined);
    expect([own('constructor'), own('toString'), own('__proto__')]).toEqual([2, 1, 1]);
    // As written to statistics.json and read back.
    expect(JSON.parse(JSON.stringify(distribution))).toEqual(JSON.parse('{"constructor":2,"__proto__":1,"toString":1}'));
  });

  it('counts a model or usage module called "toString" or "__proto__" like any other', () => {
    const json = statsOf(plain('i1', 'nurse', { assistant_model: { model: 'toString' }, usage: JSON.parse('{"__proto__":{"calls":1,"input_tokens":2,"output_tokens":3}}') }));
    expect(json.assistant_models).toEqual({ toString: 1 });
    expect(JSON.stringify((json.token_usage as { exported: unknown }).exported)).toBe('{"summary":{"calls":1,"input_tokens":2,"output_tokens":3,"total_tokens":5},"by_module":{"__proto__":{"calls":1,"input_tokens":2,"output_tokens":3,"total_tokens":5}}}');
  });

  it('--stats-feature constructor reads the persona feature, not Object.prototype.constructor', () => {
    const stats = new ExportStatistics({ feature: 'constructor', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    stats.add(plain('i1', 'nurse'), 'train');
    expect(stats.toJSON({ skipped: emptyCounts().skipped, inputLines: 1, interactions: 1, createdAt: 'x' }).persona_distribution).toEqual({ '(none)': 1 });
  });
});
