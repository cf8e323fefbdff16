// Running counts for the dashboard: turns, user-turn words by persona feature, end and guard reasons, noise, judge scores, failures; and usage.json read into rows.
import { NOT_RECORDED, type Counts, type Stats, type UsageRow } from './api.js';
import { MAX_FEATURE_VALUES, OTHER_VALUES } from './facets.js';
import type { Facets } from './interaction.js';

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const finite = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

/** Distinct values counted under one heading (end reasons, strategies, scores...); later ones go to OTHER_VALUES. */
const MAX_DISTINCT = 1000;

// Maps, not objects: a name may be `__proto__` or `constructor`. Object.fromEntries makes plain own fields of them.
function bump(into: Map<string, number>, key: string, by = 1): void {
  const kept = into.has(key) || into.size < MAX_DISTINCT ? key : OTHER_VALUES;
  into.set(kept, (into.get(kept) ?? 0) + by);
}
const record = (counts: Map<string, number>): Counts => Object.fromEntries(counts);

/** A score rounded for its histogram (two decimals: scores are 1-5, 0-10 or 0-1). */
const scoreKey = (score: number): string => String(Math.round(score * 100) / 100);

/**
 * What the dashboard charts, counted one interaction at a time: memory grows with the distinct values
 * (capped), never with the interactions.
 */
export class DashboardStats {
  scanned = 0;
  noisedTurns = 0;
  userTurns = 0;
  readonly #turns = new Map<string, number>();
  readonly #words = new Map<string, Map<string, { turns: number; words: number }>>();
  readonly #endReasons = new Map<string, number>();
  readonly #guard = new Map<string, number>();
  readonly #rejections = new Map<string, number>();
  readonly #noise = new Map<string, number>();
  readonly #models = new Map<string, number>();
  readonly #rounds = new Map<string, number>();
  readonly #verdicts = new Map<string, number>();
  readonly #scores = new Map<string, Map<string, number>>();
  readonly #failures = new Map<string, number>();

  add(facets: Facets): void {
    this.scanned += 1;
    bump(this.#turns, String(facets.turns));
    bump(this.#endReasons, facets.endReason ?? NOT_RECORDED);
    for (const [reason, count] of facets.guard) bump(this.#guard, reason, count);
    for (const strategy of facets.noise) bump(this.#noise, strategy);
    this.noisedTurns += facets.noisedTurns;
    this.userTurns += facets.userWords.length;
    bump(this.#models, facets.model);
    bump(this.#rounds, facets.round === null ? 'main' : `round ${facets.round}`);
    if (facets.verdict !== null || facets.scores.length > 0) bump(this.#verdicts, facets.verdict ?? NOT_RECORDED);
    for (const [name, score] of facets.scores) {
      let counts = this.#scores.get(name);
      if (counts === undefined) {
        if (this.#scores.size >= 64) continue;
        this.#scores.set(name, (counts = new Map<string, number>()));
      }
      bump(counts, scoreKey(score));
    }
    const words = facets.userWords.reduce((sum, n) => sum + n, 0);
    for (const [feature, value] of facets.features) {
      let values = this.#words.get(feature);
      if (values === undefined) {
        if (this.#words.size >= 64) continue;
        this.#words.set(feature, (values = new Map<string, { turns: number; words: number }>()));
      }
      const kept = values.has(value) || values.size < MAX_FEATURE_VALUES ? value : OTHER_VALUES;
      const entry = values.get(kept) ?? { turns: 0, words: 0 };
      entry.turns += facets.userWords.length;
      entry.words += words;
      values.set(kept, entry);
    }
  }

  /** One line of guard-rejections.ndjson. */
  rejection(reason: string): void {
    bump(this.#rejections, reason);
  }

  /** One line of failures.ndjson. */
  failure(kind: string): void {
    bump(this.#failures, kind);
  }

  toJSON(done: boolean, usage: Stats['usage'], features: Record<string, string[]>): Stats {
    return {
      scanned: this.scanned,
      done,
      turns: record(this.#turns),
      userWords: Object.fromEntries([...this.#words].map(([feature, values]) => [feature, Object.fromEntries(values)])),
      endReasons: record(this.#endReasons),
      guardReasons: record(this.#guard),
      rejectionReasons: record(this.#rejections),
      noiseStrategies: record(this.#noise),
      noisedTurns: this.noisedTurns,
      userTurns: this.userTurns,
      models: record(this.#models),
      rounds: record(this.#rounds),
      verdicts: record(this.#verdicts),
      scores: Object.fromEntries([...this.#scores].map(([name, counts]) => [name, record(counts)])),
      failures: record(this.#failures),
      usage,
      features,
    };
  }
}

/** usage.json (PersonaGym's token_usage plus personaflow's cost) as rows by model and by module; null when it is not that. */
export function usageRows(usage: unknown): Stats['usage'] {
  if (!isRecord(usage) || !isRecord(usage.statistics)) return null;
  const cost = isRecord(usage.cost) ? usage.cost : {};
  const costByModel = isRecord(cost.by_model) ? cost.by_model : {};
  const rows = (from: unknown, costs: Record<string, unknown>): UsageRow[] =>
    isRecord(from)
      ? Object.entries(from)
          .filter((entry): entry is [string, Record<string, unknown>] => isRecord(entry[1]))
          .map(([name, t]) => ({ name, calls: finite(t.call_count) ?? finite(t.calls) ?? 0, input: finite(t.input_tokens) ?? 0, output: finite(t.output_tokens) ?? 0, cost: Object.hasOwn(costs, name) ? finite(costs[name]) : null }))
      : [];
  return {
    byModel: rows(usage.statistics.by_model, costByModel),
    byModule: rows(usage.statistics.by_module, {}),
    totalCost: finite(cost.total),
    unpriced: Array.isArray(cost.unpriced_models) ? cost.unpriced_models.filter((m): m is string => typeof m === 'string') : [],
  };
}
