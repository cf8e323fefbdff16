// Prompt templates: each bundled template keeps its prompt's contract; a user's template with an unknown or a missing placeholder is refused.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYERS } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { DISTRACTOR_TEMPLATE, distractorTemplate } from '../../src/prompts/distractor.js';
import { DEFAULT_QUERY_GENERATION_TEMPLATE, QUERY_GENERATION_TEMPLATE } from '../../src/prompts/queryGeneration.js';
import { DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE } from '../../src/prompts/simulator.js';
import { DEFAULT_STYLE_TRANSFER_TEMPLATE, STYLE_TRANSFER_TEMPLATE } from '../../src/prompts/styleTransfer.js';
import { loadTemplate, type TemplateContract } from '../../src/prompts/template.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-template-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const refusal = async (promise: Promise<unknown>): Promise<string> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).message;
};

describe('loadTemplate', () => {
  it.each<[string, string, TemplateContract]>([
    ['user simulator', DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE],
    ['style transfer', DEFAULT_STYLE_TRANSFER_TEMPLATE, STYLE_TRANSFER_TEMPLATE],
    ['query generation', DEFAULT_QUERY_GENERATION_TEMPLATE, QUERY_GENERATION_TEMPLATE],
    ...LAYERS.map((layer): [string, string, TemplateContract] => [`distractor ${layer}`, distractorTemplate(layer), DISTRACTOR_TEMPLATE]),
  ])('the bundled %s template keeps its contract', async (_name, path, contract) => {
    await expect(loadTemplate(undefined, dir, 'x', path, contract)).resolves.toContain('{');
  });

  it('regression: a simulator template without {persona} is refused', async () => {
    const message = await refusal(loadTemplate('You are a user.\nAsk about {original_query}.\n', dir, 'interaction_generation.user_model.system_prompt_template', DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE));
    expect(message).toBe('interaction_generation.user_model.system_prompt_template: the template must contain {persona} or {persona_features} or {persona_rules}');
  });

  it('regression: an unknown placeholder in a template file is refused with its file and line', async () => {
    const path = join(dir, 'user.txt');
    await writeFile(path, 'You are this person:\n{persona}\nYou asked: {orginal_query}\n');
    const message = await refusal(loadTemplate('user.txt', dir, 'interaction_generation.user_model.system_prompt_template', DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE));
    expect(message).toMatch(/user\.txt:3: unknown placeholder \{orginal_query\}; did you mean \{original_query\}\? \(this prompt fills \{persona\}, /);
  });

  it('leaves JSON examples alone: only {lowercase_name} is a placeholder', async () => {
    const text = 'Persona: {persona}\nAnswer {"satisfied": true, "feedback": null} or {Not A Placeholder}.\n';
    await expect(loadTemplate(text, dir, 'x', DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE)).resolves.toBe(text);
  });

  it('refuses a template file that is not UTF-8', async () => {
    const path = join(dir, 'latin1.txt');
    await writeFile(path, Buffer.concat([Buffer.from('{persona}\ncaf'), Buffer.from([0xe9])]));
    expect(await refusal(loadTemplate(path, dir, 'x', DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE))).toBe(`${path}:2: template file (x) is not valid UTF-8 (save it as UTF-8)`);
  });
});
