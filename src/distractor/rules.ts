// The rule-based (legacy) distractor: PersonaGym's noise_strategies, scaled by the persona, keeping every protected token.
import { defer, of } from 'rxjs';
import { LAYERS, type Layer, type RuleStrategyConfig, type StrategyFile } from '../config/schema.js';
import type { Lexicon } from '../noise/lexicon.js';
import { slipRate } from '../noise/persona.js';
import { protectedTokens } from '../noise/slots.js';
import { STRATEGIES, type StrategyParams } from '../noise/strategies.js';
import { pick, type Rng } from '../rng.js';
import { sample, strategyBudget, wordCount } from './draws.js';
import { detailFields, untouched, type Distractor, type NoiseContext, type NoiseResult, type NoisyVersion } from './result.js';

/** Which turns the heavier layers (incomplete information, ambiguity) may noise. */
export type HeavyLayers = 'initial_query' | 'every_turn';

/** The layer a rule strategy belongs to (PersonaGym's legacy names count as surface noise). */
export function layerOfRule(name: string, file: StrategyFile): Layer {
  for (const layer of LAYERS) if (file.strategies[layer]?.[name] !== undefined) return layer;
  return 'surface_noise';
}

/** What applying some rule strategies made. */
export interface Applied {
  readonly text: string;
  /** The strategies that changed the text, in the order they ran. */
  readonly applied: readonly string[];
  /** What they dropped (see NoisedText.dropped). */
  readonly dropped: readonly string[];
  /** The text after the heavier strategies only (see NoisedText.means). */
  readonly means: string;
}

export interface RuleRun {
  readonly rng: Rng;
  readonly lexicon: Lexicon;
  /** The clean text's protected tokens (computed from `text` when absent). */
  readonly keep?: readonly string[];
  /** Whether a strategy belongs to a heavier layer; those run first, so `means` is the request before the slips. */
  readonly heavy?: (name: string) => boolean;
}

/**
 * Applies rule strategies to a text, the heavier ones first; a strategy that changes nothing is not counted
 * as applied. Unknown names are skipped (the semantic path handles those).
 */
export function applyRules(text: string, rules: readonly { readonly name: string; readonly params?: StrategyParams }[], run: RuleRun): Applied {
  const heavy = run.heavy ?? (() => false);
  let keep = run.keep ?? protectedTokens(text, run.lexicon);
  const ordered = [...rules.filter((rule) => heavy(rule.name)), ...rules.filter((rule) => !heavy(rule.name))];
  let out = text;
  let means = text;
  const applied: string[] = [];
  const dropped: string[] = [];
  for (const { name, params } of ordered) {
    const strategy = STRATEGIES[name];
    if (strategy === undefined) continue;
    const next = strategy(out, { rng: run.rng, params: params ?? {}, lexicon: run.lexicon, keep });
    if (next.text === out) continue;
    out = next.text;
    applied.push(name);
    for (const detail of next.dropped) if (!dropped.includes(detail)) dropped.push(detail);
    if (heavy(name)) {
      means = out;
      // What a heavier rule left of a slot it took apart stays protected: the slips after it must not
      // finish the job ("30 minutes" → "not too many minutes" keeps "minutes").
      keep = keep.flatMap((token) => (out.includes(token) ? [token] : (token.match(/[\p{L}\p{N}]+/gu) ?? []).filter((word) => out.includes(word))));
    }
  }
  return { text: out, applied, dropped, means };
}

/** The items in a seeded order. */
function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** A rule with its probability and rates multiplied by the persona's rate of slips (each at most 1). */
function scaled(rule: RuleStrategyConfig, rate: number): RuleStrategyConfig {
  const times = (value: number | undefined): number | undefined => (value === undefined ? undefined : Math.min(1, value * rate));
  return { ...rule, probability: times(rule.probability) ?? 1, intensity: times(rule.intensity), deletion_rate: times(rule.deletion_rate), insertion_rate: times(rule.insertion_rate), replacement_rate: times(rule.replacement_rate) };
}

export interface RulesOptions {
  readonly activationProbability: number;
  readonly applyTo: Distractor['applyTo'];
  readonly rules: readonly RuleStrategyConfig[];
  readonly strategies: StrategyFile;
  readonly heavyLayers: HeavyLayers;
  readonly lexicon: () => Lexicon;
}

