// Where the distractor meets a stream: one text noised with draws seeded by (run seed, key, purpose).
import { of, type Observable } from 'rxjs';
import type { PromptCall } from '../prompts/ask.js';
import { rngFor } from '../rng.js';
import type { Features } from '../types.js';
import type { Distractor, NoisedText, NoiseResult } from './distractor.js';

/** Which text is noised: its seeds, its persona, and the call that makes (and retries, and counts) the model calls. */
export interface NoiseAt {
  readonly seed: number;
  /** The task's or text's key. */
  readonly key: string;
  /** `noise/initial`, `noise/turn/2`, `noise/v0`: each purpose draws from its own generator. */
  readonly purpose: string;
  readonly persona: Features;
  readonly call: PromptCall;
}

/**
 * Noises one user turn of a conversation (the opening, a follow-up), or leaves it clean: no distractor,
 * a turn it does not apply to (`applies`), or its activation draw. Undefined when not noised at all.
 */
export function noiseTurn(distractor: Distractor | undefined, text: string, at: NoiseAt & { readonly applies: boolean }): Observable<NoisedText | undefined> {
  if (distractor === undefined || !at.applies) return of(undefined);
  return distractor.noise(text, { persona: at.persona, rng: rngFor(at.seed, at.key, at.purpose), call: at.call });
}

/** One noisy version of a text as PersonaGym's NoiseResult (`personaflow noise`): always noised, no activation draw. */
export function noiseVersion(distractor: Distractor, text: string, at: NoiseAt): Observable<NoiseResult> {
  return distractor.result(text, { persona: at.persona, rng: rngFor(at.seed, at.key, at.purpose), call: at.call });
}
