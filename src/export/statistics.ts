// statistics.json for an export: PersonaGym's fields, a turn histogram, noise by layer, token usage, the quality report; memory per distinct value, not per sample.
import { LAYERS } from '../config/schema.js';
import { KeySet } from '../streams/seen.js';
import type { JudgeFilters } from './quality.js';
import { QualityReport, type QualityReportJSON } from './qualityReport.js';
import { SPLITS, conversationOf, featuresOf, noisyInitialQueries, turnsOf, userTurns, type InteractionInput, type SplitName } from './samples.js';
import type { SplitRatios } from './split.js';

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Distinct feature values kept in `persona_distribution`; further values are counted under `(other)`. */
export const MAX_DISTINCT = 10_000;

/** Why interactions were left out, counted. */
export interface Skipped {
  bad_lines: number;
  below_min_turns: number;
  guard_rejections: number;
  truncated_answers: number;
  refusals: number;
  /** Dropped by `--min-score`: a review criterion scored below it. */
  below_min_score: number;
  /** Dropped by `--require-verdict`: the other verdict. */
  other_verdict: number;
  /** Dropped by `--exclude-tag`, by the tag (a known tag name, so a plain object is safe). */
  excluded_tags: Record<string, number>;
  /** Dropped by a judge filter for want of what it reads: no metadata.quality, or no review for --min-score or a judge tag. */
  not_judged: number;
  duplicates: number;
  /** Interactions whose sample id an earlier one had (with another conversation). */
  duplicate_ids: number;
  invalid_samples: number;
}

/** How one noised user turn was noised: its layer (or `legacy` for rule noise) and strategies. */
export interface TurnNoise {
  readonly layer: string;
  readonly strategies: readonly string[];
}

const LAYER_NAMES: ReadonlySet<string> = new Set(LAYERS);

/** Whether a user message was noised: `was_noised`, else its text differs from `clean_version`. */
function wasNoised(metadata: Record<string, unknown> | null | undefined, content: string): boolean {
  if (metadata === null || metadata === undefined) return false;
  if (typeof metadata.was_noised === 'boolean') return metadata.was_noised;
  return typeof metadata.clean_version === 'string' && metadata.clean_version !== content;
}

function describeVersion(version: unknown, semantic: unknown): TurnNoise {
  const semanticLayer = isRecord(semantic) && typeof semantic.layer === 'string' ? semantic.layer : undefined;
  const v = isRecord(version) ? version : {};
  const type = typeof v.noise_type === 'string' ? v.noise_type : undefined;
  const applied = Array.isArray(v.applied_strategies) ? v.applied_strategies.filter((s): s is string => typeof s === 'string') : isRecord(semantic) && Array.isArray(semantic.applied_strategies) ? semantic.applied_strategies.filter((s): s is string => typeof s === 'string') : [];
  if (semanticLayer !== undefined) return { layer: semanticLayer, strategies: applied };
  if (type !== undefined && LAYER_NAMES.has(type)) return { layer: type, strategies: applied };
  // The legacy (rule) distractor names the rule that made the version, and has no layers.
  if (type !== undefined) return { layer: 'legacy', strategies: applied.length > 0 ? applied : [type] };
  return { layer: 'unknown', strategies: applied };
}

/**
 * How each noised user turn of an interaction was noised, in order, from the versions its metadata
 * recorded (`noisy_versions`, `semantic_noise`): the version that was sent is the one whose text the
 * message carries.
 */
export function noiseOfTurns(interaction: InteractionInput): TurnNoise[] {
  const metadata = interaction.metadata ?? {};
  const versions = isRecord(metadata.noisy_versions) ? metadata.noisy_versions : {};
  const followups = Array.isArray(versions.followups) ? versions.followups.filter(isRecord) : [];
  const semanticInitial = isRecord(metadata.semantic_noise) ? metadata.semantic_noise.initial_query : undefined;
  const out: TurnNoise[] = [];
  let first = true;
  for (const message of interaction.messages) {
    if (message.role !== 'user') continue;
    const initial = first || message.metadata?.is_initial === true;
    first = false;
    if (!wasNoised(message.metadata, message.content)) continue;
    if (initial) {
      const candidates = noisyInitialQueries(metadata);
      const sent = candidates.find((v) => isRecord(v) && v.noisy_text === message.content) ?? candidates[0];
      out.push(describeVersion(sent, semanticInitial));
      continue;
    }
    const turn = message.metadata?.turn;
    const entry = followups.find((f) => f.turn === turn) ?? followups.find((f) => f.used_version === message.content);
    const candidates: unknown[] = entry !== undefined && Array.isArray(entry.noisy_versions) ? entry.noisy_versions : [];
    const sent = candidates.find((v) => isRecord(v) && v.noisy_text === message.content) ?? candidates[0];
    out.push(describeVersion(sent, entry?.semantic_noise));
  }
  return out;
}

