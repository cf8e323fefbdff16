import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandEnv, inspectConfig, loadConfig, merge, runSeed } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { buildModels } from '../src/models/build.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(text: string): Promise<string> {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(path, text);
  return path;
}

const errorOf = async (promise: Promise<unknown>): Promise<ConfigError> => {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
};

describe('inspectConfig', () => {
  it('collects every problem at once: unknown keys and refused values, each with its line', async () => {
    const path = await configFile('interaction_genration:\n  max_turns: 3\ninteraction_generation:\n  min_turns: 0\n  max_workers: -2\n  assistant_model:\n    temprature: 0.3\ndistractor:\n  activation_probability: 7\n');
    const report = await inspectConfig(path);
    expect(report.loaded).toBeUndefined();
    expect(report.errors.map((error) => error.replace(path, 'FILE').replace(/ \(.* takes: .*\)$/, ''))).toMatchInlineSnapshot(`
      [
        "FILE:1: interaction_genration: unknown key; did you mean \`interaction_generation\`?",
        "FILE:7: interaction_generation.assistant_model.temprature: unknown key; did you mean \`temperature\`?",
        "FILE:4: interaction_generation.min_turns: Too small: expected number to be >0, got \`0\` (number)",
        "FILE:5: interaction_generation.max_workers: Too small: expected number to be >0, got \`-2\` (number)",
        "FILE:9: distractor.activation_probability: Too big: expected number to be <=1, got \`7\` (number)",
      ]
    `);
  });

  it('reports every YAML syntax error, and a file it cannot read, as errors rather than throwing', async () => {
    const broken = await inspectConfig(await configFile('api:\n  model: [unclosed\n'));
    expect(broken.errors.length).toBeGreaterThan(0);
    expect(broken.errors[0]).toMatch(/:\d+: invalid YAML: /);
    const missing = await inspectConfig(join(dir, 'nope.yaml'));
    expect(missing.errors).toEqual([`${join(dir, 'nope.yaml')}: cannot read config file (ENOENT)`]);
  });

  it('gives the configuration, and the notices, when nothing is wrong', async () => {
    const report = await inspectConfig('test/fixtures/personagym-config.yaml');
    expect(report.errors).toEqual([]);
    expect(report.loaded?.config.interaction_generation.max_turns).toBe(5);
    expect(report.notices).toHaveLength(1);
  });

  it('loadConfig shows the first five and says how many more there are', async () => {
    const keys = Array.from({ length: 8 }, (_, i) => `  wrong_key_${i}: 1`).join('\n');
    const path = await configFile(`interaction_generation:\n${keys}\n`);
    const error = await errorOf(loadConfig(path));
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[5]).toBe(`... and 3 more (personaflow validate ${path} lists them all)`);
  });
});

