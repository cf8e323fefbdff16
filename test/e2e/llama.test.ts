// End to end: `generate --provider llama` with the real tiny model in the CLI's own process, and its failures.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, childEnv, runCli, type Run } from '../helpers/cli.js';
import { LLAMA_MODEL as MODEL, llamaSkipReason as skipReason } from '../helpers/llama.js';
import { nodeLlamaCppVersion } from '../../src/models/llama.js';

const VERSION = nodeLlamaCppVersion(ROOT) ?? 'unknown';

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

/**
 * The built CLI as it is on a machine where node-llama-cpp was never installed: bin/, dist/bundle/,
 * package.json and config/ at `root`, and a node_modules that holds every installed package but
 * node-llama-cpp (links into the repository's). Nothing is uninstalled, and nothing in personaflow is told
 * to look elsewhere: the CLI looks up node-llama-cpp from where it is, as a user's copy would.
 */
async function installWithout(root: string): Promise<void> {
  await mkdir(join(root, 'node_modules'), { recursive: true });
  await cp(join(ROOT, 'bin'), join(root, 'bin'), { recursive: true });
  await cp(join(ROOT, 'dist', 'bundle'), join(root, 'dist', 'bundle'), { recursive: true });
  await cp(join(ROOT, 'package.json'), join(root, 'package.json'));
  await symlink(join(ROOT, 'config'), join(root, 'config'));
  for (const name of await readdir(join(ROOT, 'node_modules'))) {
    if (name === 'node-llama-cpp' || name === '@node-llama-cpp' || name.startsWith('.')) continue;
    await symlink(join(ROOT, 'node_modules', name), join(root, 'node_modules', name));
  }
}

/** Runs the CLI at `root` from `cwd` (like runCli, which runs the repository's). */
function runAt(root: string, cwd: string, args: readonly string[]): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, [join(root, 'bin', 'personaflow.js'), ...args], { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('generate --provider llama without what it needs', () => {
  /** A clone of personaflow, and a project that installed personaflow as a dependency, both without node-llama-cpp. */
  let clone: string;
  let project: string;
  beforeAll(async () => {
    clone = join(dir, 'clone', 'personaflow');
    await installWithout(clone);
    project = join(dir, 'app');
    await installWithout(join(project, 'node_modules', 'personaflow'));
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'app', dependencies: { personaflow: '0.1.0' } }));
  }, 120_000);

  it('stops before any work, exit 2, with one line naming the command that installs node-llama-cpp (a clone)', async () => {
    // The copy really lacks it: nothing from the clone finds node-llama-cpp.
    expect(existsSync(join(clone, 'node_modules', 'node-llama-cpp'))).toBe(false);
    const out = join(dir, 'out-clone');
    const run = await runAt(clone, clone, ['generate', personasFile, '-c', config, '--provider', 'llama', '--model', MODEL, '--supplement-rounds', '0', '--out', out]);
    expect(run.stderr).toBe(`personaflow: error: the llama provider needs node-llama-cpp, which is not installed: npm install --no-save --save-optional node-llama-cpp@${VERSION}\n`);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    // Before any work: no output directory (a run that had started leaves one, with what finished).
    expect(existsSync(out)).toBe(false);
  });

  it('names the directory when run from elsewhere, and the project when personaflow is one of its dependencies', async () => {
    const fromElsewhere = await runAt(clone, dir, ['generate', personasFile, '-c', config, '--provider', 'llama', '--model', MODEL]);
    expect(fromElsewhere.code).toBe(2);
    expect(fromElsewhere.stderr).toBe(`personaflow: error: the llama provider needs node-llama-cpp, which is not installed: npm install --no-save --save-optional node-llama-cpp@${VERSION} --prefix ${clone}\n`);
    // A config that names llama (not the flag) for the user simulator only: the same check, the same line.
    const own = join(dir, 'user-llama.yaml');
    await writeFile(own, `interaction_generation:\n  min_turns: 1\n  max_turns: 1\n  user_model: { provider: llama, model: ${JSON.stringify(MODEL)} }\n`);
    const dependency = await runAt(join(project, 'node_modules', 'personaflow'), project, ['generate', personasFile, '-c', own, '--supplement-rounds', '0']);
    expect(dependency.code).toBe(2);
    expect(dependency.stderr).toBe(`personaflow: error: the llama provider needs node-llama-cpp, which is not installed: npm install node-llama-cpp@${VERSION}\n`);
  });

  it('leaves every other provider alone when node-llama-cpp is missing', async () => {
    const run = await runAt(clone, clone, ['generate', personasFile, '-c', config, '--provider', 'sim', '--supplement-rounds', '0', '-q']);
    expect(run.code).toBe(0);
    expect(parse(run.stdout)).toHaveLength(3);
  });

  it('names a model file that does not exist before starting (configuration error)', async () => {
    const run = await runCli(['generate', personasFile, '--provider', 'llama', '--model', 'models/nope.gguf'], {});
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`personaflow: error: --model: llama model file not found: ${join(ROOT, 'models', 'nope.gguf')}`);
  });
});
