// End to end: `personaflow estimate` against what generate then spends, on sim and against a local OpenAI-compatible server; generate --max-cost's warning.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_KEY, ensureBuilt, runCli } from '../helpers/cli.js';
import { startOpenAIServer, type FakeOpenAIServer } from '../helpers/openai-server.js';
import { personaLines } from '../helpers/rundir.js';

/**
 * The factor the docs state: a run's calls, tokens and dollars per model lie within the estimate's range
 * widened by this much either way (low ÷ 1.5 to high × 1.5). It covers a sample standing for the whole
 * input, a provider's own count beside the tokenizer's, and a run whose judge rejects more than sim's.
 */
const FACTOR = 1.5;

let dir: string;
/** 6 personas × 2 queries: 12 tasks. */
let personas: string;
/** 24 personas × 2 queries: 48 tasks. */
let more: string;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-estimate-e2e-'));
  personas = join(dir, 'personas.ndjson');
  await writeFile(personas, personaLines(6));
  more = join(dir, 'more.ndjson');
  await writeFile(more, personaLines(24));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const yaml = async (name: string, lines: readonly string[]): Promise<string> => {
  const path = join(dir, name);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
};

interface Range {
  low: number;
  high: number;
}
interface EstimateJson {
  input: { file: string; personas: number; tasks: number; sampled: number; shard: string | null };
  models: { model: string; tokenizer: string | null; calls: Range; input_tokens: Range; output_tokens: Range; usd: Range | null }[];
  total: { usd: Range; unpriced: string[] };
  exact: boolean;
  prices: 'online' | 'batch';
  per_conversation: Record<'low' | 'high', { turns: number; rejected: number; failed: number; top_ups: number }>;
  assumptions: string[];
}
interface Used {
  input_tokens: number;
  output_tokens: number;
  call_count: number;
}

const usageOf = async (out: string): Promise<{ byModel: Record<string, Used>; cost: number }> => {
  const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { by_model: Record<string, Used> }; cost: { total: number } };
  return { byModel: usage.statistics.by_model, cost: usage.cost.total };
};

async function estimateOf(args: readonly string[], env?: Record<string, string | undefined>): Promise<EstimateJson> {
  const run = await runCli(['estimate', ...args, '--json'], env === undefined ? {} : { env });
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as EstimateJson;
}

/** `value` within [low ÷ factor, high × factor]. */
function expectWithin(value: number, range: Range, factor: number, what: string): void {
  expect(value, `${what}: ${value} against ${range.low}–${range.high} (× ${factor})`).toBeGreaterThanOrEqual(range.low / factor);
  expect(value, `${what}: ${value} against ${range.low}–${range.high} (× ${factor})`).toBeLessThanOrEqual(range.high * factor);
}

/** Everything on: a weighted pool, the judge, semantic noise, style transfer, supplement rounds. */
const EVERYTHING = [
  'interaction_generation:',
  '  min_turns: 2',
  '  max_turns: 4',
  '  max_supplement_rounds: 2',
  '  assistant_model:',
  '    model_pool:',
  '      - { provider: openai, model: gpt-4o-mini, weight: 0.7 }',
  '      - { provider: openai, model: gpt-4.1, weight: 0.3 }',
  '  user_model: { provider: openai, model: gpt-4.1-nano }',
  'distractor: { enabled: true, use_semantic: true, llm: { model: gpt-4.1-mini } }',
  'judge: { enabled: true, llm: { model: gpt-4.1-mini } }',
  'query_generation: { style_transfer: { enabled: true, transfer_probability: 0.5 }, llm: { model: gpt-4.1-mini } }',
];

