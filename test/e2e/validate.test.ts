// End to end: personaflow validate names every configuration and input problem at once, calls no model, and never prints a key.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_KEY, ensureBuilt, runCli } from '../helpers/cli.js';
import { startOpenAIServer } from '../helpers/openai-server.js';

let dir: string;

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

const persona = (id: string, queries = 1): string => JSON.stringify({ persona_id: id, persona_features: { role: 'nurse' }, queries: Array.from({ length: queries }, (_, q) => ({ query_id: `q${q}`, original_query: `question ${id}.${q}` })) });

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-validate-e2e-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('personaflow validate', () => {
  it('names a problem every model shares once, and counts it once', async () => {
    const config = await file('shared-url.yaml', 'api:\n  base_url: ${PERSONAFLOW_NO_SUCH_URL}\n');
    const personas = await file('one.ndjson', `${persona('p1')}\n`);
    const run = await runCli(['validate', config, personas]);
    expect(run.code, run.stderr).toBe(2);
    const errors = run.stdout.split('\n').filter((line) => line.startsWith('error: '));
    expect(errors.filter((line) => line.includes('PERSONAFLOW_NO_SUCH_URL'))).toHaveLength(1);
    expect(new Set(errors).size).toBe(errors.length);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^validate: 1 personas?, 1 tasks?, ${errors.length} errors?, `));
  });

  it('counts what generate would warn of as a finding on stdout, never as a stray stderr line', async () => {
    const config = await file('feedback.yaml', 'interaction_generation:\n  user_model:\n    feedback_probability: 0.5\n');
    const personas = await file('two.ndjson', `${persona('p1')}\n${persona('p2')}\n`);
    const run = await runCli(['validate', config, personas, '--provider', 'sim']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('warning: interaction_generation.user_model.feedback_probability: not used with stop_policy: user');
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('validate: 2 personas, 2 tasks, 0 errors, 1 warning: valid (exit 0)');
  });

  it('names every problem of the config and the personas at once, and exits 2', async () => {
    const config = await file(
      'broken.yaml',
      ['interaction_genration:', '  max_turns: 3', 'interaction_generation:', '  min_turns: 0', '  max_workers: -2', '  assistant_model:', '    temprature: 0.3', 'distractor:', '  activation_probability: 7', ''].join('\n'),
    );
    const personas = await file('people.ndjson', [persona('p1', 2), 'not json', '{"queries":[{"original_query":"hi"}]}', persona('p4'), '{"persona_id":"p5","queries":[{"query_id":"q1","target_turns":0,"original_query":"x"}]}', ''].join('\n'));
    const run = await runCli(['validate', config, personas]);
    expect(run.code, run.stderr).toBe(2);
    const errors = run.stdout.split('\n').filter((line) => line.startsWith('error: '));
    expect(errors.map((line) => line.replace(dir, 'DIR').replace(/ \(.* takes: .*\)$/, ''))).toEqual([
      'error: DIR/broken.yaml:1: interaction_genration: unknown key; did you mean `interaction_generation`?',
      'error: DIR/broken.yaml:7: interaction_generation.assistant_model.temprature: unknown key; did you mean `temperature`?',
      'error: DIR/broken.yaml:4: interaction_generation.min_turns: Too small: expected number to be >0, got `0` (number)',
      'error: DIR/broken.yaml:5: interaction_generation.max_workers: Too small: expected number to be >0, got `-2` (number)',
      'error: DIR/broken.yaml:9: distractor.activation_probability: Too big: expected number to be <=1, got `7` (number)',
      expect.stringMatching(/^error: DIR\/people\.ndjson:2: invalid JSON: /),
      'error: DIR/people.ndjson:3: persona_id: required',
      expect.stringMatching(/^error: DIR\/people\.ndjson:5: queries\[0\]\.target_turns: /),
    ]);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('validate: 2 personas, 3 tasks, 8 errors, 0 warnings: not valid (exit 2)');
    // generate stops at these (and says so); validate listed all of them.
    const generate = await runCli(['generate', personas, '-c', config, '--provider', 'sim']);
    expect(generate.code).toBe(2);
  });

  it('exits 0 on good input, with the counts, and calls no model', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      const config = await file('good.yaml', ['api:', '  provider: openai', '  model: test-model', `  base_url: ${server.baseURL}`, 'personaflow:', '  prices:', '    test-model: {input: 1, output: 2}', ''].join('\n'));
      const personas = await file('good.ndjson', [persona('a', 2), '', persona('b', 3), ''].join('\n'));
      const run = await runCli(['validate', config, personas]);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toBe('validate: 2 personas, 5 tasks, 0 errors, 0 warnings: valid (exit 0)\n');
      expect(server.count).toBe(0);
      // The same personas on stdin.
      const piped = await runCli(['validate', config, '-'], { input: [persona('a', 2), persona('b', 3)].join('\n') });
      expect(piped.code).toBe(0);
      expect(piped.stdout).toContain('2 personas, 5 tasks');
    } finally {
      await server.close();
    }
  });

  it('names the environment variables a missing key was looked for in, and never prints a key', async () => {
    const literal = 'sk-literal-0123456789abcdefghijklmnop';
    const present = 'sk-or-present-9876543210zyxwvutsrq';
    const config = await file(
      'keys.yaml',
      [
        'api:',
        '  provider: openai',
        '  model: gpt-4o-mini',
        '  api_key: ${PF_VALIDATE_KEY}',
        'interaction_generation:',
        '  assistant_model:',
        '    model_pool:',
        '      - {provider: openai, model: gpt-4o}',
        '      - {provider: openrouter, model: some/model}',
        'personaflow:',
        '  prices:',
        '    gpt-4o: {input: 2.5, output: 10}',
        '    gpt-4o-mini: {input: 0.15, output: 0.6}',
        '',
      ].join('\n'),
    );
    const run = await runCli(['validate', config], { env: { OPENAI_API_KEY: undefined, PF_VALIDATE_KEY: undefined, OPENROUTER_API_KEY: present } });
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('no API key for openai/gpt-4o: none of PF_VALIDATE_KEY, OPENAI_API_KEY is set in the environment');
    expect(run.stdout).toContain('no API key for openai/gpt-4o-mini: none of PF_VALIDATE_KEY, OPENAI_API_KEY is set in the environment');
    expect(run.stdout).not.toContain('openrouter/some/model: no API key');
    expect(run.stdout).toContain('warning: openrouter/some/model: no price under personaflow.prices');
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('validate: 2 errors, 1 warning: not valid (exit 2)');
    // With the variable set: valid, and its value appears nowhere.
    const set = await runCli(['validate', config], { env: { OPENAI_API_KEY: undefined, PF_VALIDATE_KEY: literal, OPENROUTER_API_KEY: present } });
    expect(set.code, set.stdout).toBe(0);
    for (const output of [run.stdout, run.stderr, set.stdout, set.stderr]) {
      expect(output).not.toContain(literal);
      expect(output).not.toContain(present);
    }
    // A literal key in the file, beside a bad value: the error shows neither.
    const leaky = await file('leaky.yaml', ['api:', `  api_key: ${literal}`, '  timeout: -1', 'judge:', `  min_score: ${literal}`, ''].join('\n'));
    const refused = await runCli(['validate', leaky]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toContain('api.timeout');
    expect(refused.stdout).toContain('judge.min_score');
    expect(refused.stdout + refused.stderr).not.toContain(literal);
  });
});