interface UsageSum {
  calls: number;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

// Counts live in Maps, not plain objects: a feature value, model or strategy may be any string, and
// "constructor", "toString" or "__proto__" would read or write Object.prototype on a `{}`.
const increment = (into: Map<string, number>, key: string, by = 1): void => {
  into.set(key, (into.get(key) ?? 0) + by);
};

/** A plain object for JSON, in the given order; `Object.fromEntries` defines own properties, `__proto__` too. */
const toRecord = <T>(entries: Iterable<readonly [string, T]>): Record<string, T> => Object.fromEntries(entries);

/** The judge filters as statistics.json records them: each null when off; null when all are. */
function judgeFilters(filters: JudgeFilters | undefined): Record<string, unknown> | null {
  const on = { min_score: filters?.minScore ?? null, require_verdict: filters?.requireVerdict ?? null, exclude_tags: filters?.excludeTags === undefined || filters.excludeTags.length === 0 ? null : [...filters.excludeTags] };
  return Object.values(on).every((value) => value === null) ? null : on;
}

export interface StatisticsOptions {
  /** The persona feature `persona_distribution` counts samples by. */
  readonly feature: string;
  readonly format: string;
  readonly ratios: SplitRatios | undefined;
  readonly seed: number;
  readonly clean: boolean;
  /** The judge filters the export ran with, recorded in `export.judge_filters`. */
  readonly judge?: JudgeFilters | undefined;
}

/**
 * Running statistics of an export. `add` one exported interaction at a time; memory grows with the
 * distinct personas (16 bytes each, for the unique counts), turn counts, layers, strategies and feature
 * values, never with the samples; the quality report's own bounds are in `QualityReport`.
 */
export class ExportStatistics {
  readonly #options: StatisticsOptions;
  #total = 0;
  readonly #bySplit: Record<SplitName, number> = { train: 0, validation: 0, test: 0 };
  readonly #personas = new KeySet();
  readonly #personasBySplit: Record<SplitName, KeySet> = { train: new KeySet(), validation: new KeySet(), test: new KeySet() };
  #turns = 0;
  #minTurns = Infinity;
  #maxTurns = 0;
  #userTurns = 0;
  readonly #histogram = new Map<string, number>();
  #noisedSamples = 0;
  #noisedTurns = 0;
  readonly #layers = new Map<string, number>();
  readonly #turnLayers = new Map<string, number>();
  readonly #strategies = new Map<string, number>();
  readonly #distractorTypes = new Map<string, number>();
  readonly #distribution = new Map<string, number>();
  #distinct = 0;
  readonly #models = new Map<string, number>();
  readonly #usage = new Map<string, UsageSum>();
  readonly #quality = new QualityReport();

  constructor(options: StatisticsOptions) {
    this.#options = options;
  }

  get total(): number {
    return this.#total;
  }

  get bySplit(): Readonly<Record<SplitName, number>> {
    return this.#bySplit;
  }