describe('estimate, then generate with the same settings on sim', () => {
  it('with every task rendered, the run\'s usage.json is the estimate: calls and tokens of every model', async () => {
    const config = await yaml('everything.yaml', EVERYTHING);
    const estimate = await estimateOf([personas, '-c', config, '--provider', 'sim', '--seed', '5']);
    expect(estimate.exact).toBe(true);
    expect(estimate.input).toEqual({ file: personas, personas: 6, tasks: 12, sampled: 12, shard: null });
    const out = join(dir, 'sim-all');
    const run = await runCli(['generate', personas, '-c', config, '--provider', 'sim', '--seed', '5', '--out', out, '-q']);
    expect([0, 3], run.stderr).toContain(run.code);
    const { byModel } = await usageOf(out);
    expect(estimate.models.map((m) => m.model)).toEqual(Object.keys(byModel).sort());
    for (const m of estimate.models) {
      const used = byModel[m.model]!;
      expect({ model: m.model, calls: m.calls, input: m.input_tokens, output: m.output_tokens }).toEqual({
        model: m.model,
        calls: { low: used.call_count, high: used.call_count },
        input: { low: used.input_tokens, high: used.input_tokens },
        output: { low: used.output_tokens, high: used.output_tokens },
      });
    }
    // The judge and the supplement rounds ran in both (sim's judge rejects some): they are in the figures.
    expect(byModel['sim/gpt-4.1-mini']!.call_count).toBeGreaterThan(12);
  }, 60_000);

  it(`with a sample of a quarter of the input, the run lies within × ${FACTOR} of the estimate: every model called in every conversation, and the total`, async () => {
    const config = await yaml('everything-sampled.yaml', EVERYTHING);
    const estimate = await estimateOf([more, '-c', config, '--provider', 'sim', '--sample', '12']);
    expect(estimate.input).toMatchObject({ tasks: 48, sampled: 12 });
    expect(estimate.assumptions.join('\n')).toMatch(/12 of 48 tasks rendered \(a seeded sample\), figures × 4\.0/);
    const out = join(dir, 'sim-sampled');
    const run = await runCli(['generate', more, '-c', config, '--provider', 'sim', '--out', out, '-q']);
    expect([0, 3], run.stderr).toContain(run.code);
    const { byModel } = await usageOf(out);
    // The user simulator and the helpers are called in every conversation; the pool's models as the run's draws fall.
    for (const model of ['sim/gpt-4.1-nano', 'sim/gpt-4.1-mini']) {
      const m = estimate.models.find((e) => e.model === model)!;
      const used = byModel[model]!;
      expectWithin(used.call_count, m.calls, FACTOR, `${model} calls`);
      expectWithin(used.input_tokens, m.input_tokens, FACTOR, `${model} input tokens`);
      expectWithin(used.output_tokens, m.output_tokens, FACTOR, `${model} output tokens`);
    }
    const sum = (of: (m: EstimateJson['models'][number]) => Range): Range => estimate.models.reduce((all, m) => ({ low: all.low + of(m).low, high: all.high + of(m).high }), { low: 0, high: 0 });
    const used = Object.values(byModel).reduce((all, u) => all + u.input_tokens + u.output_tokens, 0);
    const estimated = sum((m) => ({ low: m.input_tokens.low + m.output_tokens.low, high: m.input_tokens.high + m.output_tokens.high }));
    expectWithin(used, estimated, FACTOR, 'all tokens');
  }, 90_000);
});

/** The server's replies are counted as a tokenizer would count them: characters / 4, both ways. */
const countingServer = (): Promise<FakeOpenAIServer> =>
  startOpenAIServer({ apiKey: TEST_KEY, stopAfter: 3, usage: (request, counted) => ({ prompt: counted.prompt, completion: Math.max(1, Math.ceil((request.reply ?? '').length / 4)) }) });

/** Real model names (with personaflow.prices' list prices), served by the local server. */
const SERVED = [
  'interaction_generation:',
  '  min_turns: 2',
  '  max_turns: 4',
  '  max_supplement_rounds: 1',
  '  assistant_model: { model: gpt-4o-mini, max_completion_tokens: 300 }',
  '  user_model: { model: gpt-4.1-nano, max_completion_tokens: 100 }',
  'judge: { enabled: true, llm: { model: gpt-4.1-mini, max_completion_tokens: 400 } }',
];

