// buildDistractorModel against buildModels: a command builds, and looks up keys and model files for, only the models it calls.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { type Config } from '../../src/config/schema.js';
import { buildDistractorModel, buildModels } from '../../src/models/build.js';
import { conversationSpecs, endpointOf } from '../../src/models/specs.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-build-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configOf(text: string): Promise<Config> {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(path, text);
  return (await loadConfig(path)).config;
}

/** An environment that records every variable looked up in it. */
function watchedEnv(values: Record<string, string>): { env: NodeJS.ProcessEnv; read: Set<string> } {
  const read = new Set<string>();
  const env = new Proxy(values, {
    get: (target, name) => {
      if (typeof name === 'string') read.add(name);
      return target[name as string];
    },
    has: (target, name) => {
      if (typeof name === 'string') read.add(name);
      return name in target;
    },
  });
  return { env, read };
}

// The assistant and the user simulator on openai (default.yaml), the distractor on OpenRouter.
const OPENROUTER_DISTRACTOR = 'distractor:\n  llm:\n    provider: openrouter\n    model: meta-llama/llama-3.1-8b-instruct\n';

describe('buildDistractorModel', () => {
  it("needs only the distractor's key: OPENAI_API_KEY is never read, while generate's full build asks for it", async () => {
    const config = await configOf(OPENROUTER_DISTRACTOR);
    const { env, read } = watchedEnv({ OPENROUTER_API_KEY: 'sk-or-test' });
    const models = buildDistractorModel(config, {}, env);
    expect(models.distractor.model).toMatchObject({ provider: 'openrouter', model: 'meta-llama/llama-3.1-8b-instruct' });
    expect(models.notices).toEqual([]);
    expect([...models.limiters.keys()]).toHaveLength(1);
    expect(read).toContain('OPENROUTER_API_KEY');
    expect(read).not.toContain('OPENAI_API_KEY');
    await models.close();

    // generate calls the assistant and the user simulator too: one of its models without a key is an error.
    expect(() => buildModels(config, { distractor: true }, { OPENROUTER_API_KEY: 'sk-or-test' })).toThrowErrorMatchingInlineSnapshot(
      `[ConfigError: interaction_generation.assistant_model: no API key for openai/gpt-4o-mini: set OPENAI_API_KEY (or api_key / api_key_env in the config)]`,
    );
  });

  it("falls back to sim (when allowed) with no key for the distractor, naming only the distractor's variable", async () => {
    const config = await configOf(OPENROUTER_DISTRACTOR);
    expect(() => buildDistractorModel(config, {}, {})).toThrow(/distractor\.llm: no API key for openrouter\/meta-llama\/llama-3\.1-8b-instruct: set OPENROUTER_API_KEY/);
    const models = buildDistractorModel(config, { simFallback: true }, {});
    expect(models.distractor.model).toMatchObject({ provider: 'sim', model: 'meta-llama/llama-3.1-8b-instruct' });
    expect(models.notices).toEqual(['no API key found (OPENROUTER_API_KEY not set): using the built-in sim provider; replies are simulated, offline']);
  });

  it('keeps --provider, --model and --base-url, and names the YAML path of a missing key', async () => {
    const config = await configOf(OPENROUTER_DISTRACTOR);
    const local = buildDistractorModel(config, { provider: 'openai', baseUrl: 'http://127.0.0.1:9/v1', model: 'noise-model' }, {});
    expect(local.distractor.model).toMatchObject({ provider: 'openai', model: 'noise-model' });
    expect(local.notices).toEqual([]);
    expect(() => buildDistractorModel(config, { provider: 'openai' }, {})).toThrowErrorMatchingInlineSnapshot(
      `[ConfigError: distractor.llm: no API key for openai/meta-llama/llama-3.1-8b-instruct: set OPENAI_API_KEY (or api_key / api_key_env in the config)]`,
    );
    expect(() => buildDistractorModel(config, { provider: 'anthropic' }, {})).toThrow(/--provider: expected one of/);
  });

  it("does not check a llama assistant's model file it never loads", async () => {
    const config = await configOf(`interaction_generation:\n  assistant_model:\n    provider: llama\n    model: ./missing.gguf\n${OPENROUTER_DISTRACTOR}`);
    const env = { OPENAI_API_KEY: 'sk-test', OPENROUTER_API_KEY: 'sk-or-test' };
    const models = buildDistractorModel(config, {}, env);
    expect(models.distractor.model).toMatchObject({ provider: 'openrouter' });
    await models.close();
    expect(() => buildModels(config, { distractor: true }, env)).toThrow(/^interaction_generation\.assistant_model\.model: llama model file not found: .*missing\.gguf$/);
  });
});

describe('buildModels with a stand-in (personaflow estimate)', () => {
  it('makes every model the stand-in of its spec: no key is read, no limiter built, provider and name kept', async () => {
    const config = await configOf('distractor:\n  llm: { provider: openrouter, model: anthropic/claude-haiku-4.5 }\njudge:\n  llm: { model: gpt-4.1-mini }\n');
    const { env, read } = watchedEnv({});
    const specs: string[] = [];
    const models = buildModels(config, { distractor: true, judge: true, standIn: (spec) => (specs.push(`${spec.provider}/${spec.model}`), { provider: spec.provider, model: spec.model, complete: () => Promise.reject(new Error('not called')) }) }, env);
    expect(read).toEqual(new Set());
    expect(models.limiters.size).toBe(0);
    expect(specs).toEqual(['openai/gpt-4o-mini', 'openai/gpt-4o-mini', 'openrouter/anthropic/claude-haiku-4.5', 'openai/gpt-4.1-mini']);
    expect(models.providers).toEqual(['openai', 'openrouter']);
    expect({ provider: models.distractor?.model.provider, model: models.distractor?.model.model, cap: models.distractor?.maxCompletionTokens }).toEqual({ provider: 'openrouter', model: 'anthropic/claude-haiku-4.5', cap: 512 });
  });

  it('still refuses a provider it does not have', async () => {
    const config = await configOf('api:\n  provider: anthropic\n');
    expect(() => buildModels(config, { standIn: () => ({ provider: 'x', model: 'y', complete: () => Promise.reject(new Error('not called')) }) }, {})).toThrow(/interaction_generation\.assistant_model\.provider: `anthropic` is not supported/);
  });
});

describe('endpointOf: where the key came from (named by an authentication failure)', () => {
  it.each([
    ['the default ${OPENAI_API_KEY}', '', { OPENAI_API_KEY: 'sk-a' }, 'OPENAI_API_KEY'],
    ['api.api_key_env', 'api:\n  api_key: null\n  api_key_env: TEAM_KEY\n', { TEAM_KEY: 'sk-b', OPENAI_API_KEY: 'sk-a' }, 'TEAM_KEY'],
    ['a literal api.api_key', 'api:\n  api_key: sk-literal-1\n', {}, 'api.api_key'],
    ["an assistant model's own api_key_env", 'interaction_generation:\n  assistant_model:\n    api_key_env: MINE\n', { MINE: 'sk-c', OPENAI_API_KEY: 'sk-a' }, 'MINE'],
    ['the provider variable when the config names none', 'api:\n  api_key: null\n', { OPENAI_API_KEY: 'sk-a' }, 'OPENAI_API_KEY'],
  ])('%s', async (_name, yaml, env, keyFrom) => {
    const config = await configOf(yaml === '' ? '{}\n' : yaml);
    const { assistant } = conversationSpecs(config, {});
    expect(endpointOf(assistant[0]!, config, env)).toMatchObject({ keyFrom, apiKey: expect.any(String) as unknown });
  });
});
