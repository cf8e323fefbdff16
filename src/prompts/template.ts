// Prompt templates: loaded from config/prompts/ or the user's files, rendered by filling `{placeholders}`.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { PACKAGE_CONFIG_DIR, locateConfigPath } from '../paths.js';
import type { Features } from '../types.js';

/** config/prompts/ of the package: the bundled templates. */
export const PROMPTS_DIR = join(PACKAGE_CONFIG_DIR, 'prompts');

/** The bundled template `name` (`user_simulator`, `style_transfer`, `distractor_surface_noise`, ...). */
export const bundledTemplate = (name: string): string => join(PROMPTS_DIR, `${name}.txt`);

/**
 * Loads a prompt template. `value` is a path (next to the config file, else from the working directory) or
 * the template text itself when it spans several lines; undefined means `fallback` (a bundled template).
 */
export async function loadTemplate(value: string | undefined, baseDir: string, yamlPath: string, fallback: string): Promise<string> {
  if (value !== undefined && value.includes('\n')) return value;
  const path = value === undefined ? fallback : locateConfigPath(value, baseDir);
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${yamlPath}: cannot read template file "${path}" (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * Loads a prompt that is usually one line of text (a system prompt): a value ending in `.txt` or `.md`
 * is a file (next to the config file, else from the working directory), anything else is the text itself;
 * undefined means `fallback` (a bundled file).
 */
export async function loadPromptText(value: string | undefined, baseDir: string, yamlPath: string, fallback: string): Promise<string> {
  if (value !== undefined && !/\.(?:txt|md)$/i.test(value.trim())) return value.trim();
  return (await loadTemplate(value, baseDir, yamlPath, fallback)).trim();
}

/**
 * Fills `{name}` placeholders from `values`, each computed only if the template uses it; unknown ones are
 * left as they are (a template may contain JSON examples).
 */
export function fill(template: string, values: Readonly<Record<string, () => string>>): string {
  return template.replace(/\{([a-z_]+)\}/g, (match, name: string) => (Object.hasOwn(values, name) ? (values[name] as () => string)() : match));
}

/** PersonaGym's persona block: `- Communication Style: casual`, one feature a line. */
export function formatPersona(features: Features): string {
  const lines = Object.entries(features).map(([key, value]) => {
    const label = key.replace(/_/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
    return `- ${label}: ${typeof value === 'string' ? value : JSON.stringify(value)}`;
  });
  return lines.length === 0 ? '- (no features given)' : lines.join('\n');
}
