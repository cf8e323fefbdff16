// The distractor: PersonaGym's rule-based (legacy) and semantic three-layer noise, one text at a time.
import { Observable, catchError, defer, map, of, throwError } from 'rxjs';
import { LAYERS, type Layer, type RuleStrategyConfig, type StrategyFile } from '../config/schema.js';
import type { ChatModel } from '../chat.js';
import { endsRun } from '../errors.js';
import { wordNet, type Lexicon } from '../noise/lexicon.js';
import { STRATEGIES } from '../noise/strategies.js';
import { askChecked, type Checked, type PromptCall } from '../prompts/ask.js';
import { distractorPrompt, parseNoiseAnswer, type ExtractedSemantics } from '../prompts/distractor.js';
import type { Rng } from '../rng.js';
import type { Features } from '../types.js';

export type { ExtractedSemantics };

/** PersonaGym's NoiseResult, field for field. */
export interface NoiseResult {
  readonly original_text: string;
  readonly noisy_text: string;
  /** surface_noise, incomplete_info, semantic_ambiguity; or skipped, none, error. */
  readonly layer: string;
  /** 1, 2, 3 for the layers; 0 otherwise. */
  readonly layer_index: number;
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

/** A noised user turn: the text sent on, and what PersonaGym records about it. */
export interface NoisedText {
  readonly clean: string;
  readonly sent: string;
  readonly versions: readonly NoisyVersion[];
  /** The semantic distractor's full result (absent for the legacy distractor). */
  readonly semantic?: NoiseResult;
}

/** Makes the distractor's model calls; the caller adds retries and usage accounting. */
export type NoiseCall = PromptCall;

export interface NoiseContext {
  readonly persona: Features;
  /** The draws of this one text: activation, layer, strategies, version. */
  readonly rng: Rng;
  readonly call: NoiseCall;
}

export interface Distractor {
  /** PersonaGym's `distractor_type`. */
  readonly type: 'semantic' | 'legacy';
  readonly applyTo: { readonly initial_query: boolean; readonly follow_up_feedback: boolean };
  /** Noises one user turn (or leaves it clean: activation, no strategy drawn, or a distractor error). */
  noise(text: string, context: NoiseContext): Observable<NoisedText>;
  /** One noisy version as a NoiseResult (`personaflow noise`); always noises (no activation draw). */
  result(text: string, context: NoiseContext): Observable<NoiseResult>;
}

export interface SemanticOptions {
  readonly model: ChatModel;
  readonly temperature?: number | undefined;
  readonly maxCompletionTokens?: number | undefined;
  /** Prompt template per layer; placeholders {persona}, {text}, {strategies}, {layer}. */
  readonly templates: Readonly<Record<Layer, string>>;
  /** Answers the validation may reject per text before the text stays clean (layer `error`). */
  readonly validationRetries: number;
}

export interface DistractorOptions {
  readonly activationProbability: number;
  readonly applyTo?: { readonly initial_query: boolean; readonly follow_up_feedback: boolean };
  /** Legacy strategies in PersonaGym's `noise_strategies` form. */
  readonly rules: readonly RuleStrategyConfig[];
  /** The strategy file (layer weights and per-layer strategies); also maps rule names to layers. */
  readonly strategies: StrategyFile;
  /** Present: the semantic three-layer distractor; absent: the rule-based (legacy) one. */
  readonly semantic?: SemanticOptions | undefined;
  readonly lexicon?: Lexicon;
}

const skipped = (text: string): NoiseResult => ({
  original_text: text,
  noisy_text: text,
  layer: 'skipped',
  layer_index: 0,
  applied_strategies: [],
  extracted_semantics: null,
  metadata: { reason: 'activation_probability_check_failed' },
});

const versionOf = (result: NoiseResult): NoisyVersion => ({
  noisy_text: result.noisy_text,
  noise_type: result.layer,
  noise_intensity: result.layer_index,
  applied_strategies: result.applied_strategies,
});

/** The layer a rule strategy belongs to (PersonaGym's legacy names count as surface noise). */
function layerOfRule(name: string, file: StrategyFile): Layer {
  for (const layer of LAYERS) if (file.strategies[layer]?.[name] !== undefined) return layer;
  return 'surface_noise';
}

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

/** Strategies of a layer: the mandatory ones, the others each with its probability, at least one. */
export function drawStrategies(file: StrategyFile, layer: Layer, rng: Rng): string[] {
  const table = Object.entries(file.strategies[layer] ?? {});
  if (table.length === 0) throw new TypeError(`distractor: layer ${layer} has no strategies`);
  const chosen = table.filter(([, s]) => s.mandatory || rng.next() < s.probability).map(([name]) => name);
  return chosen.length > 0 ? chosen : [(table[rng.int(0, table.length - 1)] as [string, unknown])[0]];
}

/** Applies rule strategies in order (unknown names are skipped; the semantic path handles those). */
export function applyRules(text: string, names: readonly { name: string; params?: RuleStrategyConfig }[], rng: Rng, lexicon: Lexicon): { text: string; applied: string[] } {
  let out = text;
  const applied: string[] = [];
  for (const { name, params } of names) {
    const strategy = STRATEGIES[name];
    if (strategy === undefined) continue;
    out = strategy(out, { rng, params: params ?? {}, lexicon });
    applied.push(name);
  }
  return { text: out, applied };
}

/** Creates a distractor from its options; see `distractorOptions` in src/noise/setup.ts for the config path. */
export function createDistractor(options: DistractorOptions): Distractor {
  const p = options.activationProbability;
  if (!(p >= 0 && p <= 1)) throw new TypeError(`Expected \`activationProbability\` in [0, 1], got \`${String(p)}\``);
  let lexicon = options.lexicon;
  const words = (): Lexicon => (lexicon ??= wordNet());
  const applyTo = options.applyTo ?? { initial_query: true, follow_up_feedback: true };
  const { semantic } = options;

  if (semantic === undefined) {
    // Rule mode for `personaflow noise`: the strategies that fire are applied one after the other.
    const result = (text: string, { rng }: NoiseContext): Observable<NoiseResult> =>
      defer(() => {
        const fired = options.rules.filter((rule) => rng.next() < rule.probability);
        const chosen = fired.length > 0 || options.rules.length === 0 ? fired : [options.rules[rng.int(0, options.rules.length - 1)] as RuleStrategyConfig];
        const { text: noisy, applied } = applyRules(text, chosen.map((rule) => ({ name: rule.name, params: rule })), rng, words());
        const layers = applied.map((name) => LAYERS.indexOf(layerOfRule(name, options.strategies)));
        const index = layers.length === 0 ? -1 : Math.max(...layers);
        return of({
          original_text: text,
          noisy_text: noisy,
          layer: index < 0 ? 'none' : (LAYERS[index] as Layer),
          layer_index: index + 1,
          applied_strategies: applied,
          extracted_semantics: null,
          metadata: { mode: 'rules' },
        });
      });
    return {
      type: 'legacy',
      applyTo,
      result,
      // PersonaGym's legacy distractor: each strategy, with its probability, makes its own version from the
      // clean text; one version, drawn uniformly, is sent. `noise_intensity` is the strategy's probability,
      // as PersonaGym records it.
      noise: (text, { rng }) =>
        defer(() => {
          if (rng.next() >= p) return of({ clean: text, sent: text, versions: [] });
          const versions: NoisyVersion[] = [];
          for (const rule of options.rules) {
            if (rng.next() >= rule.probability) continue;
            const { text: noisy } = applyRules(text, [{ name: rule.name, params: rule }], rng, words());
            versions.push({ noisy_text: noisy, noise_type: rule.name, noise_intensity: rule.probability });
          }
          const sent = versions.length === 0 ? text : (versions[rng.int(0, versions.length - 1)] as NoisyVersion).noisy_text;
          return of({ clean: text, sent, versions });
        }),
    };
  }

  const semanticResult = (text: string, context: NoiseContext): Observable<NoiseResult> =>
    defer(() => {
      const layer = drawLayer(options.strategies.layer_weights, context.rng);
      const names = drawStrategies(options.strategies, layer, context.rng);
      const prompt = distractorPrompt(semantic.templates[layer], { persona: context.persona, text, layer, strategies: names, table: options.strategies.strategies[layer] });
      const check = (content: string, attempt: number): Checked<NoiseResult> => {
        const answer = parseNoiseAnswer(content, text, layer);
        if (!answer.ok) return answer;
        // The model's own list, when it names strategies it was asked for; else what it was asked.
        const claimed = (answer.applied ?? []).filter((name) => names.includes(name));
        return {
          ok: true,
          value: {
            original_text: text,
            noisy_text: answer.noisyText,
            layer,
            layer_index: LAYERS.indexOf(layer) + 1,
            applied_strategies: claimed.length > 0 ? claimed : names,
            extracted_semantics: answer.semantics,
            metadata: { ...(answer.slotsDropped.length === 0 ? {} : { slots_dropped: answer.slotsDropped }), ...(attempt === 0 ? {} : { rejected_answers: attempt }) },
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
    applyTo,
    result: semanticResult,
    noise: (text, context) =>
      defer(() => (context.rng.next() >= p ? of(skipped(text)) : semanticResult(text, context))).pipe(
        map((result) => ({ clean: text, sent: result.noisy_text, versions: [versionOf(result)], semantic: result })),
      ),
  };
}

function failed(text: string, layer: Layer, names: readonly string[], error: string): NoiseResult {
  return { original_text: text, noisy_text: text, layer: 'error', layer_index: 0, applied_strategies: [], extracted_semantics: null, metadata: { error, intended_layer: layer, intended_strategies: names } };
}
