// End to end: `personaflow noise`, and `generate` with the distractor on, as child processes (sim and a local server).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TEST_KEY, runCli, ensureBuilt } from '../helpers/cli.js';
import { startOpenAIServer } from '../helpers/openai-server.js';

let dir: string;
beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-noise-e2e-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const noiseResult = z.strictObject({
  original_text: z.string(),
  noisy_text: z.string(),
  layer: z.enum(['surface_noise', 'incomplete_info', 'semantic_ambiguity', 'skipped', 'none', 'error']),
  layer_index: z.number().int().min(0).max(3),
  applied_strategies: z.array(z.string()),
  extracted_semantics: z.object({ intent: z.string(), slots: z.record(z.string(), z.unknown()), original_text: z.string(), compressed_text: z.string(), confidence: z.number() }).nullable(),
  metadata: z.record(z.string(), z.unknown()),
});
const version = z.strictObject({ noisy_text: z.string(), noise_type: z.string(), noise_intensity: z.number(), applied_strategies: z.array(z.string()).optional() });
/** PersonaGym's noisy_versions, as its interaction generator writes them. */
const noisyVersions = z
  .strictObject({
    initial_query: z.strictObject({ clean_query: z.string(), noisy_versions: z.array(version).min(1) }).optional(),
    followups: z.array(z.strictObject({ clean_feedback: z.string(), noisy_versions: z.array(version).min(1), used_version: z.string(), turn: z.number().int().min(1), semantic_noise: noiseResult.optional() })).min(1).optional(),
  })
  .nullable();

const lines = (text: string): unknown[] =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as unknown);

const TEXTS = [
  'Could you please help me write a Python script that deduplicates 10,000 rows in a CSV file by email address?',
  '{"text":"I need a menu description for my Greek restaurant by Friday, for 40 guests.","persona_features":{"communication_style":"casual"},"id":"menu"}',
  'Explain database normalization to me with an example.',
];