describe('estimate, then generate against a local OpenAI-compatible server', () => {
  it(`the run's calls, tokens and dollars per model lie within × ${FACTOR} of the estimate, which called nothing`, async () => {
    const server = await countingServer();
    try {
      const config = await yaml('served.yaml', SERVED);
      // The server's answers are about 30 tokens long: a user who knows that says so.
      const estimate = await estimateOf([personas, '-c', config, '--reply-tokens', '30']);
      expect(server.count).toBe(0);
      expect(estimate.exact).toBe(false);
      expect(estimate.models.map((m) => [m.model, m.tokenizer])).toEqual([
        ['openai/gpt-4.1-mini', 'o200k_base'],
        ['openai/gpt-4.1-nano', 'o200k_base'],
        ['openai/gpt-4o-mini', 'o200k_base'],
      ]);
      const out = join(dir, 'served');
      const run = await runCli(['generate', personas, '-c', config, '--provider', 'openai', '--base-url', server.baseURL, '--out', out]);
      expect(run.code, run.stderr).toBe(0);
      const usage = await usageOf(out);
      expect(Object.keys(usage.byModel).sort()).toEqual(estimate.models.map((m) => m.model));
      for (const m of estimate.models) {
        const used = usage.byModel[m.model]!;
        expectWithin(used.call_count, m.calls, FACTOR, `${m.model} calls`);
        expectWithin(used.input_tokens, m.input_tokens, FACTOR, `${m.model} input tokens`);
        expectWithin(used.output_tokens, m.output_tokens, FACTOR, `${m.model} output tokens`);
      }
      expectWithin(usage.cost, estimate.total.usd, FACTOR, 'USD');
      // And not by a range so wide it says nothing: the run is in the lower part, as its short replies are.
      expect(usage.cost).toBeLessThan((estimate.total.usd.low + estimate.total.usd.high) / 2);
    } finally {
      await server.close();
    }
  }, 90_000);
});

describe('generate --max-cost below the estimate', () => {
  it('warns once on stderr before the first call, with the range and the command that shows the breakdown; the budget then does what --max-cost says', async () => {
    const server = await countingServer();
    try {
      const config = await yaml('budget.yaml', SERVED);
      const out = join(dir, 'budget');
      const run = await runCli(['generate', personas, '-c', config, '--provider', 'openai', '--base-url', server.baseURL, '--max-turns', '3', '--max-cost', '0.004', '--out', out, '-q']);
      const warnings = run.stderr.split('\n').filter((line) => line.includes('warning: --max-cost'));
      expect(warnings, run.stderr).toHaveLength(1);
      expect(warnings[0]).toMatch(/^personaflow: warning: --max-cost \$0\.004 is below the estimated cost of the 12 task\(s\) in \S+personas\.ndjson \(\$0\.\d{4}–\$0\.\d{4}\): the run will stop starting conversations once it is reached\. The breakdown: personaflow estimate \S+personas\.ndjson -c \S+budget\.yaml --provider openai --max-turns 3$/);
      // The line shows no base URL and no key.
      expect(warnings[0]).not.toContain(server.baseURL);
      expect(run.stderr).not.toContain(TEST_KEY);
      // Before the run's own lines, then the budget as ever: what fits is written, the rest waits for a resume.
      expect(run.stderr.indexOf('warning: --max-cost')).toBeLessThan(run.stderr.indexOf('budget reached'));
      expect(run.code, run.stderr).toBe(3);
      const usage = await usageOf(out);
      expect(usage.cost).toBeGreaterThan(0);
      expect(usage.cost).toBeLessThanOrEqual(0.004);
      // The breakdown it names is a command that works.
      const breakdown = warnings[0]!.replace(/^.*The breakdown: personaflow /, '').split(' ');
      const shown = await runCli(breakdown);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toMatch(/^total +\$0\.\d{4}–\$0\.\d{4}$/m);
    } finally {
      await server.close();
    }
  }, 90_000);

  it('prices only the first N tasks with --limit, and its breakdown command carries the limit', async () => {
    const server = await countingServer();
    try {
      const config = await yaml('budget-limit.yaml', SERVED);
      const run = await runCli(['generate', personas, '-c', config, '--provider', 'openai', '--base-url', server.baseURL, '--max-turns', '3', '--max-cost', '0.0001', '--limit', '2', '--out', join(dir, 'budget-limit'), '-q']);
      const warnings = run.stderr.split('\n').filter((line) => line.includes('warning: --max-cost'));
      expect(warnings, run.stderr).toHaveLength(1);
      expect(warnings[0]).toMatch(/the estimated cost of the 2 task\(s\) in /);
      expect(warnings[0]).toMatch(/ --limit 2$/);
      const limited = await estimateOf([personas, '-c', config, '--provider', 'openai', '--max-turns', '3', '--limit', '2']);
      const whole = await estimateOf([personas, '-c', config, '--provider', 'openai', '--max-turns', '3']);
      expect(limited.input).toMatchObject({ tasks: 2, sampled: 2 });
      expect(whole.input).toMatchObject({ tasks: 12 });
      expect(limited.total.usd.high).toBeLessThan(whole.total.usd.high);
    } finally {
      await server.close();
    }
  }, 90_000);

  it('says nothing when the ceiling is above the low end', async () => {
    const server = await countingServer();
    try {
      const config = await yaml('budget-enough.yaml', SERVED);
      const run = await runCli(['generate', personas, '-c', config, '--provider', 'openai', '--base-url', server.baseURL, '--max-cost', '5', '--out', join(dir, 'enough')]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).not.toMatch(/warning/);
    } finally {
      await server.close();
    }
  }, 60_000);
});

