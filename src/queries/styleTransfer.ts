// Style transfer: a dataset query rewritten in the persona's voice, as PersonaGym does before a conversation.
import { Observable, catchError, concatMap, defer, of, throwError } from 'rxjs';
import { endsRun } from '../errors.js';
import { askChecked, type PromptCall, type PromptModel } from '../prompts/ask.js';
import { parseStyleAnswer, styleTransferPrompt } from '../prompts/styleTransfer.js';
import type { Rng } from '../rng.js';
import type { Features } from '../types.js';

/** PersonaGym's length categories, drawn (normal around short/medium) when the persona has no `query_length_pref`. */
export const LENGTHS = ['very_short', 'short', 'medium', 'long'] as const;
const LENGTH_WEIGHTS = [0.16, 0.34, 0.34, 0.16];

/** The persona's `query_length_pref`, or a seeded draw. */
export function targetLength(persona: Features, rng: Rng): string {
  const preferred = persona.query_length_pref;
  if (typeof preferred === 'string' && preferred.trim() !== '') return preferred.trim();
  let at = rng.next();
  for (const [i, weight] of LENGTH_WEIGHTS.entries()) {
    at -= weight;
    if (at < 0) return LENGTHS[i] as string;
  }
  return 'medium';
}

export interface StyleTransferOptions extends PromptModel {
  /** Placeholders {persona}, {query}, {target_length}, {target_turns}. */
  readonly template: string;
  /** PersonaGym's partial template (2-4 relevant traits); used for half the transfers when given. */
  readonly partialTemplate?: string | undefined;
  /** Share of tasks restyled (tasks whose input gave `adapted_query` never are). */
  readonly probability: number;
}

/** What style transfer did to one query (`metadata.style_transfer`). */
export interface StyleTransferResult {
  readonly applied: boolean;
  readonly adapted_query: string;
  readonly inferred_domain: string;
  readonly inferred_scenario: string;
  readonly target_length: string;
  readonly prompt_type: 'full' | 'partial' | 'none';
  readonly error?: string;
}

export interface StyleTransfer {
  readonly probability: number;
  adapt(query: string, persona: Features, targetTurns: number, rng: Rng, call: PromptCall): Observable<StyleTransferResult>;
}

/**
 * Rewrites a query in the persona's voice (PersonaGym's style transfer): target length from the persona's
 * `query_length_pref` or a seeded draw, domain and scenario inferred. When the model's answers are
 * rejected every time, or a call fails for good, the original query is kept and the result says why.
 */
export function createStyleTransfer(options: StyleTransferOptions): StyleTransfer {
  return {
    probability: options.probability,
    adapt: (query, persona, targetTurns, rng, call) =>
      defer(() => {
        const length = targetLength(persona, rng);
        const partial = options.partialTemplate !== undefined && rng.next() < 0.5;
        const template = partial ? (options.partialTemplate) : options.template;
        const prompt = styleTransferPrompt(template, { persona, query, targetLength: length, targetTurns });
        return askChecked(options, { module: 'style_transfer', prompt, hints: { persona, styleTransfer: { query, targetLength: length } } }, call, (content) => parseStyleAnswer(content, query)).pipe(
          concatMap(({ adapted, domain, scenario }) => of<StyleTransferResult>({ applied: true, adapted_query: adapted, inferred_domain: domain, inferred_scenario: scenario, target_length: length, prompt_type: partial ? 'partial' : 'full' })),
          catchError((error: unknown) => {
            if (endsRun(error)) return throwError(() => error);
            return of<StyleTransferResult>({ applied: false, adapted_query: query, inferred_domain: 'general', inferred_scenario: 'casual', target_length: length, prompt_type: 'none', error: error instanceof Error ? error.message : String(error) });
          }),
        );
      }),
  };
}


