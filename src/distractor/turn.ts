// Where the distractor meets a stream: one text noised with draws seeded by (run seed, key, purpose).
import { of, type Observable } from 'rxjs';
import type { PromptCall } from '../prompts/ask.js';
import { rngFor } from '../rng.js';
import type { Features } from '../types.js';
import type { Distractor, NoisedText, NoiseResult } from './result.js';

/** Which text is noised: its seeds, its persona, and the call that makes (and retries, and counts) the model calls. */
export interface NoiseAt {
  readonly seed: number;
  /** The task's or text's key. */
  readonly key: string;
  /** `noise/initial`, `noise/turn/2`, `noise/v0`: each purpose draws from its own generator. */
  readonly purpose: string;
  readonly persona: Features;
  readonly call: PromptCall;
  /** Whether the text is a conversation's first message; default: whether `purpose` is INITIAL_PURPOSE. */
  readonly initial?: boolean;
}

/** The purpose of a conversation's first message: its noise draws, and the turn the heavier layers may noise. */
export const INITIAL_PURPOSE = 'noise/initial';

/**
 * Noises one user turn of a conversation (the opening, a follow-up), or leaves it clean: no distractor,
 * a turn it does not apply to (`applies`), or its activation draw. Undefined when not noised at all.
 */
export function noiseTurn(distractor: Distractor | undefined, text: string, at: NoiseAt & { readonly applies: boolean }): Observable<NoisedText | undefined> {
  if (distractor === undefined || !at.applies) return of(undefined);
  return distractor.noise(text, { persona: at.persona, rng: rngFor(at.seed, at.key, at.purpose), call: at.call, initial: at.initial ?? at.purpose === INITIAL_PURPOSE });
}

/** One noisy version of a text as PersonaGym's NoiseResult (`personaflow noise`): no activation draw, and a text counts as a first message unless `initial` says otherwise. */
export function noiseVersion(distractor: Distractor, text: string, at: NoiseAt): Observable<NoiseResult> {
  return distractor.result(text, { persona: at.persona, rng: rngFor(at.seed, at.key, at.purpose), call: at.call, initial: at.initial ?? true });
}
