// The bundled default prompts by name, for library users to read and adapt: text, file, placeholders, and the config key that replaces each.
import { readFileSync } from 'node:fs';
import type { Layer } from '../config/schema.js';
import { DEFAULT_ASSISTANT_TEMPLATE } from './assistant.js';
import { DISTRACTOR_TEMPLATE, distractorTemplate } from './distractor.js';
import { DEFAULT_JUDGE_TEMPLATE, JUDGE_TEMPLATE } from './judge.js';
import { DEFAULT_QUERY_GENERATION_TEMPLATE, QUERY_GENERATION_TEMPLATE } from './queryGeneration.js';
import { DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE } from './simulator.js';
import { DEFAULT_STYLE_TRANSFER_TEMPLATE, STYLE_TRANSFER_TEMPLATE } from './styleTransfer.js';
import type { TemplateContract } from './template.js';

/** The bundled prompts, named like their files in config/prompts/. */
export type TemplateName = 'user_simulator' | 'assistant' | 'style_transfer' | 'query_generation' | 'judge' | `distractor_${Layer}`;

/** A bundled prompt: what it is for, its text, and how to use an adapted version of it. */
export interface DefaultTemplate extends TemplateContract {
  readonly name: TemplateName;
  /** What the prompt is for. */
  readonly description: string;
  /** The bundled file (config/prompts/NAME.txt in the package). */
  readonly path: string;
  /** The template as the file holds it (read on first use). */
  readonly text: string;
  /**
   * Where an adapted version goes in the configuration (a YAML path): the text itself (for a template,
   * text of several lines; one line is taken as a file name), or a file path, relative to the config file.
   */
  readonly configKey: string;
}

/** A template whose text is read from its file the first time it is asked for. */
function bundled(name: TemplateName, path: string, contract: TemplateContract, configKey: string, description: string): DefaultTemplate {
  let text: string | undefined;
  return Object.freeze({
    name,
    description,
    path,
    placeholders: contract.placeholders,
    required: contract.required,
    configKey,
    get text(): string {
      text ??= readFileSync(path, 'utf8');
      return text;
    },
  });
}

/** The assistant's system prompt is sent as it is: nothing in it is filled. */
const NO_PLACEHOLDERS: TemplateContract = { placeholders: [], required: [] };

const distractor = (layer: Layer, what: string): DefaultTemplate =>
  bundled(`distractor_${layer}`, distractorTemplate(layer), DISTRACTOR_TEMPLATE, `distractor.templates.${layer}`, `the semantic distractor's ${what} layer (--noise semantic): rewrites a user message with that kind of noise, answering JSON`);

/**
 * Every prompt personaflow ships, by name: the simulated user's system prompt, the assistant's, style
 * transfer, query generation, the judge and the distractor's three layers. Read one, adapt it, and give
 * it back through the configuration under its `configKey`: the run checks its placeholders as it loads.
 *
 * @example
 * import { DEFAULT_TEMPLATES, personaflow } from 'personaflow';
 * const template = DEFAULT_TEMPLATES.user_simulator.text.replace('How to write each message:', 'Write in British English.\nHow to write each message:');
 * personaflow({ personas, config: { interaction_generation: { user_model: { system_prompt_template: template } } } });
 */
export const DEFAULT_TEMPLATES: Readonly<Record<TemplateName, DefaultTemplate>> = Object.freeze({
  user_simulator: bundled('user_simulator', DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE, 'interaction_generation.user_model.system_prompt_template', 'the simulated user: its system prompt, with the persona, what it knows and when it may stop'),
  assistant: bundled('assistant', DEFAULT_ASSISTANT_TEMPLATE, NO_PLACEHOLDERS, 'interaction_generation.assistant_model.system_prompt', "the assistant's system prompt (also per pool entry: model_pool[i].system_prompt)"),
  style_transfer: bundled('style_transfer', DEFAULT_STYLE_TRANSFER_TEMPLATE, STYLE_TRANSFER_TEMPLATE, 'query_generation.style_transfer.template', "style transfer: a dataset query rewritten in the persona's voice, answering JSON"),
  query_generation: bundled('query_generation', DEFAULT_QUERY_GENERATION_TEMPLATE, QUERY_GENERATION_TEMPLATE, 'query_generation.generation_template', 'supplement rounds: new requests for a persona short of its target, answering JSON'),
  judge: bundled('judge', DEFAULT_JUDGE_TEMPLATE, JUDGE_TEMPLATE, 'judge.template', "the judge's review: the rubric per side, scores, tags and a verdict, answering JSON"),
  distractor_surface_noise: distractor('surface_noise', 'surface noise (typos, informal wording)'),
  distractor_incomplete_info: distractor('incomplete_info', 'incomplete information (details left out or blurred)'),
  distractor_semantic_ambiguity: distractor('semantic_ambiguity', 'semantic ambiguity (a second intent, a change of mind)'),
});
