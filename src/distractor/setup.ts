// From configuration to a Distractor: strategy file, prompt templates, model.
import { join } from 'node:path';
import { loadYamlFile } from '../config/load.js';
import { LAYERS, strategyFileSchema, type Config, type Layer, type StrategyFile } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { ModelSettings } from '../models/build.js';
import { PACKAGE_CONFIG_DIR, locateConfigPath } from '../paths.js';
import { DISTRACTOR_TEMPLATE, distractorTemplate } from '../prompts/distractor.js';
import { loadTemplate } from '../prompts/template.js';
import { createDistractor, type Distractor } from './distractor.js';

export const DEFAULT_STRATEGY_FILE = join(PACKAGE_CONFIG_DIR, 'distractor_strategy.yaml');

/** PersonaGym's shipped `noise_strategies`, used when the config lists none. */
export const DEFAULT_RULES = [
  { name: 'typo', probability: 0.3, intensity: 0.1 },
  { name: 'word_swap', probability: 0.2, num_swaps: 1 },
  { name: 'word_deletion', probability: 0.1, deletion_rate: 0.05 },
  { name: 'word_insertion', probability: 0.1, insertion_rate: 0.05 },
] as const;

export interface DistractorSetup {
  /** `--semantic` (else `distractor.use_semantic`). */
  readonly semantic?: boolean | undefined;
  /** `--strategy FILE` (else `distractor.strategy_path`, else the bundled file). */
  readonly strategyFile?: string | undefined;
  /** The distractor's model (required for the semantic distractor; see buildModels' `distractor` flag). */
  readonly model?: ModelSettings | undefined;
}

/** Loads a strategy file and checks that every layer with a weight has strategies to draw from. */
export async function loadStrategyFile(path: string): Promise<StrategyFile> {
  const file = await loadYamlFile(path, strategyFileSchema, 'distractor strategy file');
  const weighted = LAYERS.filter((layer) => (file.layer_weights[layer] ?? 0) > 0);
  if (weighted.length === 0) throw new ConfigError(`${path}: layer_weights: at least one layer needs a weight above 0`);
  for (const layer of weighted) {
    if (Object.keys(file.strategies[layer] ?? {}).length === 0) throw new ConfigError(`${path}: strategies.${layer}: the layer has weight ${file.layer_weights[layer]} but no strategies`);
  }
  return file;
}

/** Builds the run's distractor from `distractor` in the config (PersonaGym's keys) and the flags. */
export async function setUpDistractor(config: Config, baseDir: string, setup: DistractorSetup = {}): Promise<Distractor> {
  const section = config.distractor;
  const semantic = setup.semantic ?? section.use_semantic;
  const strategyPath = setup.strategyFile ?? (section.strategy_path === undefined ? undefined : locateConfigPath(section.strategy_path, baseDir));
  // The bundled file also maps rule names to layers in rule mode; a user's file is read only when it is used.
  const strategies = await loadStrategyFile(semantic && strategyPath !== undefined ? strategyPath : DEFAULT_STRATEGY_FILE);
  let templates: Record<Layer, string> | undefined;
  if (semantic) {
    if (setup.model === undefined) throw new TypeError('setUpDistractor: the semantic distractor needs a model');
    const entries = await Promise.all(LAYERS.map(async (layer) => [layer, await loadTemplate(section.templates[layer], baseDir, `distractor.templates.${layer}`, distractorTemplate(layer), DISTRACTOR_TEMPLATE)] as const));
    templates = Object.fromEntries(entries) as Record<Layer, string>;
  }
  return createDistractor({
    activationProbability: section.activation_probability,
    applyTo: { initial_query: section.apply_to.initial_query, follow_up_feedback: section.apply_to.follow_up_feedback },
    heavyLayers: section.heavy_layers,
    rules: section.noise_strategies.length > 0 ? section.noise_strategies : DEFAULT_RULES,
    strategies,
    semantic:
      templates === undefined || setup.model === undefined
        ? undefined
        : { model: setup.model.model, temperature: setup.model.temperature, maxCompletionTokens: setup.model.maxCompletionTokens, templates, validationRetries: section.validation_retries },
  });
}
