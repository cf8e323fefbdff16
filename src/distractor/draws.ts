// The distractor's seeded draws: which layer, which strategies, how many for a text of this length.
import { LAYERS, type Layer, type StrategyFile } from '../config/schema.js';
import type { Rng } from '../rng.js';

/** Words from which a text may get a second strategy: shorter ones get one (a three-word follow-up never gets three). */
export const SECOND_STRATEGY_WORDS = 12;

/** How many strategies a text of `words` words gets at most: one, or two from SECOND_STRATEGY_WORDS words. */
export const strategyBudget = (words: number): number => (words >= SECOND_STRATEGY_WORDS ? 2 : 1);

export const wordCount = (text: string): number => (text.match(/\S+/g) ?? []).length;

/** Layer drawn by weight (weights renormalised; a zero or missing weight never draws). */
export function drawLayer(weights: StrategyFile['layer_weights'], rng: Rng): Layer {
  const entries = LAYERS.map((layer) => [layer, weights[layer] ?? 0] as const).filter(([, w]) => w > 0);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  if (total <= 0) throw new TypeError('distractor: every layer weight is zero');
  let at = rng.next() * total;
  for (const [layer, weight] of entries) {
    at -= weight;
    if (at < 0) return layer;
  }
  return (entries.at(-1) as readonly [Layer, number])[0];
}

/** `count` of `items`, drawn without replacement, in their original order. */
export function sample<T>(items: readonly T[], count: number, rng: Rng): T[] {
  if (items.length <= count) return [...items];
  const open = items.map((_, i) => i);
  const chosen: number[] = [];
  while (chosen.length < count) chosen.push(open.splice(rng.int(0, open.length - 1), 1)[0] as number);
  return chosen.sort((a, b) => a - b).map((i) => items[i] as T);
}

export interface DrawOptions {
  /** Multiplies each optional strategy's probability (the persona's rate of slips); default 1. */
  readonly scale?: number;
  /** At most this many strategies besides the mandatory ones (see strategyBudget); default: no limit. */
  readonly budget?: number;
}

/**
 * Strategies of a layer: the mandatory ones, the others each with its probability (times `scale`, at most
 * 1), at least one; then at most `budget` of them, mandatory ones first.
 */
export function drawStrategies(file: StrategyFile, layer: Layer, rng: Rng, options: DrawOptions = {}): string[] {
  const table = Object.entries(file.strategies[layer] ?? {});
  if (table.length === 0) throw new TypeError(`distractor: layer ${layer} has no strategies`);
  const scale = options.scale ?? 1;
  const fired = table.filter(([, s]) => s.mandatory || rng.next() < Math.min(1, s.probability * scale)).map(([name, s]) => ({ name, mandatory: s.mandatory }));
  const chosen = fired.length > 0 ? fired : [{ name: (table[rng.int(0, table.length - 1)] as [string, unknown])[0], mandatory: false }];
  const mandatory = chosen.filter((s) => s.mandatory).map((s) => s.name);
  const optional = chosen.filter((s) => !s.mandatory).map((s) => s.name);
  const room = Math.max(0, (options.budget ?? Number.POSITIVE_INFINITY) - mandatory.length);
  const kept = mandatory.length > 0 ? sample(optional, room, rng) : sample(optional, Math.max(1, room), rng);
  return table.map(([name]) => name).filter((name) => mandatory.includes(name) || kept.includes(name));
}
