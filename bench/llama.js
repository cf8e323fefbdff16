#!/usr/bin/env node
// The llama provider with the tiny test model: generation tokens/s through the provider, and interactions/s
// (plus tokens/s) through the whole CLI. Standalone for now (`npm run build && node bench/llama.js`);
// `llamaBench()` returns the figures for bench/run.js. BENCH_QUICK=1 runs one repetition of each.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { personaFile } from './make-personas.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'personaflow.js');
export const LLAMA_MODEL = resolve(ROOT, '../shared/models/stories260K.gguf');
const log = (text) => process.stderr.write(`bench: ${text}\n`);

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: values.length };
}

/** Why the llama bench cannot run here, or undefined when it can. */
export function llamaUnavailable() {
  if (!existsSync(LLAMA_MODEL)) return `${LLAMA_MODEL} is absent`;
  if (!existsSync(join(ROOT, 'node_modules', 'node-llama-cpp', 'package.json'))) return 'node-llama-cpp is not installed';
  if (!existsSync(join(ROOT, 'dist', 'models', 'llama.js'))) return 'not built (npm run build)';
  return undefined;
}

/** Provider alone: `calls` requests of `maxTokens` each, `sequences` at once, from one loaded model (load time excluded). */
async function providerRun({ sequences, calls, maxTokens, threads }) {
  const { createLlamaModel } = await import(pathToFileURL(join(ROOT, 'dist', 'models', 'llama.js')).href);
  const model = createLlamaModel({ model: LLAMA_MODEL, threads, sequences });
  const signal = new AbortController().signal;
  const request = (i) => ({ module: 'assistant', messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: `Story number ${i} about a cat.` }], temperature: 0.7, maxCompletionTokens: maxTokens });
  try {
    await model.complete(request(-1), signal); // load and warm up
    const started = performance.now();
    let next = 0;
    let output = 0;
    let input = 0;
    const worker = async () => {
      while (next < calls) {
        const reply = await model.complete(request(next++), signal);
        output += reply.usage.output;
        input += reply.usage.input;
      }
    };
    await Promise.all(Array.from({ length: sequences }, worker));
    const wallS = (performance.now() - started) / 1000;
    return { outputTokensPerS: output / wallS, callsPerS: calls / wallS, inputTokens: input / calls };
  } finally {
    await model.close();
  }
}

/** The whole CLI: `personas` conversations of 2-3 turns with short replies, `-j concurrency`, process start and model load included. */
async function cliRun({ input, config, concurrency, threads, out }) {
  await rm(out, { recursive: true, force: true });
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, 'generate', input, '-c', config, '--provider', 'llama', '--model', LLAMA_MODEL, '-j', String(concurrency), '--threads', String(threads), '--supplement-rounds', '0', '--out', out, '-q'], {
    cwd: ROOT,
    env: { ...process.env, OPENAI_API_KEY: '', OPENROUTER_API_KEY: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const [code] = await once(child, 'close');
  const wallS = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`personaflow generate exited ${code}: ${stderr.slice(-500)}`);
  const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')).statistics.summary;
  const interactions = (await readFile(join(out, 'interactions.ndjson'), 'utf8')).split('\n').filter(Boolean).length;
  return { interactionsPerS: interactions / wallS, outputTokensPerS: usage.total_output_tokens / wallS, tokensPerS: usage.total_tokens / wallS, calls: usage.total_calls, interactions, wallS };
}

/**
 * Measures the llama provider with the tiny model: provider tokens/s at 1 and 4 sequences, and the CLI's
 * interactions/s end to end. Medians of `runs` repetitions.
 */
export async function llamaBench({ runs = 3, quick = false } = {}) {
  const threads = Math.max(1, Math.floor(availableParallelism() / 2));
  const work = await mkdtemp(join(tmpdir(), 'personaflow-llama-bench-'));
  try {
    const provider = [];
    for (const sequences of [1, 4]) {
      const calls = quick ? 8 : 32;
      log(`llama provider: ${calls} calls of 128 tokens, ${sequences} sequence(s), ${threads} thread(s), ${runs} runs`);
      const results = [];
      for (let i = 0; i < runs; i += 1) results.push(await providerRun({ sequences, calls, maxTokens: 128, threads }));
      provider.push({ sequences, calls, maxTokens: 128, outputTokensPerS: stats(results.map((r) => r.outputTokensPerS)), callsPerS: stats(results.map((r) => r.callsPerS)) });
    }
    const personas = quick ? 4 : 12;
    const input = await personaFile(join(work, 'personas.ndjson'), personas);
    const config = join(work, 'llama.yaml');
    await writeFile(config, ['interaction_generation:', '  min_turns: 2', '  max_turns: 3', '  assistant_model: { max_completion_tokens: 64 }', '  user_model: { max_completion_tokens: 32 }', ''].join('\n'));
    log(`llama CLI: ${personas} conversations of 2-3 turns (replies ≤ 64 tokens, user turns ≤ 32), -j 4, ${runs} runs`);
    const results = [];
    for (let i = 0; i < runs; i += 1) results.push(await cliRun({ input, config, concurrency: 4, threads, out: join(work, 'out') }));
    return {
      model: 'stories260K.gguf',
      threads,
      provider,
      cli: {
        personas,
        concurrency: 4,
        interactionsPerS: stats(results.map((r) => r.interactionsPerS)),
        outputTokensPerS: stats(results.map((r) => r.outputTokensPerS)),
        tokensPerS: stats(results.map((r) => r.tokensPerS)),
        wallS: stats(results.map((r) => r.wallS)),
      },
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const fmt = (s, digits = 0) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

/** Markdown rows for RESULTS.md. */
export function llamaMarkdown(result) {
  return [
    `| what (stories260K.gguf, ${result.threads} thread(s)) | tokens/s | interactions/s |`,
    '| --- | --- | --- |',
    ...result.provider.map((row) => `| provider, ${row.calls} calls × ${row.maxTokens} tokens, ${row.sequences} sequence(s) | ${fmt(row.outputTokensPerS)} generated | — |`),
    `| CLI generate, ${result.cli.personas} conversations, -j ${result.cli.concurrency} (start and load included) | ${fmt(result.cli.outputTokensPerS)} generated, ${fmt(result.cli.tokensPerS)} in + out | ${fmt(result.cli.interactionsPerS, 2)} |`,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const why = llamaUnavailable();
  if (why !== undefined) {
    log(`llama bench skipped: ${why}`);
  } else {
    const quick = process.env.BENCH_QUICK === '1';
    const result = await llamaBench({ runs: quick ? 1 : 3, quick });
    process.stdout.write(`${llamaMarkdown(result)}\n\n${JSON.stringify(result)}\n`);
  }
}
