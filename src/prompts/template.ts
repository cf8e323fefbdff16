// Prompt templates: loaded from config/prompts/ or the user's files, rendered by filling `{placeholders}`.
import { join } from 'node:path';
import { closest } from '../config/keys.js';
import { readTextFile } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { PACKAGE_CONFIG_DIR, locateConfigPath } from '../paths.js';
import type { Features } from '../types.js';

/** config/prompts/ of the package: the bundled templates. */
export const PROMPTS_DIR = join(PACKAGE_CONFIG_DIR, 'prompts');

/** The bundled template `name` (`user_simulator`, `style_transfer`, `distractor_surface_noise`, ...). */
export const bundledTemplate = (name: string): string => join(PROMPTS_DIR, `${name}.txt`);

/** What a prompt's template may and must contain: each prompt declares its own beside the code that renders it. */
export interface TemplateContract {
  /** The placeholders the prompt fills; any other `{name}` is a mistake. */
  readonly placeholders: readonly string[];
  /** Groups of which the template must use at least one placeholder each (`[['persona', 'persona_features']]`). */
  readonly required: readonly (readonly string[])[];
}

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/**
 * Checks a template against its prompt's contract: every `{name}` must be one the prompt fills (a typo
 * would reach the model as literal text), and each required group must be used (a simulator template
 * without `{persona}` simulates nobody in particular). `where` names it: `file` or the YAML path of inline text.
 */
export function checkTemplate(template: string, contract: TemplateContract, where: string): void {
  const used = new Set<string>();
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1] as string;
    if (!contract.placeholders.includes(name)) {
      const line = template.slice(0, match.index).split('\n').length;
      const guess = closest(name, contract.placeholders);
      throw new ConfigError(`${where}:${line}: unknown placeholder {${name}}${guess === undefined ? '' : `; did you mean {${guess}}?`} (this prompt fills ${contract.placeholders.map((p) => `{${p}}`).join(', ')})`);
    }
    used.add(name);
  }
  for (const group of contract.required) {
    if (!group.some((name) => used.has(name))) throw new ConfigError(`${where}: the template must contain ${group.map((p) => `{${p}}`).join(' or ')}`);
  }
}

/**
 * Loads a prompt template and checks it against `contract`. `value` is a path (next to the config file,
 * else from the working directory) or the template text itself when it spans several lines; undefined
 * means `fallback` (a bundled template). A file must be UTF-8.
 */
export async function loadTemplate(value: string | undefined, baseDir: string, yamlPath: string, fallback: string, contract: TemplateContract): Promise<string> {
  if (value !== undefined && value.includes('\n')) {
    checkTemplate(value, contract, yamlPath);
    return value;
  }
  const path = value === undefined ? fallback : locateConfigPath(value, baseDir);
  const template = await readTextFile(path, `template file (${yamlPath})`);
  checkTemplate(template, contract, path);
  return template;
}

/**
 * Loads a prompt that is usually one line of text (a system prompt): a value ending in `.txt` or `.md`
 * is a file (next to the config file, else from the working directory), anything else is the text itself;
 * undefined means `fallback` (a bundled file). It has no placeholders: nothing in it is filled.
 */
export async function loadPromptText(value: string | undefined, baseDir: string, yamlPath: string, fallback: string): Promise<string> {
  if (value !== undefined && !/\.(?:txt|md)$/i.test(value.trim())) return value.trim();
  const path = value === undefined ? fallback : locateConfigPath(value.trim(), baseDir);
  return (await readTextFile(path, `prompt file (${yamlPath})`)).trim();
}

/**
 * Fills `{name}` placeholders from `values`, each computed only if the template uses it; other braces are
 * left as they are (a template may contain JSON examples; `loadTemplate` has refused unknown names).
 */
export function fill<K extends string>(template: string, values: Readonly<Record<K, () => string>>): string {
  return template.replace(PLACEHOLDER, (match, name: string) => (Object.hasOwn(values, name) ? (values[name as K])() : match));
}

/** PersonaGym's persona block: `- Communication Style: casual`, one feature a line. */
export function formatPersona(features: Features): string {
  const lines = Object.entries(features).map(([key, value]) => {
    const label = key.replace(/_/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
    return `- ${label}: ${typeof value === 'string' ? value : JSON.stringify(value)}`;
  });
  return lines.length === 0 ? '- (no features given)' : lines.join('\n');
}
