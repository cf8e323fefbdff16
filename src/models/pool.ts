// Weighted model pool (PersonaGym's `model_pool`): which assistant model a conversation talks to.
import type { Rng } from '../rng.js';
import type { ChatModel, ModelRef } from '../chat.js';

export interface PoolEntry {
  readonly model: ChatModel;
  readonly weight: number;
  /** Per-model inference settings (PersonaGym's `inference`), used when the request does not set them. */
  readonly temperature?: number | undefined;
  readonly maxCompletionTokens?: number | undefined;
}

export interface ModelPool {
  readonly entries: readonly PoolEntry[];
  /**
   * Draws the index of an entry with probability proportional to its weight. An index, not a name:
   * two entries may name the same model on different endpoints (two vLLM servers).
   */
  draw(rng: Rng): number;
}

export const refKey = (ref: ModelRef): string => `${ref.provider}/${ref.model}`;

/**
 * Builds a pool. Weights need not sum to 1 (they are normalised); each must be finite and ≥ 0 and at
 * least one must be positive.
 *
 * @example
 * createPool([{ model: a, weight: 0.8 }, { model: b, weight: 0.2 }]).draw(rngFor(seed, key, 'assistant_model')) // 0 or 1
 */
export function createPool(entries: readonly PoolEntry[]): ModelPool {
  if (entries.length === 0) throw new TypeError('Expected at least one model in the pool, got none');
  for (const entry of entries) {
    if (!Number.isFinite(entry.weight) || entry.weight < 0) {
      throw new TypeError(`Expected the weight of ${refKey(entry.model)} to be a finite number ≥ 0, got \`${String(entry.weight)}\``);
    }
  }
  const total = entries.reduce((sum, entry) => sum + entry.weight, 0);
  if (total <= 0) throw new TypeError('Expected at least one model with a positive weight, got all zero');
  const cumulative: number[] = [];
  let running = 0;
  for (const entry of entries) {
    running += entry.weight / total;
    cumulative.push(running);
  }
  const lastWeighted = entries.findLastIndex((entry) => entry.weight > 0);
  return {
    entries,
    draw(rng) {
      const x = rng.next();
      const index = cumulative.findIndex((bound, i) => x < bound && (entries[i]?.weight ?? 0) > 0);
      // Rounding can leave x above the last bound: fall back to the last model with weight.
      return index === -1 ? lastWeighted : index;
    },
  };
}
