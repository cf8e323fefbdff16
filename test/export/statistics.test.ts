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
            "below_min_turns": 0,
            "duplicates": 0,
            "guard_rejections": 0,
            "invalid_samples": 0,
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
});