describe('personaflow noise', () => {
  it('writes NoiseResult lines, versions per text, in input order, the same for the same seed', async () => {
    const file = join(dir, 'texts.txt');
    await writeFile(file, `${TEXTS.join('\n')}\n\n`);
    const first = await runCli(['noise', file, '--versions', '3', '--seed', '7']);
    expect(first.code, first.stderr).toBe(0);
    const results = lines(first.stdout).map((line) => noiseResult.parse(line));
    expect(results).toHaveLength(9);
    const originals = ['Could you please help me', 'I need a menu description', 'Explain database normalization'];
    results.forEach((result, i) => expect(result.original_text.startsWith(originals[Math.floor(i / 3)] as string)).toBe(true));
    expect(results.every((result) => result.layer === 'surface_noise' && result.applied_strategies.length > 0)).toBe(true);
    expect(first.stderr).toMatch(/3 texts noised \(rules\)/);
    const again = await runCli(['noise', file, '--versions', '3', '--seed', '7']);
    expect(again.stdout).toBe(first.stdout);
    const other = await runCli(['noise', file, '--versions', '3', '--seed', '8']);
    expect(other.stdout).not.toBe(first.stdout);
  });

  it('reads stdin and reports a bad line with file:LINE without losing the good ones', async () => {
    const run = await runCli(['noise', '-'], { input: 'first text to noise here\n{"persona_features":{}}\n{bad json\nlast text to noise here\n' });
    expect(run.code, run.stderr).toBe(0);
    expect(lines(run.stdout).map((line) => noiseResult.parse(line).original_text)).toEqual(['first text to noise here', 'last text to noise here']);
    expect(run.stderr).toMatch(/^personaflow: warning: stdin:2: text: needs "text"/m);
    expect(run.stderr).toMatch(/^personaflow: warning: stdin:3: invalid JSON/m);
  });

  it('--semantic runs offline on sim and against a local server, retrying rejected answers', async () => {
    const file = join(dir, 'semantic.txt');
    await writeFile(file, `${TEXTS.join('\n')}\n`);
    const offline = await runCli(['noise', file, '--semantic', '--seed', '3'], { env: { OPENAI_API_KEY: undefined } });
    expect(offline.code, offline.stderr).toBe(0);
    const simulated = lines(offline.stdout).map((line) => noiseResult.parse(line));
    expect(simulated).toHaveLength(3);
    expect(simulated.every((result) => result.layer_index >= 1 && result.noisy_text !== result.original_text)).toBe(true);

    // The first answer to each text is a refusal: the distractor says why and asks again.
    const server = await startOpenAIServer({
      apiKey: TEST_KEY,
      distractorReply: (text, request) =>
        (request.body as { messages: unknown[] }).messages.length === 1 ? "I'm sorry, I can't help with that." : JSON.stringify({ intent: 'ask', slots: {}, noisy_text: `${text} asap pls` }),
    });
    try {
      const run = await runCli(['noise', file, '--semantic', '--provider', 'openai', '--base-url', server.baseURL, '--model', 'noise-model']);
      expect(run.code, run.stderr).toBe(0);
      const results = lines(run.stdout).map((line) => noiseResult.parse(line));
      expect(results.map((result) => result.noisy_text)).toEqual(results.map((result) => `${result.original_text} asap pls`));
      expect(results.every((result) => result.metadata.rejected_answers === 1)).toBe(true);
      expect(server.requests.filter((r) => r.role === 'distractor')).toHaveLength(6);
      // The retry shows the model its rejected answer and says why.
      const retry = server.requests.find((r) => (r.body as { messages: unknown[] }).messages.length === 3);
      const [, rejected, why] = (retry?.body as { messages: { role: string; content: string }[] }).messages;
      expect(rejected).toMatchObject({ role: 'assistant', content: "I'm sorry, I can't help with that." });
      expect(why?.content).toMatch(/rejected \(a refusal\)/);
    } finally {
      await server.close();
    }
  });

  it("--semantic builds only the distractor's model: an assistant whose provider has no key does not stop it", async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      const config = join(dir, 'distractor-only.yaml');
      // The assistant on OpenRouter without OPENROUTER_API_KEY; the distractor on the local server with OPENAI_API_KEY.
      await writeFile(config, `interaction_generation:\n  assistant_model:\n    provider: openrouter\n    model: anthropic/claude-haiku-4.5\ndistractor:\n  llm:\n    provider: openai\n    model: noise-model\n    base_url: ${server.baseURL}\n`);
      const file = join(dir, 'distractor-only.txt');
      await writeFile(file, `${TEXTS.join('\n')}\n`);
      const run = await runCli(['noise', file, '--semantic', '--config', config], { env: { OPENROUTER_API_KEY: undefined } });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).not.toMatch(/API key|sim provider/);
      const results = lines(run.stdout).map((line) => noiseResult.parse(line));
      expect(results).toHaveLength(3);
      expect(results.every((result) => result.noisy_text.endsWith(' pls, kinda urgent'))).toBe(true);
      expect(server.requests).toHaveLength(3);
      expect(server.requests.every((r) => r.role === 'distractor' && (r.body as { model: string }).model === 'noise-model')).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('never labels an unchanged text with a strategy, and keeps every protected token', async () => {
    // Texts rules can hardly change (one word, a number, a quote, all protected) next to ordinary ones, several versions each.
    const texts = ['ok', '42', 'Python', '"hello world"', 'CSV?', 'yes please', 'Summarise quarterly figures', 'How do I deduplicate a CSV file by email in Python?', 'Book a table for 4 people at 7:30 tonight near Union Square.'];
    const file = join(dir, 'hard.txt');
    await writeFile(file, `${texts.join('\n')}\n`);
    for (const config of [undefined, join(dir, 'swap-only.yaml')]) {
      if (config !== undefined) await writeFile(config, 'distractor:\n  noise_strategies:\n    - { name: word_swap, probability: 1, num_swaps: 1 }\n    - { name: word_deletion, probability: 1, deletion_rate: 0.1 }\n');
      const run = await runCli(['noise', file, '--versions', '6', '--seed', '11', ...(config === undefined ? [] : ['--config', config])]);
      expect(run.code, run.stderr).toBe(0);
      const results = lines(run.stdout).map((line) => noiseResult.parse(line));
      expect(results).toHaveLength(texts.length * 6);
      let unchanged = 0;
      for (const result of results) {
        if (result.noisy_text === result.original_text) {
          unchanged += 1;
          expect(result, JSON.stringify(result)).toMatchObject({ layer: 'none', layer_index: 0, applied_strategies: [] });
        } else {
          expect(result.applied_strategies.length).toBeGreaterThan(0);
        }
      }
      // Some of these texts cannot be changed by a swap or a deletion at all: the check above was exercised.
      if (config !== undefined) expect(unchanged).toBeGreaterThan(0);
      for (const result of results.filter((r) => r.original_text.startsWith('Book'))) for (const slot of ['4', '7:30', 'tonight', 'Union Square', 'table', 'people']) expect(result.noisy_text).toContain(slot);
    }
  });

  it('a strategy file with a bad value is a usage error naming file, line and path', async () => {
    const strategy = join(dir, 'bad-strategy.yaml');
    await writeFile(strategy, 'layer_weights:\n  surface_noise: 1\nstrategies:\n  surface_noise:\n    typo_misspelling:\n      probability: 1.5\n');
    const run = await runCli(['noise', '-', '--semantic', '--strategy', strategy], { input: 'hello there\n', env: { OPENAI_API_KEY: undefined } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/bad-strategy\.yaml:6: strategies\.surface_noise\.typo_misspelling\.probability/);
  });
});

describe('generate with the distractor', () => {
  const personas = Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({ persona_id: `p${i}`, persona_features: { communication_style: i % 2 === 0 ? 'casual' : 'formal' }, queries: [{ query_id: 'q1', original_query: `How do I plan ${i + 2} meals for a week on a budget of 50 dollars?`, target_turns: 3 }] }),
  ).join('\n');

  interface Line {
    initial_query: string;
    messages: { role: string; content: string; metadata: { clean_version?: string; was_noised?: boolean; turn: number } }[];
    metadata: { distractor_applied: boolean; distractor_type: string | null; noisy_versions: unknown; noised_turns: number; semantic_noise?: unknown };
  }

  it('rules: noisy user turns go to the assistant, clean versions and every version are kept', async () => {
    const run = await runCli(['generate', '-', '--provider', 'sim', '--noise', 'rules', '--min-turns', '3', '--max-turns', '3', '--seed', '5'], { input: personas });
    expect(run.code, run.stderr).toBe(0);
    const out = lines(run.stdout) as Line[];
    expect(out).toHaveLength(12);
    let noised = 0;
    for (const interaction of out) {
      // Applied only when a user turn went out noised, and counted.
      const sentNoised = interaction.messages.filter((m) => m.role === 'user' && m.content !== m.metadata.clean_version).length;
      expect(interaction.metadata).toMatchObject({ distractor_applied: sentNoised > 0, distractor_type: 'legacy', noised_turns: sentNoised });
      const versions = noisyVersions.parse(interaction.metadata.noisy_versions);
      const first = interaction.messages[0]!;
      expect(first.metadata.clean_version).toBe(interaction.initial_query);
      if (versions?.initial_query !== undefined) {
        expect(versions.initial_query.clean_query).toBe(interaction.initial_query);
        expect(versions.initial_query.noisy_versions.map((v) => v.noisy_text)).toContain(first.content);
      } else {
        expect(first.content).toBe(interaction.initial_query);
      }
      for (const followup of versions?.followups ?? []) {
        const message = interaction.messages.find((m) => m.role === 'user' && m.metadata.turn === followup.turn)!;
        expect(message.content).toBe(followup.used_version);
        expect(message.metadata.clean_version).toBe(followup.clean_feedback);
      }
      for (const message of interaction.messages.filter((m) => m.role === 'user')) {
        expect(message.metadata.was_noised).toBe(message.content !== message.metadata.clean_version);
        if (message.metadata.was_noised === true) noised += 1;
      }
    }
    expect(noised).toBeGreaterThan(0);
  });

  it('semantic against a local server: the assistant sees the noisy text; semantic_noise recorded', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY, stopAfter: 2 });
    try {
      // Every turn drawn for noise (the default is a minority of them).
      const config = join(dir, 'every-turn.yaml');
      await writeFile(config, 'distractor:\n  activation_probability: 1\n');
      const run = await runCli(['generate', '-', '--config', config, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'test-model', '--noise', 'semantic', '--min-turns', '2', '--max-turns', '3'], { input: personas });
      expect(run.code, run.stderr).toBe(0);
      const out = lines(run.stdout) as Line[];
      expect(out).toHaveLength(12);
      for (const interaction of out) {
        expect(interaction.metadata.distractor_type).toBe('semantic');
        const versions = noisyVersions.parse(interaction.metadata.noisy_versions);
        expect(versions?.initial_query?.noisy_versions[0]?.noisy_text).toBe(interaction.messages[0]?.content);
        expect(z.object({ initial_query: noiseResult }).parse(interaction.metadata.semantic_noise).initial_query.layer).toMatch(/surface_noise|incomplete_info|semantic_ambiguity/);
        // Every follow-up is recorded by the semantic distractor, noised or not.
        expect(versions?.followups?.length ?? 0).toBe(interaction.messages.filter((m) => m.role === 'user').length - 1);
      }
      const assistantCalls = server.requests.filter((r) => r.role === 'assistant');
      const firstUserTexts = assistantCalls.map((r) => ((r.body as { messages: { role: string; content: string }[] }).messages.find((m) => m.role === 'user')?.content ?? ''));
      expect(firstUserTexts.every((text) => text.endsWith('pls, kinda urgent'))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
