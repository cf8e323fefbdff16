// The default prompts as the library exports them: every bundled file, its text, its contract, and a config key that takes it back.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigObject } from '../../src/config/load.js';
import { PACKAGE_CONFIG_DIR } from '../../src/paths.js';
import { DEFAULT_TEMPLATES, type TemplateName } from '../../src/prompts/defaults.js';
import { checkTemplate } from '../../src/prompts/template.js';

const PROMPTS = join(PACKAGE_CONFIG_DIR, 'prompts');
const templates = Object.values(DEFAULT_TEMPLATES);

/** Sets `value` at the YAML path `key` of an empty object. */
function at(key: string, value: unknown): Record<string, unknown> {
  return key
    .split('.')
    .reverse()
    .reduce<unknown>((inner, part) => ({ [part]: inner }), value) as Record<string, unknown>;
}

/** The value at the YAML path `key`. */
const valueAt = (config: unknown, key: string): unknown => key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], config);

describe('DEFAULT_TEMPLATES', () => {
  it('holds every prompt of config/prompts/, by its file name', () => {
    const files = readdirSync(PROMPTS)
      .filter((name) => name.endsWith('.txt'))
      .map((name) => name.replace(/\.txt$/, ''))
      .sort();
    expect(Object.keys(DEFAULT_TEMPLATES).sort()).toEqual(files);
    for (const [name, template] of Object.entries(DEFAULT_TEMPLATES)) expect(template.name).toBe(name as TemplateName);
  });

  it.each(templates.map((template) => [template.name, template] as const))('%s: the text is its file, and passes its own contract', (_name, template) => {
    expect(template.path).toBe(join(PROMPTS, `${template.name}.txt`));
    expect(template.text).toBe(readFileSync(template.path, 'utf8'));
    expect(template.text.trim()).not.toBe('');
    expect(() => checkTemplate(template.text, template, template.name)).not.toThrow();
    // Every placeholder it uses is one the prompt fills: none is left as literal text for the model.
    const used = [...template.text.matchAll(/\{([a-z_]+)\}/g)].map((match) => match[1]);
    for (const name of used) expect(template.placeholders).toContain(name);
  });

  it.each(templates.map((template) => [template.name, template] as const))('%s: its configKey takes an adapted text back, checked as it loads', async (_name, template) => {
    const adapted = `${template.text.trimEnd()}\nAlways answer in British English.\n`;
    const loaded = await loadConfigObject(at(template.configKey, adapted));
    expect(valueAt(loaded.config, template.configKey)).toBe(adapted);
  });

  it('refuses an adapted template with a placeholder its prompt does not fill, naming it', () => {
    const template = DEFAULT_TEMPLATES.user_simulator;
    expect(() => checkTemplate(`${template.text}\n{persona_name}`, template, 'mine.txt')).toThrowErrorMatchingInlineSnapshot(
      `[ConfigError: mine.txt:${template.text.split('\n').length + 1}: unknown placeholder {persona_name}; did you mean {persona_rules}? (this prompt fills {persona}, {persona_rules}, {persona_features}, {facts}, {system_prompt}, {original_query}, {conversation_history}, {assistant_response}, {current_turn}, {target_turns}, {min_turns}, {max_turns}, {stop_token})]`,
    );
  });

  it('cannot be changed in place', () => {
    expect(Object.isFrozen(DEFAULT_TEMPLATES)).toBe(true);
    expect(Object.isFrozen(DEFAULT_TEMPLATES.judge)).toBe(true);
  });
});
