// What a rule strategy is: a pure function of a text and its seeded draws that keeps the protected tokens, or reports the ones it dropped.
import type { Rng } from '../rng.js';
import type { Lexicon } from './lexicon.js';
import { findSlots, keptSpans } from './slots.js';
import type { Span } from './words.js';

/** Parameters a strategy may take (PersonaGym's `noise_strategies` keys). */
export interface StrategyParams {
  /** typo: share of words that get one typo (at least one typo). */
  readonly intensity?: number | undefined;
  /** word_swap: adjacent swaps. */
  readonly num_swaps?: number | undefined;
  readonly deletion_rate?: number | undefined;
  readonly insertion_rate?: number | undefined;
  readonly replacement_rate?: number | undefined;
}

export interface StrategyContext {
  readonly rng: Rng;
  readonly params: StrategyParams;
  readonly lexicon: Lexicon;
  /**
   * The protected tokens of the clean text the noise started from (`protectedTokens`): every occurrence is
   * left as it is. Absent: the strategy finds the slots of the text it is given (with the tagger).
   */
  readonly keep?: readonly string[] | undefined;
}

/** What a strategy made: the text, and the details of its input it removed or made vague (verbatim, as the input had them). */
export interface Noised {
  readonly text: string;
  readonly dropped: readonly string[];
}

/**
 * A rule strategy. Surface strategies keep every protected token of their input verbatim and drop nothing;
 * the heavier ones (incomplete information, ambiguity) may remove protected tokens, and then list each in
 * `dropped` (a dropped phrase holds the tokens it removed).
 */
export type Strategy = (text: string, context: StrategyContext) => Noised;

/** A result that drops nothing. */
export const kept = (text: string): Noised => ({ text, dropped: [] });

/** The spans of `text` a strategy must leave alone. */
export const spansOf = (text: string, context: StrategyContext): Span[] => (context.keep === undefined ? findSlots(text, context.lexicon) : keptSpans(text, context.keep));