  /** Counts one exported interaction, in `split`. */
  add(interaction: InteractionInput, split: SplitName): void {
    this.#total += 1;
    this.#bySplit[split] += 1;
    this.#personas.add(interaction.persona_id);
    this.#personasBySplit[split].add(interaction.persona_id);
    const turns = turnsOf(interaction);
    this.#turns += turns;
    this.#minTurns = Math.min(this.#minTurns, turns);
    this.#maxTurns = Math.max(this.#maxTurns, turns);
    increment(this.#histogram, String(turns));
    this.#userTurns += userTurns(conversationOf(interaction)).length;

    const metadata = interaction.metadata ?? {};
    const noise = noiseOfTurns(interaction);
    if (noise.length > 0) {
      this.#noisedSamples += 1;
      this.#noisedTurns += noise.length;
      increment(this.#layers, (noise[0] as TurnNoise).layer);
      for (const turn of noise) {
        increment(this.#turnLayers, turn.layer);
        for (const strategy of turn.strategies) increment(this.#strategies, strategy);
      }
    }
    increment(this.#distractorTypes, typeof metadata.distractor_type === 'string' ? metadata.distractor_type : 'none');

    const features = featuresOf(interaction);
    const value = Object.hasOwn(features, this.#options.feature) ? features[this.#options.feature] : undefined;
    const key = value === undefined || value === null ? '(none)' : typeof value === 'string' ? value : JSON.stringify(value);
    if (this.#distribution.has(key)) increment(this.#distribution, key);
    else if (this.#distinct < MAX_DISTINCT) {
      this.#distinct += 1;
      increment(this.#distribution, key);
    } else increment(this.#distribution, '(other)');

    const model = metadata.assistant_model;
    if (isRecord(model) && typeof model.model === 'string') increment(this.#models, typeof model.provider === 'string' ? `${model.provider}/${model.model}` : model.model);

    if (isRecord(metadata.usage)) {
      for (const [module, entry] of Object.entries(metadata.usage)) {
        if (!isRecord(entry)) continue;
        let sum = this.#usage.get(module);
        if (sum === undefined) this.#usage.set(module, (sum = { calls: 0, input_tokens: 0, output_tokens: 0, total_tokens: 0 }));
        const input = Number(entry.input_tokens) || 0;
        const output = Number(entry.output_tokens) || 0;
        sum.calls += Number(entry.calls) || 0;
        sum.input_tokens += input;
        sum.output_tokens += output;
        sum.total_tokens += input + output;
      }
    }
    this.#quality.add(interaction);
  }

  /** The quality report so far (statistics.json's `quality`). */
  quality(): QualityReportJSON {
    return this.#quality.toJSON();
  }

  /**
   * statistics.json: PersonaGym's fields (total_samples, samples_by_split, avg_turns,
   * avg_trajectory_length, distractor_stats, persona_distribution, created_at) and ours, the quality
   * report among them.
   * `runUsage` is the run's usage.json, when the input was a `generate --out` directory that has one.
   */
  toJSON(extra: { skipped: Skipped; inputLines: number; interactions: number; runUsage?: unknown; createdAt?: string }): Record<string, unknown> {
    const n = this.#total;
    const round = (value: number): number => Number(value.toFixed(4));
    const sortedKeys = (counts: Map<string, number>): Record<string, number> => toRecord([...counts].sort(([a], [b]) => Number(a) - Number(b)));
    const byCount = (counts: Map<string, number>): Record<string, number> => toRecord([...counts].sort(([ka, a], [kb, b]) => b - a || ka.localeCompare(kb)));
    const exportedTotals = [...this.#usage.values()].reduce((sum, u) => ({ calls: sum.calls + u.calls, input_tokens: sum.input_tokens + u.input_tokens, output_tokens: sum.output_tokens + u.output_tokens, total_tokens: sum.total_tokens + u.total_tokens }), { calls: 0, input_tokens: 0, output_tokens: 0, total_tokens: 0 });
    return {
      total_samples: n,
      samples_by_split: { ...this.#bySplit },
      avg_turns: n === 0 ? 0 : round(this.#turns / n),
      avg_trajectory_length: n === 0 ? 0 : round(this.#userTurns / n),
      min_turns: n === 0 ? 0 : this.#minTurns,
      max_turns: this.#maxTurns,
      total_user_prompts: this.#userTurns,
      unique_personas: this.#personas.size,
      personas_by_split: Object.fromEntries(SPLITS.map((name) => [name, this.#personasBySplit[name].size])),
      turn_histogram: sortedKeys(this.#histogram),
      distractor_stats: {
        samples_with_noise: this.#noisedSamples,
        noise_rate: n === 0 ? 0 : round(this.#noisedSamples / n),
        noised_user_turns: this.#noisedTurns,
        turn_noise_rate: this.#userTurns === 0 ? 0 : round(this.#noisedTurns / this.#userTurns),
        layer_distribution: byCount(this.#layers),
        turn_layer_distribution: byCount(this.#turnLayers),
        strategy_distribution: byCount(this.#strategies),
        distractor_types: byCount(this.#distractorTypes),
      },
      persona_distribution_feature: this.#options.feature,
      persona_distribution: byCount(this.#distribution),
      assistant_models: byCount(this.#models),
      token_usage: {
        exported: { summary: exportedTotals, by_module: toRecord(this.#usage) },
        run: extra.runUsage ?? null,
      },
      quality: this.quality(),
      export: {
        format: this.#options.format,
        clean: this.#options.clean,
        split: this.#options.ratios === undefined ? null : { ...this.#options.ratios, by: 'persona_id', seed: this.#options.seed },
        input_lines: extra.inputLines,
        interactions_read: extra.interactions,
        judge_filters: judgeFilters(this.#options.judge),
        skipped: extra.skipped,
      },
      created_at: extra.createdAt ?? new Date().toISOString(),
    };
  }
}