describe('loadConfig', () => {
  it("loads PersonaGym's config.yaml unchanged and notices the sections it ignores", async () => {
    const loaded = await loadConfig('test/fixtures/personagym-config.yaml');
    const ig = loaded.config.interaction_generation;
    expect(ig).toMatchObject({ min_turns: 2, max_turns: 5, max_workers: 20, max_retries: 3, retry_delay: 2 });
    expect(ig.assistant_model.model_pool?.map((entry) => [entry.provider, entry.model, entry.weight])).toEqual([
      ['openai', 'gpt-4o-mini', 0.5],
      ['openrouter', 'anthropic/claude-haiku-4.5', 0.3],
      ['openrouter', 'x-ai/grok-4.1-fast', 0.2],
    ]);
    expect(ig.assistant_model.model).toBeUndefined();
    expect(loaded.notices).toEqual(['test/fixtures/personagym-config.yaml: PersonaGym keys that personaflow does not use, ignored: api.inference.frequency_penalty, api.inference.presence_penalty, paths.persona_bank, paths.logs, persona_generation, formulation, experiment.batch_size']);
  });

  describe('unknown keys (regression: misspelt keys were accepted and ignored, exit 0)', () => {
    it.each([
      ['interaction_genration:\n  max_turns: 3\n', ':1: interaction_genration: unknown key; did you mean `interaction_generation`?'],
      ['interaction_generation:\n  min_turns: 2\n  max_turn: 3\n', ':3: interaction_generation.max_turn: unknown key; did you mean `max_turns`?'],
      ['interaction_generation:\n  assistant_model:\n    temprature: 0.2\n', ':3: interaction_generation.assistant_model.temprature: unknown key; did you mean `temperature`?'],
      ['interaction_generation:\n  assistant_model:\n    model_pool:\n      - model: gpt-4o\n        provder: openai\n', ':5: interaction_generation.assistant_model.model_pool[0].provder: unknown key; did you mean `provider`?'],
      ['personaflow:\n  prices: {}\n  breakr: {threshold: 3}\n', ':3: personaflow.breakr: unknown key; did you mean `breaker`?'],
      ['frobnicate: 1\n', ':1: frobnicate: unknown key (top level takes: api, openrouter,'],
    ])('%j is refused with the line and what was meant', async (text, expected) => {
      const error = await errorOf(loadConfig(await configFile(text)));
      expect(error.message).toContain(expected);
    });

    it('takes any name where the config names things: prices, limits, headers', async () => {
      const loaded = await loadConfig(await configFile('personaflow:\n  prices:\n    my-model: {input: 1, output: 2}\n  limits:\n    my-model: {rpm: 10}\napi:\n  headers: {X-Anything: y}\n'));
      expect(loaded.config.personaflow.prices['my-model']).toEqual({ input: 1, output: 2 });
      expect(loaded.notices).toEqual([]);
    });
  });

  it('regression: a config file that is not UTF-8 is refused at its first bad line', async () => {
    const path = join(dir, 'latin1.yaml');
    await writeFile(path, Buffer.concat([Buffer.from('api:\n  model: gpt-4o\n# caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    const error = await errorOf(loadConfig(path));
    expect(error.message).toBe(`${path}:3: config file is not valid UTF-8 (save it as UTF-8)`);
  });

  it('uses the defaults when no file is given', async () => {
    const { config } = await loadConfig(undefined);
    expect(config.api).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini' });
    expect(runSeed(config)).toBe(42);
  });

  it('takes the seed from --seed, then personaflow.seed, then experiment.seed', async () => {
    const { config } = await loadConfig('test/fixtures/personagym-config.yaml');
    expect(runSeed(config)).toBe(42);
    expect(runSeed({ ...config, experiment: { seed: 7 } })).toBe(7);
    expect(runSeed({ ...config, experiment: { seed: 7 }, personaflow: { ...config.personaflow, seed: 8 } })).toBe(8);
    expect(runSeed({ ...config, experiment: { seed: 7 } }, 9)).toBe(9);
  });

  it("reads PersonaGym's distractor section as is", async () => {
    const { config } = await loadConfig('test/fixtures/personagym-config.yaml');
    expect(config.distractor).toMatchObject({ enabled: true, use_semantic: true, activation_probability: 0.25, strategy_path: 'input/distractor_strategy.yaml', apply_to: { initial_query: true, follow_up_feedback: true }, llm: { model: 'gpt-4o-mini', max_tokens: 512 } });
    expect(config.distractor.noise_strategies.map((s) => [s.name, s.probability])).toEqual([['typo', 0.3], ['word_swap', 0.2], ['word_deletion', 0.1], ['word_insertion', 0.1]]);
  });

  it('refuses an unknown noise strategy, naming the line and the known ones', async () => {
    const error = await errorOf(loadConfig(await configFile('distractor:\n  noise_strategies:\n    - name: typoo\n      probability: 0.3\n')));
    expect(error.message).toMatch(/:3: distractor\.noise_strategies\[0\]\.name: unknown strategy `typoo`; known: typo, word_swap/);
  });

  it('never prints a key it rejects, wherever it stands', async () => {
    const cases = [
      'interaction_generation:\n  assistant_model:\n    model_pool: {api_key: sk-SECRET-abcdef, model: gpt-4o}\n',
      'openrouter: "sk-or-SECRET-abcdef"\n',
      'api:\n  api_key: 12345678901234\n',
      'interaction_generation:\n  user_model:\n    headers: "Bearer SECRETSECRETSECRETSECRET"\n',
    ];
    for (const text of cases) {
      const error = await errorOf(loadConfig(await configFile(text)));
      expect(error.message).not.toMatch(/SECRET|12345678901234/);
    }
  });

  it('names the file, line, YAML path and bad value', async () => {
    const path = await configFile('interaction_generation:\n  min_turns: 2\n  max_turns: "five"\n');
    const error = await errorOf(loadConfig(path));
    expect(error.message.replace(path, 'FILE')).toMatchInlineSnapshot(`"FILE:3: interaction_generation.max_turns: Invalid input: expected number, received string, got \`"five"\` (string)"`);
  });

  it('checks max_turns against min_turns', async () => {
    const path = await configFile('interaction_generation:\n  min_turns: 4\n  max_turns: 2\n');
    expect((await errorOf(loadConfig(path))).message).toContain('interaction_generation.max_turns: must be ≥ min_turns');
  });

  it('reports invalid YAML with its line', async () => {
    const path = await configFile('api:\n  provider: openai\n   model: [unclosed\n');
    expect((await errorOf(loadConfig(path))).message).toMatch(/:\d+: invalid YAML/);
  });

  it('rejects typos in its own section', async () => {
    const path = await configFile('personaflow:\n  sead: 3\n');
    expect((await errorOf(loadConfig(path))).message).toContain('personaflow');
  });

  it('merges deeply, the user file winning, arrays replaced', () => {
    expect(merge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] } })).toEqual({ a: { b: 1, c: [3] }, d: 1 });
  });
});

