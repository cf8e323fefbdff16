import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { interactionInputSchema } from '../../src/export/samples.js';
import { MAX_FEATURE_KEYS, MAX_FEATURE_VALUES, MAX_LABELS, MAX_WORDS } from '../../src/export/qualityReport.js';
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
          "judge_filters": null,
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
        "quality": {
          "distinct_1": {
            "estimated": false,
            "ratio": 0.5,
            "total": 4,
            "unique": 2,
          },
          "distinct_2": {
            "estimated": false,
            "ratio": 0.5,
            "total": 2,
            "unique": 1,
          },
          "distinct_standard_error": 0.0081,
          "end_reasons": {
            "(none)": 2,
          },
          "guard_rejections": {
            "by_reason": {
              "echo": 2,
            },
            "conversations": 2,
            "rejections": 2,
          },
          "judge": {
            "accepted_per_persona": {},
            "reasons": {},
            "reviewed": 0,
            "rubric_versions": {},
            "scores": {},
            "tags": {},
            "verdicts": {
              "accept": 0,
              "not_judged": 2,
              "reject": 0,
              "unreadable": 0,
            },
          },
          "near_duplicates": {
            "compared": 2,
            "near_duplicates": 1,
            "rate": 0.5,
            "threshold": 0.8,
          },
          "user_turn_words": {
            "by_feature": {
              "communication_style": {
                "brief": {
                  "mean": 2,
                  "p50": 2,
                  "p90": 2,
                  "turns": 2,
                },
              },
              "role": {
                "nurse": {
                  "mean": 2,
                  "p50": 2,
                  "p90": 2,
                  "turns": 2,
                },
              },
            },
            "feature_keys_left_out": false,
            "mean": 2,
            "p50": 2,
            "p90": 2,
            "turns": 2,
          },
          "user_turns": 2,
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

describe('the quality report', () => {
  /** Review scores: user persona_adherence, naturalness, ending, information, consistency; assistant answered, clarification, noise_handling. */
  const review = (scores: readonly number[], tags: string[] = []) => {
    const [pa, na, en, inf, co, an, cl, no] = scores.map((score) => ({ score, reason: 'r' }));
    return { user: { persona_adherence: pa, naturalness: na, ending: en, information: inf, consistency: co }, assistant: { answered: an, clarification: cl, noise_handling: no }, tags, verdict: 'accept', verdict_reason: '', judge_model: { provider: 'sim', model: 'judge' } };
  };
  /**
   * A conversation of `persona`: the opening "Plan my shifts please" (left out of the report), then the
   * follow-ups, each answered. A follow-up given as [noisy, clean] was noised.
   */
  const conversation = (id: string, persona: { id: string; features: Record<string, unknown> }, followups: (string | [string, string])[], metadata: Record<string, unknown>) =>
    interactionInputSchema.parse({
      interaction_id: id,
      persona_id: persona.id,
      persona_features: persona.features,
      messages: [
        { role: 'user', content: 'Plan my shifts please', metadata: { turn: 0, is_initial: true } },
        { role: 'assistant', content: 'ok', metadata: { turn: 0 } },
        ...followups.flatMap((turn, i) => {
          const [content, clean] = typeof turn === 'string' ? [turn, turn] : turn;
          return [
            { role: 'user', content, metadata: { turn: i + 1, clean_version: clean, was_noised: content !== clean } },
            { role: 'assistant', content: 'ok', metadata: { turn: i + 1 } },
          ];
        }),
      ],
      metadata,
    });
  const nurse = { id: 'pA', features: { role: 'nurse', communication_style: 'terse' } };
  const teacher = { id: 'pB', features: { role: 'teacher', communication_style: 'chatty' } };
  const labelled = [
    // Accepted; one guard rejection. The noisy text is not what is counted, the clean one is.
    conversation('a1', nurse, [['and mels too', 'and meals too'], 'thanks bye'], { end_reason: 'user_stop', guard: { echo: 1 }, quality: { verdict: 'accept', reasons: [], checks: [], review: review([4, 3, 4, 4, 4, 4, 4, 4]), rubric_version: 'personaflow-judge-1' } }),
    // The same follow-ups: a near-duplicate of a1; judged by the checks only.
    conversation('a2', nurse, ['and meals too', 'thanks bye'], { end_reason: 'user_stop', guard: {}, quality: { verdict: 'reject', reasons: ['near_duplicate'], checks: [{ tag: 'near_duplicate', turn: 0, detail: 'nearly repeats a1' }], review: null, rubric_version: 'personaflow-judge-1' } }),
    conversation('b1', teacher, ['what about the second step', 'and the third step'], { end_reason: 'max_turns', guard: { echo: 2, too_long: 1 }, quality: { verdict: 'reject', reasons: ['user.naturalness', 'hallucination'], checks: [], review: review([3, 1, 4, 4, 2, 2, 4, 4], ['hallucination']), rubric_version: 'personaflow-judge-1' } }),
    // Not judged, no end reason, no guard record.
    conversation('b2', teacher, ['thanks'], {}),
  ];

  it('gives the figures worked out by hand for a labelled set', () => {
    const stats = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    for (const item of labelled) stats.add(item, 'train');
    const quality = stats.quality();
    // Follow-ups (the opening left out), clean: "and meals too", "thanks bye" (twice), "what about the second
    // step", "and the third step", "thanks": 7 turns of 3, 2, 3, 2, 5, 4, 1 words.
    expect(quality.user_turns).toBe(7);
    // 20 words; distinct: and meals too thanks bye what about the second step third = 11.
    expect(quality.distinct_1).toEqual({ unique: 11, total: 20, ratio: 0.55, estimated: false });
    // Bigrams within a turn: 3 + 3 + (4 + 3) + 0 = 13; a2's 3 repeat a1's, so 10 distinct. 10/13 = 0.76923.
    expect(quality.distinct_2).toEqual({ unique: 10, total: 13, ratio: 0.7692, estimated: false });
    // Every conversation has a word to compare; a2 repeats a1 (same persona); b2 shares nothing with b1.
    expect(quality.near_duplicates).toEqual({ compared: 4, near_duplicates: 1, rate: 0.25, threshold: 0.8 });
    expect(quality.end_reasons).toEqual({ user_stop: 2, max_turns: 1, '(none)': 1 });
    expect(quality.guard_rejections).toEqual({ conversations: 2, rejections: 4, by_reason: { echo: 3, too_long: 1 } });
    // Sorted lengths 1 2 2 3 3 4 5: mean 20/7 = 2.8571; nearest rank p50 = the 4th (3), p90 = the 7th (5).
    // nurse (= terse): 2 2 3 3, mean 2.5, p50 the 2nd (2), p90 the 4th (3); teacher (= chatty): 1 4 5, mean 3.3333, p50 the 2nd (4), p90 the 3rd (5).
    const nurseWords = { turns: 4, mean: 2.5, p50: 2, p90: 3 };
    const teacherWords = { turns: 3, mean: 3.3333, p50: 4, p90: 5 };
    expect(quality.user_turn_words).toEqual({
      turns: 7,
      mean: 2.8571,
      p50: 3,
      p90: 5,
      by_feature: { role: { nurse: nurseWords, teacher: teacherWords }, communication_style: { terse: nurseWords, chatty: teacherWords } },
      feature_keys_left_out: false,
    });
    expect(quality.judge).toEqual({
      verdicts: { accept: 1, reject: 2, not_judged: 1, unreadable: 0 },
      reviewed: 2,
      reasons: { near_duplicate: 1, 'user.naturalness': 1, hallucination: 1 },
      tags: { near_duplicate: 1, hallucination: 1 },
      scores: {
        'user.persona_adherence': { 0: 0, 1: 0, 2: 0, 3: 1, 4: 1 },
        'user.naturalness': { 0: 0, 1: 1, 2: 0, 3: 1, 4: 0 },
        'user.ending': { 0: 0, 1: 0, 2: 0, 3: 0, 4: 2 },
        'user.information': { 0: 0, 1: 0, 2: 0, 3: 0, 4: 2 },
        'user.consistency': { 0: 0, 1: 0, 2: 1, 3: 0, 4: 1 },
        'assistant.answered': { 0: 0, 1: 0, 2: 1, 3: 0, 4: 1 },
        'assistant.clarification': { 0: 0, 1: 0, 2: 0, 3: 0, 4: 2 },
        'assistant.noise_handling': { 0: 0, 1: 0, 2: 0, 3: 0, 4: 2 },
      },
      rubric_versions: { 'personaflow-judge-1': 3 },
      // pA: a1 accepted, a2 not; pB: b1 rejected (b2 unjudged). One persona with 0, one with 1.
      accepted_per_persona: { 0: 1, 1: 1 },
    });
    // In statistics.json, under `quality`.
    expect(stats.toJSON({ skipped: emptyCounts().skipped, inputLines: 4, interactions: 4, createdAt: 'x' }).quality).toEqual(quality);
  });

  it('the order of the input changes nothing but which of two near-duplicates is counted', () => {
    const forward = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    const backward = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    for (const item of labelled) forward.add(item, 'train');
    for (const item of [...labelled].reverse()) backward.add(item, 'train');
    expect(backward.quality()).toEqual(forward.quality());
  });

  it('pools feature values past the cap as (other), caps labels and feature keys, and counts an unreadable quality record apart', () => {
    const stats = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    for (let i = 0; i < 120; i += 1) stats.add(conversation(`c${i}`, { id: `p${i}`, features: { name: `person ${i}` } }, ['one two'], { end_reason: `reason ${i}`, quality: i === 0 ? { verdict: 'perhaps' } : null }), 'train');
    const quality = stats.quality();
    const names = quality.user_turn_words.by_feature.name!;
    expect(Object.keys(names)).toHaveLength(MAX_FEATURE_VALUES + 1);
    expect(names['(other)']).toEqual({ turns: 120 - MAX_FEATURE_VALUES, mean: 2, p50: 2, p90: 2 });
    expect(names['person 0']).toEqual({ turns: 1, mean: 2, p50: 2, p90: 2 });
    expect(Object.keys(quality.end_reasons)).toHaveLength(MAX_LABELS + 1);
    expect(quality.end_reasons['(other)']).toBe(120 - MAX_LABELS);
    expect(quality.judge.verdicts).toEqual({ accept: 0, reject: 0, not_judged: 119, unreadable: 1 });

    const wide = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    wide.add(conversation('w', { id: 'pw', features: Object.fromEntries(Array.from({ length: MAX_FEATURE_KEYS + 5 }, (_, i) => [`key${i}`, 'v'])) }, ['one'], {}), 'train');
    expect(Object.keys(wide.quality().user_turn_words.by_feature)).toHaveLength(MAX_FEATURE_KEYS);
    expect(wide.quality().user_turn_words.feature_keys_left_out).toBe(true);
  });

  it('counts a turn longer than MAX_WORDS as MAX_WORDS in p50/p90, at its true length in the mean', () => {
    const stats = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false });
    stats.add(conversation('long', nurse, [Array.from({ length: MAX_WORDS + 44 }, () => 'word').join(' ')], {}), 'train');
    expect(stats.quality().user_turn_words).toMatchObject({ turns: 1, mean: MAX_WORDS + 44, p50: MAX_WORDS, p90: MAX_WORDS });
  });

  it('is all zeros for an empty export', () => {
    const quality = new ExportStatistics({ feature: 'role', format: 'personagym', ratios: undefined, seed: 42, clean: false }).quality();
    expect(quality.distinct_1).toEqual({ unique: 0, total: 0, ratio: 0, estimated: false });
    expect(quality.user_turn_words).toEqual({ turns: 0, mean: 0, p50: 0, p90: 0, by_feature: {}, feature_keys_left_out: false });
    expect(quality.near_duplicates.rate).toBe(0);
  });
});
