// What the distractor hands back: PersonaGym's NoiseResult and noisy versions, and the noised turn with what it dropped and now means.
import type { Observable } from 'rxjs';
import type { PromptCall } from '../prompts/ask.js';
import type { ExtractedSemantics } from '../prompts/distractor.js';
import type { Rng } from '../rng.js';
import type { Features } from '../types.js';

/** PersonaGym's NoiseResult, field for field. Ours adds to `metadata`: `dropped` and `means` (see NoisedText). */
export interface NoiseResult {
  readonly original_text: string;
  readonly noisy_text: string;
  /** surface_noise, incomplete_info, semantic_ambiguity; or skipped, none, error. */
  readonly layer: string;
  /** 1, 2, 3 for the layers; 0 otherwise. */
  readonly layer_index: number;
  /** The strategies that changed the text: empty whenever `noisy_text` equals `original_text`. */
  readonly applied_strategies: readonly string[];
  readonly extracted_semantics: ExtractedSemantics | null;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** One element of PersonaGym's `noisy_versions` lists. */
export interface NoisyVersion {
  readonly noisy_text: string;
  readonly noise_type: string;
  readonly noise_intensity: number;
  readonly applied_strategies?: readonly string[];
}

/** A noised user turn: the text sent on, what PersonaGym records about it, and what the simulated user must know about it. */
export interface NoisedText {
  readonly clean: string;
  readonly sent: string;
  readonly versions: readonly NoisyVersion[];
  /** The semantic distractor's full result (absent for the legacy distractor). */
  readonly semantic?: NoiseResult;
  /**
   * Details of `clean` that `sent` no longer carries (removed or made vague), as `clean` had them ("in
   * Python", "4", "next Friday"). The user still knows them: the simulated user may give them when the
   * assistant asks, and must not contradict them. Empty when nothing was dropped (always under surface noise).
   */
  readonly dropped: readonly string[];
  /**
   * What `sent` now asks, in plain words without the surface noise: `clean` when the noise changed only the
   * form; otherwise the request as narrowed or widened by the heavier layers (a detail left out, a second
   * request added, a change of mind). The simulated user's later turns must follow from this, not from `clean`.
   */
  readonly means: string;
}

/** Makes the distractor's model calls; the caller adds retries and usage accounting. */
export type NoiseCall = PromptCall;

export interface NoiseContext {
  readonly persona: Features;
  /** The draws of this one text: activation, layer, strategies, version. */
  readonly rng: Rng;
  readonly call: NoiseCall;
  /**
   * Whether the text is the first message of a conversation (default true: `personaflow noise` noises
   * queries). Follow-ups get only surface noise unless the distractor's `heavyLayers` is `every_turn`.
   */
  readonly initial?: boolean;
}

export interface Distractor {
  /** PersonaGym's `distractor_type`. */
  readonly type: 'semantic' | 'legacy';
  readonly applyTo: { readonly initial_query: boolean; readonly follow_up_feedback: boolean };
  /** Noises one user turn (or leaves it clean: activation, no strategy drawn, or a distractor error). */
  noise(text: string, context: NoiseContext): Observable<NoisedText>;
  /** One noisy version as a NoiseResult (`personaflow noise`); always tries to noise (no activation draw). */
  result(text: string, context: NoiseContext): Observable<NoiseResult>;
}

/** A turn left as it was. */
export const untouched = (text: string, versions: readonly NoisyVersion[] = [], semantic?: NoiseResult): NoisedText => ({ clean: text, sent: text, versions, ...(semantic === undefined ? {} : { semantic }), dropped: [], means: text });

/** The dropped details and the meaning a result's metadata carries. */
export function detailsOf(result: NoiseResult): { readonly dropped: readonly string[]; readonly means: string } {
  const { dropped, means } = result.metadata;
  return {
    dropped: Array.isArray(dropped) ? dropped.filter((d): d is string => typeof d === 'string') : [],
    means: typeof means === 'string' ? means : result.original_text,
  };
}

/** The metadata fields for what a noise dropped and now means: each only when it says something. */
export const detailFields = (clean: string, dropped: readonly string[], means: string): Record<string, unknown> => ({
  ...(dropped.length === 0 ? {} : { dropped }),
  ...(means === clean ? {} : { means }),
});