/**
 * PersonaGym's legacy distractor, made to look like people: each rule (its probability and rates times the
 * persona's `slipRate`) fires on its own and makes a version from the clean text; one version is sent, and
 * a text of SECOND_STRATEGY_WORDS words or more may get a second fired rule on top of it. A rule that
 * changes nothing makes no version. Rules of the heavier layers noise the initial query only, unless
 * `heavyLayers` is `every_turn`.
 */
export function rulesDistractor(options: RulesOptions): Distractor {
  const p = options.activationProbability;
  const heavy = (name: string): boolean => layerOfRule(name, options.strategies) !== 'surface_noise';
  const usable = (initial: boolean): readonly RuleStrategyConfig[] => (initial || options.heavyLayers === 'every_turn' ? options.rules : options.rules.filter((rule) => !heavy(rule.name)));

  // Rule mode for `personaflow noise`: the rules that fire (at most the text's budget) one after the other.
  const result = (text: string, { rng, persona, initial }: NoiseContext) =>
    defer(() => {
      const rate = slipRate(persona);
      const pool = usable(initial ?? true).map((rule) => ({ rule, run: scaled(rule, rate) }));
      const fired = pool.filter(({ run }) => rng.next() < run.probability);
      let chosen = sample(fired, strategyBudget(wordCount(text)), rng);
      if (chosen.length === 0 && pool.length > 0) chosen = [pick(rng, pool)];
      const lexicon = options.lexicon();
      const run = { rng, lexicon, keep: protectedTokens(text, lexicon), heavy };
      let out = applyRules(text, chosen.map(({ rule, run: params }) => ({ name: rule.name, params })), run);
      // A rule that found nothing to change is not reported; the others are tried, in a seeded order, until one changes the text.
      for (const other of shuffled(pool.filter((entry) => !chosen.includes(entry)), rng)) {
        if (out.applied.length > 0) break;
        out = applyRules(text, [{ name: other.rule.name, params: other.run }], run);
      }
      const index = Math.max(-1, ...out.applied.map((name) => LAYERS.indexOf(layerOfRule(name, options.strategies))));
      return of<NoiseResult>({
        original_text: text,
        noisy_text: out.text,
        layer: index < 0 ? 'none' : (LAYERS[index] as Layer),
        layer_index: index + 1,
        applied_strategies: out.applied,
        extracted_semantics: null,
        metadata: { mode: 'rules', ...detailFields(text, out.dropped, out.means) },
      });
    });

  return {
    type: 'legacy',
    applyTo: options.applyTo,
    result,
    // `noise_intensity` is the rule's configured probability, as PersonaGym records it.
    noise: (text, { rng, persona, initial }) =>
      defer(() => {
        if (rng.next() >= p) return of(untouched(text));
        const rate = slipRate(persona);
        const lexicon = options.lexicon();
        let run: RuleRun | undefined;
        const made: Array<{ rule: RuleStrategyConfig; params: StrategyParams; version: NoisyVersion; out: ReturnType<typeof applyRules> }> = [];
        for (const rule of usable(initial ?? true)) {
          const params = scaled(rule, rate);
          if (rng.next() >= params.probability) continue;
          run ??= { rng, lexicon, keep: protectedTokens(text, lexicon), heavy };
          const out = applyRules(text, [{ name: rule.name, params }], run);
          if (out.applied.length === 0) continue;
          made.push({ rule, params, out, version: { noisy_text: out.text, noise_type: rule.name, noise_intensity: rule.probability } });
        }
        if (made.length === 0 || run === undefined) return of(untouched(text));
        const versions = made.map((m) => m.version);
        const first = pick(rng, made);
        let sent = first.out;
        const others = made.filter((m) => m !== first);
        if (strategyBudget(wordCount(text)) >= 2 && others.length > 0) {
          const second = pick(rng, others);
          const both = applyRules(text, [first, second].map((m) => ({ name: m.rule.name, params: m.params })), run);
          if (both.applied.length === 2) {
            sent = both;
            versions.push({ noisy_text: both.text, noise_type: both.applied.join('+'), noise_intensity: Math.max(first.rule.probability, second.rule.probability), applied_strategies: both.applied });
          }
        }
        return of({ clean: text, sent: sent.text, versions, dropped: sent.dropped, means: sent.means });
      }),
  };
}
