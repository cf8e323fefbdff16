// End to end: `generate --provider llama` with the real tiny model in the CLI's own process, and its failures.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';

const MODEL = resolve(ROOT, '../shared/models/stories260K.gguf');
const hasLibrary = existsSync(join(ROOT, 'node_modules', 'node-llama-cpp', 'package.json'));
const skipReason = !existsSync(MODEL) ? `${MODEL} is absent` : !hasLibrary ? 'node-llama-cpp is not installed (npm i node-llama-cpp@3.21.1)' : undefined;
/** Makes the CLI import a module that does not exist in place of node-llama-cpp: a machine without it. */
const WITHOUT_LIBRARY = { PERSONAFLOW_NODE_LLAMA_CPP: 'personaflow-test-no-such-module' };

interface Interaction {
  interaction_id: string;
  persona_id: string;
  initial_query: string;
  messages: { role: string; content: string; metadata: Record<string, unknown> }[];
  num_turns: number;
  metadata: { query_id: string; assistant_model: { model: string; provider: string }; usage?: unknown; end_reason?: string };
}

const personas = [
  { persona_id: 'p1', persona_features: { role: 'child', communication_style: 'casual' }, queries: [{ query_id: 'q1', original_query: 'Tell me a story about a cat', target_turns: 2 }] },
  { persona_id: 'p2', persona_features: { role: 'parent', communication_style: 'formal' }, queries: [{ query_id: 'q1', original_query: 'Tell me a story about a dog', target_turns: 1 }] },
  { persona_id: 'p3', persona_features: { role: 'teacher', communication_style: 'formal' }, queries: [{ query_id: 'q1', original_query: 'A story about the sea please', target_turns: 2 }] },
];

let dir: string;
let personasFile: string;
let config: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-llama-'));
  personasFile = join(dir, 'personas.ndjson');
  await writeFile(personasFile, personas.map((p) => JSON.stringify(p)).join('\n') + '\n');
  // Small replies keep the run to a few seconds; the tiny model writes stories whatever it is asked.
  config = join(dir, 'config.yaml');
  await writeFile(
    config,
    // One exchange: the tiny test model writes children's stories, which the simulator's guards reject (cut at
    // the token limit, far from a user's message), so the conversation is the user's question and the answer.
    ['interaction_generation:', '  min_turns: 1', '  max_turns: 1', '  assistant_model: { max_completion_tokens: 24 }', '  user_model: { max_completion_tokens: 16 }', ''].join('\n'),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const parse = (stdout: string): Interaction[] =>
  stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Interaction);

function expectValid(interactions: Interaction[], model: string): void {
  expect(interactions.map((i) => i.interaction_id).sort()).toEqual(['interaction_p1_q1', 'interaction_p2_q1', 'interaction_p3_q1']);
  for (const interaction of interactions) {
    expect(interaction.interaction_id).toBe(`interaction_${interaction.persona_id}_${interaction.metadata.query_id}`);
    expect(interaction.metadata.assistant_model).toEqual({ model, provider: 'llama' });
    const { messages } = interaction;
    expect(messages[0]?.content).toBe(interaction.initial_query);
    messages.forEach((message, index) => expect(message.role).toBe(index % 2 === 0 ? 'user' : 'assistant'));
    expect(messages.length % 2).toBe(0);
    expect(interaction.num_turns).toBe(messages.length / 2);
    expect(interaction.num_turns).toBe(1);
    expect(interaction.metadata.end_reason).toBe('max_turns');
    for (const message of messages) expect(message.content.trim()).not.toBe('');
  }
}

describe.skipIf(skipReason !== undefined)(`generate --provider llama${skipReason === undefined ? '' : ` (skipped: ${skipReason})`}`, () => {
  it('writes valid interactions from the local model, --model relative to the working directory', async () => {
    const model = relative(ROOT, MODEL);
    const run = await runCli(['generate', personasFile, '-c', config, '--provider', 'llama', '--model', model, '-j', '2', '--threads', '1', '--seed', '7', '--supplement-rounds', '0', '--out', join(dir, 'out')], {
      killAfterMs: 60_000,
    });
    expect(run.stderr).toMatch(/3 interactions, 0 failures/);
    expect(run.code).toBe(0);
    expectValid(parse(await readFile(join(dir, 'out', 'interactions.ndjson'), 'utf8')), model);
    // Tokens were counted (by the model's tokenizer) and reached usage.json.
    const usage = JSON.parse(await readFile(join(dir, 'out', 'usage.json'), 'utf8')) as { statistics: { summary: { total_input_tokens: number; total_output_tokens: number } } };
    expect(usage.statistics.summary.total_input_tokens).toBeGreaterThan(0);
    expect(usage.statistics.summary.total_output_tokens).toBeGreaterThan(0);
  }, 90_000);

  it('resolves a model path in the config file against the config file’s directory', async () => {
    const nested = join(dir, 'nested');
    const own = join(nested, 'llama.yaml');
    const model = relative(nested, MODEL);
    await mkdir(nested, { recursive: true });
    await writeFile(
      own,
      [
        `api: { provider: llama, model: ${JSON.stringify(model)}, threads: 1 }`,
        'interaction_generation:',
        '  min_turns: 1',
        '  max_turns: 1',
        '  assistant_model: { max_completion_tokens: 16 }',
        '  user_model: { max_completion_tokens: 12 }',
        '',
      ].join('\n'),
    );
    const run = await runCli(['generate', personasFile, '-c', own, '-j', '3', '--seed', '7', '--supplement-rounds', '0'], { killAfterMs: 60_000 });
    expect(run.code).toBe(0);
    expectValid(parse(run.stdout), model);
  }, 90_000);
});

describe('generate --provider llama without what it needs', () => {
  it('fails with one line saying how to install node-llama-cpp when the library is missing', async () => {
    const run = await runCli(['generate', personasFile, '-c', config, '--provider', 'llama', '--model', 'package.json', '--supplement-rounds', '0', '-q'], { env: WITHOUT_LIBRARY });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    // The error, then the result line a script checks.
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('personaflow: result: stopped (exit 1): see the error above');
    expect(lines[0]).toMatch(/^personaflow: error: the llama provider needs node-llama-cpp, which is not installed or failed to load \(.*personaflow-test-no-such-module.*\); install it with: npm i node-llama-cpp@3\.21\.1$/);
  });

  it('leaves every other provider alone when node-llama-cpp is missing', async () => {
    const run = await runCli(['generate', personasFile, '-c', config, '--provider', 'sim', '--supplement-rounds', '0', '-q'], { env: WITHOUT_LIBRARY });
    expect(run.code).toBe(0);
    expect(parse(run.stdout)).toHaveLength(3);
  });

  it('names a model file that does not exist before starting (configuration error)', async () => {
    const run = await runCli(['generate', personasFile, '--provider', 'llama', '--model', 'models/nope.gguf'], {});
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`personaflow: error: --model: llama model file not found: ${join(ROOT, 'models', 'nope.gguf')}`);
  });
});
