// The semantic three-layer distractor: a model rewrites the text as the drawn layer and strategies say; the answer is checked for lost details and asked again.
import { catchError, defer, map, of, throwError, type Observable } from 'rxjs';
import { LAYERS, type Layer, type StrategyFile } from '../config/schema.js';
import { endsRun } from '../errors.js';
import { noiseLevel, slipRate } from '../noise/persona.js';
import { protectedTokens } from '../noise/slots.js';
import { askChecked, type Checked, type PromptModel } from '../prompts/ask.js';
import { distractorPrompt, parseNoiseAnswer } from '../prompts/distractor.js';
import { drawLayer, drawStrategies, strategyBudget, wordCount } from './draws.js';
import { detailFields, detailsOf, type Distractor, type NoiseContext, type NoiseResult, type NoisyVersion } from './result.js';
import type { HeavyLayers } from './rules.js';

export interface SemanticOptions extends PromptModel {
  /** Prompt template per layer; placeholders {persona}, {text}, {strategies}, {layer}, {noise_level}. */
  readonly templates: Readonly<Record<Layer, string>>;
}

export interface SemanticDistractorOptions {
  readonly activationProbability: number;
  readonly applyTo: Distractor['applyTo'];
  readonly strategies: StrategyFile;
  readonly heavyLayers: HeavyLayers;
  readonly semantic: SemanticOptions;
}

const skipped = (text: string, reason: string): NoiseResult => ({ original_text: text, noisy_text: text, layer: 'skipped', layer_index: 0, applied_strategies: [], extracted_semantics: null, metadata: { reason } });

function failed(text: string, layer: Layer, names: readonly string[], error: string): NoiseResult {
  return { original_text: text, noisy_text: text, layer: 'error', layer_index: 0, applied_strategies: [], extracted_semantics: null, metadata: { error, intended_layer: layer, intended_strategies: names } };
}

const versionOf = (result: NoiseResult): NoisyVersion => ({ noisy_text: result.noisy_text, noise_type: result.layer, noise_intensity: result.layer_index, applied_strategies: result.applied_strategies });

/**
 * PersonaGym's semantic distractor: a layer drawn by weight (surface noise only for a follow-up, unless
 * `heavyLayers` is `every_turn`), one or two of its strategies (by the text's length; their probabilities
 * times the persona's rate of slips), the layer's prompt filled in, and the answer checked by
 * `parseNoiseAnswer` against the text's protected tokens and the slots the model reported. A rejected
 * answer is asked again with the reason; after `validationRetries` the text stays clean (layer `error`).
 */
export function semanticDistractor(options: SemanticDistractorOptions): Distractor {
  const { semantic, strategies: file } = options;
  const p = options.activationProbability;

  const result = (text: string, context: NoiseContext): Observable<NoiseResult> =>
    defer(() => {
      const heavyAllowed = (context.initial ?? true) || options.heavyLayers === 'every_turn';
      const weights = heavyAllowed ? file.layer_weights : { surface_noise: file.layer_weights.surface_noise ?? 0 };
      if (!LAYERS.some((layer) => (weights[layer] ?? 0) > 0)) return of(skipped(text, 'heavier layers noise the initial query only'));
      const layer = drawLayer(weights, context.rng);
      const rate = slipRate(context.persona);
      const names = drawStrategies(file, layer, context.rng, { scale: rate, budget: strategyBudget(wordCount(text)) });
      const keep = protectedTokens(text);
      const table = file.strategies[layer] ?? {};
      const prompt = distractorPrompt(semantic.templates[layer], { persona: context.persona, text, layer, strategies: names, table, noiseLevel: noiseLevel(rate) });
      const check = (content: string, attempt: number): Checked<NoiseResult> => {
        const answer = parseNoiseAnswer(content, text, layer, keep);
        if (!answer.ok) return answer;
        // The model's own list, when it names strategies of this layer; else what it was asked.
        const claimed = (answer.applied ?? []).filter((name) => Object.hasOwn(table, name));
        return {
          ok: true,
          value: {
            original_text: text,
            noisy_text: answer.noisyText,
            layer,
            layer_index: LAYERS.indexOf(layer) + 1,
            applied_strategies: claimed.length > 0 ? [...new Set(claimed)] : names,
            extracted_semantics: answer.semantics,
            metadata: {
              ...(answer.slotsDropped.length === 0 ? {} : { slots_dropped: answer.slotsDropped }),
              ...detailFields(text, answer.dropped, answer.means),
              ...(attempt === 0 ? {} : { rejected_answers: attempt }),
            },
          },
        };
      };
      const asked = {
        module: 'distractor',
        prompt,
        hints: { persona: context.persona, distractor: { text, layer, strategies: names } },
        again: 'Answer again with the JSON object only, with the rewritten message in "noisy_text".',
      } as const;
      return askChecked(semantic, asked, context.call, check).pipe(
        catchError((error: unknown) => {
          // A bad key or an unreachable endpoint ends the run (converse turns them into a FatalError);
          // anything else that outlived its retries, rejected answers included, leaves this one text
          // clean, as PersonaGym does.
          if (endsRun(error)) return throwError(() => error);
          return of(failed(text, layer, names, error instanceof Error ? error.message : String(error)));
        }),
      );
    });

  return {
    type: 'semantic',
    applyTo: options.applyTo,
    result,
    noise: (text, context) =>
      defer(() => (context.rng.next() >= p ? of(skipped(text, 'activation_probability_check_failed')) : result(text, context))).pipe(
        map((noised) => ({ clean: text, sent: noised.noisy_text, versions: [versionOf(noised)], semantic: noised, ...detailsOf(noised) })),
      ),
  };
}
