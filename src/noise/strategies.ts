// Every rule strategy by its PersonaGym name: the legacy ones, and the layer strategies that need no model.
import { contextDependency, intentAmbiguity, mindChanging, missingSlots, multiIntent, selfContradiction, unclearPriority, vagueSlotValues } from './layers.js';
import type { Strategy } from './strategy.js';
import { colloquialSpeech, emotionalAttitude, incompleteSentence, negativeExpression, punctuationFormat, realLifeFragments, synonymReplacement, typo, wordDeletion, wordInsertion, wordSegmentation, wordSwap } from './surface.js';

export type { Noised, Strategy, StrategyContext, StrategyParams } from './strategy.js';
export { FILLERS, typoCount } from './surface.js';

/** Every rule-based strategy by its PersonaGym name (legacy names and layer-strategy names). */
export const STRATEGIES: Readonly<Record<string, Strategy>> = {
  typo,
  word_swap: wordSwap,
  word_deletion: wordDeletion,
  word_insertion: wordInsertion,
  synonym_replacement: synonymReplacement,
  // Surface-noise strategies of the semantic layers that need no model.
  colloquial_speech: colloquialSpeech,
  punctuation_format: punctuationFormat,
  word_segmentation: wordSegmentation,
  incomplete_sentence: incompleteSentence,
  emotional_attitude: emotionalAttitude,
  typo_misspelling: typo,
  synonym_rewrite: synonymReplacement,
  negative_expression: negativeExpression,
  real_life_fragments: realLifeFragments,
  // Offline stand-ins for the layers a model does better (used by `sim` and in rule mode).
  missing_slots: missingSlots,
  vague_slot_values: vagueSlotValues,
  context_dependency: contextDependency,
  unclear_priority: unclearPriority,
  multi_intent: multiIntent,
  intent_ambiguity: intentAmbiguity,
  self_contradiction: selfContradiction,
  mind_changing: mindChanging,
};

/** Strategies that only move, add or re-punctuate words: every original word stem survives them. */
export const WORD_KEEPING = ['word_swap', 'word_insertion', 'punctuation_format', 'emotional_attitude', 'context_dependency', 'unclear_priority', 'multi_intent', 'self_contradiction', 'negative_expression', 'real_life_fragments'] as const;
