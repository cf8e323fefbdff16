// The distractor: PersonaGym's rule-based (legacy) and semantic three-layer noise, one text at a time.
import type { RuleStrategyConfig, StrategyFile } from '../config/schema.js';
import { wordNet, type Lexicon } from '../noise/lexicon.js';
import type { ExtractedSemantics } from '../prompts/distractor.js';
import type { Distractor } from './result.js';
import { rulesDistractor, type HeavyLayers } from './rules.js';
import { semanticDistractor, type SemanticOptions } from './semantic.js';

export type { ExtractedSemantics, HeavyLayers, SemanticOptions };
export type { Distractor, NoiseCall, NoiseContext, NoisedText, NoiseResult, NoisyVersion } from './result.js';
export { drawLayer, drawStrategies, strategyBudget } from './draws.js';
export { applyRules, layerOfRule } from './rules.js';

export interface DistractorOptions {
  /** Share of user turns noised, each drawn on its own (see `distractor.activation_probability`). */
  readonly activationProbability: number;
  readonly applyTo?: { readonly initial_query: boolean; readonly follow_up_feedback: boolean };
  /** Legacy strategies in PersonaGym's `noise_strategies` form. */
  readonly rules: readonly RuleStrategyConfig[];
  /** The strategy file (layer weights and per-layer strategies); also maps rule names to layers. */
  readonly strategies: StrategyFile;
  /** Present: the semantic three-layer distractor; absent: the rule-based (legacy) one. */
  readonly semantic?: SemanticOptions | undefined;
  readonly lexicon?: Lexicon;
  /**
   * Which turns the heavier layers (incomplete information, ambiguity, a second intent) may noise:
   * `initial_query` (default) or `every_turn`. A follow-up noised by them says something its simulated user
   * does not know it said; choose `every_turn` only when the conversation tells the simulated user what a
   * noised turn now means and what it dropped (NoisedText.means and .dropped).
   */
  readonly heavyLayers?: HeavyLayers;
}

/**
 * Creates a distractor from its options; see `setUpDistractor` in src/distractor/setup.ts for the config path.
 *
 * @example
 * const distractor = createDistractor({ activationProbability: 0.3, rules: DEFAULT_RULES, strategies });
 * distractor.noise('Book a table for 4 at 7:30', { persona, rng, call }) // the 4 and the 7:30 survive
 */
export function createDistractor(options: DistractorOptions): Distractor {
  const p = options.activationProbability;
  if (!(p >= 0 && p <= 1)) throw new TypeError(`Expected \`activationProbability\` in [0, 1], got \`${String(p)}\``);
  const heavyLayers = options.heavyLayers ?? 'initial_query';
  if (heavyLayers !== 'initial_query' && heavyLayers !== 'every_turn') throw new TypeError(`Expected \`heavyLayers\` to be initial_query or every_turn, got \`${String(heavyLayers)}\``);
  let lexicon = options.lexicon;
  const applyTo = options.applyTo ?? { initial_query: true, follow_up_feedback: true };
  if (options.semantic === undefined) {
    return rulesDistractor({ activationProbability: p, applyTo, rules: options.rules, strategies: options.strategies, heavyLayers, lexicon: () => (lexicon ??= wordNet()) });
  }
  return semanticDistractor({ activationProbability: p, applyTo, strategies: options.strategies, heavyLayers, semantic: options.semantic });
}