describe('estimate output', () => {
  it('--json: the input, each model\'s ordered ranges and tokenizer, the priced total, the unpriced models, the assumptions; no key needed', async () => {
    // A pool entry without a price (and without a tokenizer), and no key in the environment.
    const config = await yaml('unpriced.yaml', EVERYTHING.map((line) => line.replace('model: gpt-4.1, weight: 0.3', 'model: my-finetune, weight: 0.3')));
    const estimate = await estimateOf([personas, '-c', config, '--sample', '4'], { OPENAI_API_KEY: undefined });
    expect(Object.keys(estimate).sort()).toEqual(['assumptions', 'exact', 'input', 'models', 'per_conversation', 'prices', 'total']);
    expect(estimate.input).toEqual({ file: personas, personas: 6, tasks: 12, sampled: 4, shard: null });
    expect(estimate.exact).toBe(false);
    expect(estimate.prices).toBe('online');
    expect(estimate.models.map((m) => m.model)).toEqual(['openai/gpt-4.1-mini', 'openai/gpt-4.1-nano', 'openai/gpt-4o-mini', 'openai/my-finetune']);
    expect(estimate.models.find((m) => m.model === 'openai/my-finetune')).toMatchObject({ tokenizer: 'chars/4', usd: null });
    for (const m of estimate.models) {
      for (const range of [m.calls, m.input_tokens, m.output_tokens, ...(m.usd === null ? [] : [m.usd])]) {
        expect(Object.keys(range).sort()).toEqual(['high', 'low']);
        expect(range.low).toBeLessThanOrEqual(range.high);
      }
      for (const range of [m.calls, m.input_tokens, m.output_tokens]) expect(Number.isInteger(range.low) && Number.isInteger(range.high)).toBe(true);
      expect(m.calls.low).toBeGreaterThan(0);
    }
    const priced = estimate.models.filter((m) => m.usd !== null);
    expect(estimate.total.usd.low).toBeCloseTo(priced.reduce((sum, m) => sum + m.usd!.low, 0), 12);
    expect(estimate.total.usd.high).toBeCloseTo(priced.reduce((sum, m) => sum + m.usd!.high, 0), 12);
    expect(estimate.total.unpriced).toEqual(['openai/my-finetune']);
    expect(estimate.per_conversation.low.turns).toBe(2);
    expect(estimate.per_conversation.high.turns).toBe(4);
    expect(estimate.per_conversation.high.top_ups).toBeGreaterThanOrEqual(0);
    expect(estimate.assumptions.join('\n')).toMatch(/^tokens: .*openai\/my-finetune characters \/ 4 \(no tokenizer for this model\)$/m);
    expect(estimate.assumptions.join('\n')).toMatch(/^pool: 70% openai\/gpt-4o-mini, 30% openai\/my-finetune of the conversations/m);
  }, 60_000);

  it('as text: a table per model, the total, what has no price, the assumptions; bad lines reported as FILE:LINE, exit 0', async () => {
    const input = join(dir, 'with-bad-line.ndjson');
    await writeFile(input, `${personaLines(2)}{"persona_id": }\n`);
    const run = await runCli(['estimate', input, '--model', 'my-finetune', '--batch'], { env: { OPENAI_API_KEY: undefined } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/with-bad-line\.ndjson:3: /);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(`estimate for ${input}: 2 persona(s), 4 task(s)`);
    expect(lines[1]).toMatch(/^model +calls +input tokens +output tokens +USD$/);
    expect(lines[2]).toMatch(/^openai\/my-finetune +\d+–\d+ +[\d,]+–[\d,]+ +[\d,]+–[\d,]+ +no price$/);
    expect(lines[3]).toMatch(/^total +\$0\.0000$/);
    expect(lines[4]).toBe('the total leaves out openai/my-finetune: no price (add it under personaflow.prices, USD per million input/output tokens)');
    expect(lines[5]).toBe('assumptions:');
    expect(run.stdout).toMatch(/^ {2}prices: the Batch API's/m);
  }, 60_000);
});