describe('expandEnv', () => {
  it('resolves ${VAR} and names the path when the variable is missing', () => {
    expect(expandEnv('Bearer ${TOKEN}', 'api.api_key', { TOKEN: 'abc' })).toBe('Bearer abc');
    expect(() => expandEnv('${NOPE}', 'api.base_url', {})).toThrowErrorMatchingInlineSnapshot(`[ConfigError: api.base_url: environment variable NOPE is not set]`);
  });
});

describe('buildModels', () => {
  it('falls back to sim, keeping the pool names, when no key is set anywhere and the fallback is allowed', async () => {
    const { config } = await loadConfig('test/fixtures/personagym-config.yaml');
    const models = buildModels(config, { simFallback: true }, {});
    expect(models.user.model.provider).toBe('sim');
    expect(models.pool.entries.map((entry) => `${entry.model.provider}/${entry.model.model}`)).toEqual(['sim/gpt-4o-mini', 'sim/anthropic/claude-haiku-4.5', 'sim/x-ai/grok-4.1-fast']);
    expect(models.notices[0]).toContain('OPENAI_API_KEY or OPENROUTER_API_KEY not set');
    expect(models.providers).toEqual(['sim']);
  });

  it('regression: a config that names hosted models, without their keys, is an error that names --provider sim', async () => {
    const loaded = await loadConfig('test/fixtures/personagym-config.yaml');
    expect(loaded.named).toEqual(['api.provider', 'api.model', 'interaction_generation.assistant_model.model_pool', 'interaction_generation.user_model.provider', 'interaction_generation.user_model.model', 'distractor.llm.provider', 'distractor.llm.model']);
    expect(() => buildModels(loaded.config, {}, {})).toThrow(/no API key for openai\/gpt-4o-mini: set OPENAI_API_KEY \(or api_key \/ api_key_env in the config\), or add --provider sim for a dry run on simulated replies/);
    expect((await loadConfig(undefined)).named).toEqual([]);
  });

  it('asks for the key that is missing when only some are set', async () => {
    const { config } = await loadConfig('test/fixtures/personagym-config.yaml');
    expect(() => buildModels(config, {}, { OPENAI_API_KEY: 'sk-test' })).toThrowErrorMatchingInlineSnapshot(
      `[ConfigError: interaction_generation.assistant_model.model_pool[1]: no API key for openrouter/anthropic/claude-haiku-4.5: set OPENROUTER_API_KEY (or api_key / api_key_env in the config)]`,
    );
  });

  it('needs no OpenRouter key when the run calls no OpenRouter model', async () => {
    const { config } = await loadConfig(undefined);
    const models = buildModels(config, {}, { OPENAI_API_KEY: 'sk-test' });
    expect(models.pool.entries[0]?.model).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini' });
  });

  it('needs no key for a custom base URL', async () => {
    const { config } = await loadConfig(undefined);
    const models = buildModels(config, { baseUrl: 'http://127.0.0.1:9/v1', model: 'llama' }, {});
    expect(models.pool.entries[0]?.model).toMatchObject({ provider: 'openai', model: 'llama' });
    expect(models.user.model).toMatchObject({ provider: 'openai', model: 'llama' });
  });

  it('uses sim with the configured names under --provider sim, even with keys set', async () => {
    const { config } = await loadConfig('test/fixtures/personagym-config.yaml');
    const models = buildModels(config, { provider: 'sim' }, { OPENAI_API_KEY: 'k', OPENROUTER_API_KEY: 'k' });
    expect(models.notices).toEqual([]);
    expect(models.pool.entries.map((e) => e.model.provider)).toEqual(['sim', 'sim', 'sim']);
  });

  it('refuses providers it does not speak', async () => {
    const path = await configFile('interaction_generation:\n  assistant_model:\n    provider: anthropic\n    model: claude\n');
    const { config } = await loadConfig(path);
    expect(() => buildModels(config, {}, {})).toThrow(/interaction_generation.assistant_model.provider: `anthropic` is not supported/);
  });

  it("falls back to PersonaGym's api.provider and api.model for models that name neither", async () => {
    const path = await configFile('api:\n  provider: openrouter\n  model: anthropic/claude-3.5-haiku\n  inference: {temperature: 0.3, top_p: 0.9}\n');
    const { config } = await loadConfig(path);
    const models = buildModels(config, {}, { OPENROUTER_API_KEY: 'sk-or-test' });
    expect(models.pool.entries.map((e) => [e.model.provider, e.model.model])).toEqual([['openrouter', 'anthropic/claude-3.5-haiku']]);
    expect(models.user.model).toMatchObject({ provider: 'openrouter', model: 'anthropic/claude-3.5-haiku' });
  });

  it('gives pool entries without inference the api.inference settings', async () => {
    const path = await configFile('api:\n  inference: {temperature: 0.2, max_completion_tokens: 77}\ninteraction_generation:\n  assistant_model:\n    model_pool:\n      - {provider: openai, model: a, weight: 1}\n      - {provider: openai, model: b, weight: 1, inference: {temperature: 0.9}}\n');
    const { config } = await loadConfig(path);
    const { pool } = buildModels(config, { provider: 'sim' }, {});
    expect(pool.entries.map((e) => [e.temperature, e.maxCompletionTokens])).toEqual([[0.2, 77], [0.9, 77]]);
  });

  it('names the config path of a base URL whose variable is missing', async () => {
    const path = await configFile('api:\n  base_url: ${LOCAL_LLM_URL}\n');
    const { config } = await loadConfig(path);
    expect(() => buildModels(config, {}, { OPENAI_API_KEY: 'k' })).toThrowErrorMatchingInlineSnapshot(`[ConfigError: api.base_url: environment variable LOCAL_LLM_URL is not set]`);
  });

  it('reads the key from api_key_env', async () => {
    const path = await configFile('api:\n  api_key: ""\n  api_key_env: MY_KEY\n');
    const { config } = await loadConfig(path);
    expect(buildModels(config, {}, { MY_KEY: 'sk-x' }).user.model.provider).toBe('openai');
  });
});
