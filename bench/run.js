#!/usr/bin/env node
// `npm run bench`: engine overhead, efficiency against Little's law, personaflow against a plain script,
// and peak memory, measured in one run on this machine; writes bench/RESULTS.md and bench/results.json.
// BENCH_QUICK=1 runs a small version of everything (to check the harness, not to quote);
// BENCH_ONLY=little,plain re-measures some sections (engine little plain mem rateLimit resume llama view workers);
// `node bench/run.js --report` rewrites RESULTS.md from RESULTS.json without measuring.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { personaFile } from './make-personas.js';
import { llamaBench, llamaMarkdown, llamaUnavailable } from './llama.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'personaflow.js');
const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = QUICK ? 1 : 3;
const work = await mkdtemp(join(tmpdir(), 'personaflow-bench-'));
const log = (text) => process.stderr.write(`bench: ${text}\n`);

// ---------------------------------------------------------------- helpers

/** Runs node with the rusage preload; resolves with wall time, CPU seconds, peak RSS and stderr. */
async function measure(args, env = {}) {
  const rusageFile = join(work, `rusage-${Math.random().toString(36).slice(2)}.json`);
  const started = performance.now();
  const child = spawn(process.execPath, ['--require', join(ROOT, 'bench', 'rusage.cjs'), ...args], {
    cwd: ROOT,
    env: { ...process.env, BENCH_RUSAGE: rusageFile, OPENAI_API_KEY: '', OPENROUTER_API_KEY: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'], // stdout to /dev/null: the data is written and thrown away
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const [code] = await once(child, 'close');
  const wallS = (performance.now() - started) / 1000;
  const usage = JSON.parse(await readFile(rusageFile, 'utf8'));
  if (code !== 0 && code !== 3) throw new Error(`${args.join(' ')} exited ${code}: ${stderr.slice(-500)}`);
  return { wallS, cpuS: (usage.userCPUTime + usage.systemCPUTime) / 1e6, peakRssMiB: usage.maxRSS / 1024, stderr, code };
}

/** Median, min and max of numbers. */
function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: values.length };
}

async function repeat(n, fn) {
  const results = [];
  for (let i = 0; i < n; i += 1) results.push(await fn(i));
  return results;
}

/** Starts bench/server.js in its own process. */
async function startServer(options) {
  const retryAfter = options.retryAfter === undefined ? [] : ['--retry-after', options.retryAfter.form, '--retry-after-ms', String(options.retryAfter.ms)];
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'server.js'), '--latency', String(options.latency), '--rate429', String(options.rate429 ?? 0), '--turns', String(options.turns), ...(options.rps === undefined ? [] : ['--rps', String(options.rps)]), ...retryAfter], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = await once(child.stdout.setEncoding('utf8'), 'data');
  const { port } = JSON.parse(line);
  const base = `http://127.0.0.1:${port}`;
  return {
    baseURL: `${base}/v1`,
    stats: async () => (await fetch(`${base}/stats`)).json(),
    reset: async () => void (await fetch(`${base}/reset`, { method: 'POST' })),
    close: async () => {
      child.kill('SIGTERM');
      await once(child, 'close');
    },
  };
}

/** Calls per second over the middle 80% of answered calls (excludes ramp-up and the tail of the last conversations). */
function steadyRate(done) {
  if (done.length < 10) return done.length / Math.max(1e-9, ((done.at(-1) ?? 0) - (done[0] ?? 0)) / 1000);
  const sorted = [...done].sort((a, b) => a - b);
  const lo = Math.floor(sorted.length * 0.1);
  const hi = Math.floor(sorted.length * 0.9);
  return (hi - lo) / ((sorted[hi] - sorted[lo]) / 1000);
}

const summaryOf = (stderr) => {
  const match = /(\d+) interactions, (\d+) failures, (\d+) model calls, (\d+) retries/.exec(stderr);
  if (match === null) throw new Error(`no summary line in: ${stderr.slice(-300)}`);
  return { interactions: Number(match[1]), failures: Number(match[2]), calls: Number(match[3]), retries: Number(match[4]) };
};

// No supplement rounds: the plain script has none, and a round after a few failed conversations would
// add a generator call and a short tail of new conversations that the other side never runs.
const TURN_ARGS = ['--min-turns', '3', '--max-turns', '3', '--supplement-rounds', '0'];
const CALLS_PER_CONVERSATION = 5; // 3 assistant answers, 2 simulated-user follow-ups

// ---------------------------------------------------------------- 1. engine overhead

async function engineOverhead() {
  const n = QUICK ? 2000 : 20_000;
  const input = await personaFile(join(work, `engine-${n}.ndjson`), n);
  log(`engine overhead: sim, zero latency, ${n} tasks at 2-5 turns, ${RUNS} runs`);
  const runs = await repeat(RUNS, async () => {
    const run = await measure([BIN, 'generate', input, '--provider', 'sim', '--min-turns', '2', '--max-turns', '5', '-j', '64']);
    const summary = summaryOf(run.stderr);
    return { interactionsPerS: summary.interactions / run.wallS, callsPerS: summary.calls / run.wallS, cpuSPer1000Calls: (run.cpuS / summary.calls) * 1000, calls: summary.calls };
  });
  return {
    tasks: n,
    interactionsPerS: stats(runs.map((r) => r.interactionsPerS)),
    callsPerS: stats(runs.map((r) => r.callsPerS)),
    cpuSPer1000Calls: stats(runs.map((r) => r.cpuSPer1000Calls)),
  };
}

// ---------------------------------------------------------------- 2. Little's law

async function littlesLaw() {
  const rows = [];
  for (const latency of [50, 200]) {
    const server = await startServer({ latency, turns: 3 });
    for (const concurrency of [16, 64, 256]) {
      const ideal = concurrency / (latency / 1000);
      // About 8 s of calls at the ideal rate (2 s in quick mode).
      const conversations = Math.max(concurrency * 2, Math.round((ideal * (QUICK ? 2 : 8)) / CALLS_PER_CONVERSATION));
      const input = await personaFile(join(work, `little-${conversations}.ndjson`), conversations);
      log(`little's law: L=${latency} ms, C=${concurrency}: ${conversations} conversations, ${RUNS} runs`);
      const runs = await repeat(RUNS, async () => {
        await server.reset();
        const run = await measure([BIN, 'generate', input, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'bench', '-j', String(concurrency), ...TURN_ARGS]);
        const { done, peakInFlight } = await server.stats();
        return { efficiency: steadyRate(done) / ideal, overall: done.length / run.wallS / ideal, peakInFlight, cpuS: run.cpuS, calls: done.length };
      });
      rows.push({
        latencyMs: latency,
        concurrency,
        idealCallsPerS: ideal,
        efficiency: stats(runs.map((r) => r.efficiency)),
        wallClockEfficiency: stats(runs.map((r) => r.overall)),
        peakInFlight: Math.max(...runs.map((r) => r.peakInFlight)),
        cpuSPer1000Calls: stats(runs.map((r) => (r.cpuS / r.calls) * 1000)),
      });
    }
    await server.close();
  }
  return rows;
}

// ---------------------------------------------------------------- 3. against a plain script

/** How the random 429s of a point say when to come back: retry-after-ms 250 (and a rounded-up Retry-After), `Retry-After: 1`, or an HTTP date a second ahead. */
const RETRY_AFTER_FORMS = { ms: 'retry-after-ms: 250', seconds: 'Retry-After: 1', date: 'Retry-After: HTTP date, 1 s' };

async function plainScript() {
  const rows = [];
  const points = [
    ...[64, 256].flatMap((concurrency) => [0, 0.1].map((rate429) => ({ latency: 50, concurrency, rate429, retryAfter: { form: 'ms', ms: 250 } }))),
    // What OpenAI-compatible servers send on isolated refusals: a whole second, as seconds or as a date.
    ...['seconds', 'date'].flatMap((form) => [64, 256].map((concurrency) => ({ latency: 100, concurrency, rate429: 0.1, retryAfter: { form, ms: 1000 } }))),
  ];
  for (const { latency, concurrency, rate429, retryAfter } of points) {
    const server = await startServer({ latency, turns: 3, rate429, retryAfter });
    const conversations = QUICK ? 400 : concurrency * 16;
    const input = await personaFile(join(work, `plain-${conversations}.ndjson`), conversations);
    log(`plain script: L=${latency} ms, C=${concurrency}, 429 rate ${rate429} (${RETRY_AFTER_FORMS[retryAfter.form]}): ${conversations} conversations, ${RUNS} runs each`);
    const ours = [];
    const theirs = [];
    for (let i = 0; i < RUNS; i += 1) {
      await server.reset();
      const a = await measure([BIN, 'generate', input, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'bench', '-j', String(concurrency), ...TURN_ARGS]);
      const summary = summaryOf(a.stderr);
      ours.push({ perS: summary.interactions / a.wallS, steady: steadyRate((await server.stats()).done), failures: summary.failures, cpuS: a.cpuS });
      await server.reset();
      const b = await measure([join(ROOT, 'bench', 'plain-script.js'), input, '--base-url', server.baseURL, '--concurrency', String(concurrency), '--turns', '3']);
      const failures = Number(/plain: (\d+) failures/.exec(b.stderr)?.[1] ?? NaN);
      theirs.push({ perS: (conversations - failures) / b.wallS, steady: steadyRate((await server.stats()).done), failures, cpuS: b.cpuS });
    }
    await server.close();
    rows.push({
      latencyMs: latency,
      concurrency,
      rate429,
      retryAfter: retryAfter.form,
      conversations,
      ours: { interactionsPerS: stats(ours.map((r) => r.perS)), steadyCallsPerS: stats(ours.map((r) => r.steady)), failures: stats(ours.map((r) => r.failures)), cpuS: stats(ours.map((r) => r.cpuS)) },
      theirs: { interactionsPerS: stats(theirs.map((r) => r.perS)), steadyCallsPerS: stats(theirs.map((r) => r.steady)), failures: stats(theirs.map((r) => r.failures)), cpuS: stats(theirs.map((r) => r.cpuS)) },
      ratio: stats(ours.map((r, i) => r.perS / theirs[i].perS)),
      steadyRatio: stats(ours.map((r, i) => r.steady / theirs[i].steady)),
    });
  }
  return rows;
}

// ---------------------------------------------------------------- 4. memory

async function memory() {
  const rows = [];
  const sizes = QUICK ? [10_000, 30_000] : [10_000, 100_000, 1_000_000];
  for (const lines of sizes) {
    const input = await personaFile(join(work, `memory-${lines}.ndjson`), lines);
    const runs = lines >= 1_000_000 ? Math.min(RUNS, 2) : RUNS;
    log(`memory: ${lines} persona lines, sim, zero latency, 2 turns, output to /dev/null, ${runs} runs`);
    const args = [BIN, 'generate', input, '--provider', 'sim', '--min-turns', '2', '--max-turns', '2', '-q'];
    const results = await repeat(runs, () => measure(args));
    // One more run, with a full GC every 250 ms (which changes the peak, so it is not one of the above): what is live.
    const liveFile = join(work, `live-${lines}.json`);
    await measure(['--expose-gc', '--require', join(ROOT, 'bench', 'live-heap.cjs'), ...args], { BENCH_LIVE_HEAP: liveFile });
    const live = JSON.parse(await readFile(liveFile, 'utf8'));
    rows.push({ lines, peakRssMiB: stats(results.map((r) => r.peakRssMiB)), wallS: stats(results.map((r) => r.wallS)), liveHeapMiB: live.heap / 2 ** 20, liveBuffersMiB: live.buffers / 2 ** 20 });
    await rm(input);
  }
  return rows;
}

// ---------------------------------------------------------------- 5. a hard rate limit

/** Achieved accepted-request rate ÷ the server's limit, and the share of requests refused with 429. */
async function rateLimit() {
  const limit = 200;
  const latency = 50;
  const concurrency = 64;
  const conversations = QUICK ? 300 : 1200;
  const input = await personaFile(join(work, `ratelimit-${conversations}.ndjson`), conversations);
  const known = join(work, 'ratelimit-known.yaml');
  await writeFile(known, `personaflow:\n  limits:\n    bench: { rpm: ${limit * 60} }\n`);
  const server = await startServer({ latency, turns: 3, rps: limit });
  log(`rate limit: server allows ${limit} requests/s, L=${latency} ms, C=${concurrency}, ${conversations} conversations, ${RUNS} runs each`);
  const rows = [];
  const variants = [
    ['personaflow, limit configured', () => [BIN, 'generate', input, '-c', known, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'bench', '-j', String(concurrency), ...TURN_ARGS, '--supplement-rounds', '0']],
    ['personaflow, limit unknown (adaptive)', () => [BIN, 'generate', input, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'bench', '-j', String(concurrency), ...TURN_ARGS, '--supplement-rounds', '0']],
    ['plain script (SDK retries)', () => [join(ROOT, 'bench', 'plain-script.js'), input, '--base-url', server.baseURL, '--concurrency', String(concurrency), '--turns', '3']],
  ];
  for (const [name, args] of variants) {
    const runs = await repeat(RUNS, async (i) => {
      await server.reset();
      const run = await measure(args(i));
      const counts = await server.stats();
      const total = counts.ok + counts.limited;
      const failed = Number(/(\d+) failures/.exec(run.stderr)?.[1] ?? NaN);
      return { utilisation: steadyRate(counts.done) / limit, wasted: counts.limited / Math.max(1, total), failed, wallS: run.wallS };
    });
    rows.push({ name, utilisation: stats(runs.map((r) => r.utilisation)), wasted: stats(runs.map((r) => r.wasted)), failed: stats(runs.map((r) => r.failed)), wallS: stats(runs.map((r) => r.wallS)) });
  }
  await server.close();
  return { limit, latencyMs: latency, concurrency, conversations, rows };
}

// ---------------------------------------------------------------- 8. workers on a queue

/** Starts redis-server on 127.0.0.1 at a free port, nothing saved; resolves with its URL and a stop. */
async function startRedis() {
  const port = await new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
  const dir = await mkdtemp(join(work, 'redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  await new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', () => reject(new Error(`redis-server exited: ${output.slice(-300)}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'close');
    },
  };
}

/**
 * Interactions/s of one queue run with 1, 2 and 4 `personaflow worker` processes, each at the same -j,
 * against a server whose latency is short enough that one process's CPU, not the server, is the limit
 * (C / L is several times what one process can drive). Wall clock of the producer, from spawn to exit
 * (start-up included; the workers are started, and waiting, before it). Scaling efficiency = rate with
 * k workers ÷ (k × rate with 1). The reference row is one `generate` without a queue.
 */
async function workers() {
  if (spawnSync('redis-server', ['--version']).status !== 0) return 'redis-server is not installed (apt-get install -y redis-server)';
  const latency = 20;
  const concurrency = 128;
  const conversations = QUICK ? 600 : 3000;
  const input = await personaFile(join(work, `workers-${conversations}.ndjson`), conversations);
  const server = await startServer({ latency, turns: 3 });
  const redis = await startRedis();
  const model = ['--provider', 'openai', '--base-url', server.baseURL, '--model', 'bench'];
  const rows = [];
  try {
    log(`workers: L=${latency} ms, -j ${concurrency} per process (C / L = ${(concurrency * 1000) / latency} calls/s each), ${conversations} conversations, ${RUNS} runs each`);
    const alone = await repeat(RUNS, async () => {
      await server.reset();
      const run = await measure([BIN, 'generate', input, ...model, '-j', String(concurrency), ...TURN_ARGS]);
      const { done } = await server.stats();
      return { interactionsPerS: summaryOf(run.stderr).interactions / run.wallS, callsPerS: steadyRate(done), cpuS: run.cpuS };
    });
    rows.push({ name: 'one process, no queue', workers: 0, interactionsPerS: stats(alone.map((r) => r.interactionsPerS)), callsPerS: stats(alone.map((r) => r.callsPerS)) });
    for (const count of [1, 2, 4]) {
      const runs = await repeat(RUNS, async (i) => {
        await server.reset();
        const name = `bench-${count}-${i}-${Date.now()}`;
        const fleet = Array.from({ length: count }, () => spawn(process.execPath, [BIN, 'worker', '--queue', redis.url, '--name', name, '-j', String(concurrency), '-q'], { cwd: ROOT, env: { ...process.env, OPENAI_API_KEY: '' }, stdio: ['ignore', 'ignore', 'inherit'] }));
        const exits = fleet.map((child) => once(child, 'close'));
        const run = await measure([BIN, 'generate', input, '--queue', redis.url, '--name', name, '--backlog', String(4 * concurrency * count), ...model, ...TURN_ARGS]);
        await Promise.all(exits);
        const { done } = await server.stats();
        const summary = summaryOf(run.stderr);
        if (summary.interactions !== conversations) throw new Error(`workers: ${summary.interactions} of ${conversations} interactions`);
        return { interactionsPerS: summary.interactions / run.wallS, callsPerS: steadyRate(done) };
      });
      rows.push({ name: `${count} worker${count > 1 ? 's' : ''}`, workers: count, interactionsPerS: stats(runs.map((r) => r.interactionsPerS)), callsPerS: stats(runs.map((r) => r.callsPerS)) });
    }
  } finally {
    await redis.stop();
    await server.close();
  }
  const one = rows.find((r) => r.workers === 1).interactionsPerS.median;
  for (const row of rows) if (row.workers > 0) row.efficiency = row.interactionsPerS.median / (row.workers * one);
  return { latencyMs: latency, concurrency, conversations, cores: cpus().length, rows };
}

// ---------------------------------------------------------------- 6. resume

async function resume() {
  const lines = QUICK ? 30_000 : 1_000_000;
  const input = await personaFile(join(work, `resume-${lines}.ndjson`), lines);
  const out = join(work, 'resume-out');
  log(`resume: writing ${lines} interactions with sim into a directory, then resuming over it, ${RUNS} runs`);
  const args = [BIN, 'generate', input, '--provider', 'sim', '--min-turns', '2', '--max-turns', '2', '-q', '--out', out];
  const first = await measure(args);
  const { size } = await stat(join(out, 'interactions.ndjson'));
  // Every task is already written: the run reads the index, skips all input lines and writes nothing new.
  const runs = await repeat(RUNS, () => measure([...args, '--resume']));
  await rm(out, { recursive: true, force: true });
  await rm(input);
  return { interactions: lines, interactionsMiB: size / 2 ** 20, generateS: first.wallS, resumeS: stats(runs.map((r) => r.wallS)), peakRssMiB: stats(runs.map((r) => r.peakRssMiB)) };
}

// ---------------------------------------------------------------- 8. the viewer's first page

/**
 * One start of `personaflow view DIR`: from spawn to the address on stderr, to the first page's data
 * (what the page asks for before it shows the list: the HTML, script, style, summary, stats and the
 * first 50 rows), and to the first conversation; then how long the background scan takes to finish.
 */
async function viewOnce(dir) {
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, 'view', dir], { cwd: ROOT, env: { ...process.env, OPENAI_API_KEY: '', OPENROUTER_API_KEY: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const base = await new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      stderr += chunk;
      const match = /at (http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
      if (match !== null) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`view exited ${code}: ${stderr}`)));
  });
  const listening = performance.now();
  const get = async (path) => {
    const response = await fetch(`${base}${path}`);
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return path.startsWith('/api/') ? response.json() : response.text();
  };
  await Promise.all([get('/'), get('/app.js'), get('/app.css')]);
  await Promise.all([get('/api/summary'), get('/api/stats')]);
  const page = await get('/api/conversations?page=0');
  const firstPage = performance.now();
  if (page.rows.length === 0) throw new Error(`${dir}: the first page is empty`);
  await get(`/api/conversation?at=${page.rows[0].at}`);
  const firstConversation = performance.now();
  // Asked once a second, as the page does: each request pauses the scan for a moment (src/view/pace.ts).
  for (;;) {
    const summary = await get('/api/summary');
    if (summary.scanDone) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const scanned = performance.now();
  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`view exited ${code} on SIGINT: ${stderr}`);
  return { listeningMs: listening - started, firstPageMs: firstPage - started, firstConversationMs: firstConversation - started, scanS: (scanned - started) / 1000 };
}

async function view() {
  const sizes = QUICK ? [100, 10_000] : [100, 100_000];
  const runs = QUICK ? 2 : 5;
  const dirs = [];
  for (const n of sizes) {
    const input = await personaFile(join(work, `view-${n}.ndjson`), n);
    const out = join(work, `view-${n}`);
    log(`view: writing ${n} interactions with sim (rule noise, 2-3 turns) into a directory`);
    await measure([BIN, 'generate', input, '--provider', 'sim', '--noise', 'rules', '--min-turns', '2', '--max-turns', '3', '-q', '--out', out]);
    await rm(input);
    const { size } = await stat(join(out, 'interactions.ndjson'));
    dirs.push({ n, out, size, results: [] });
  }
  log(`view: time to the first page of each directory, ${runs} runs each, alternating`);
  for (let i = 0; i < runs; i += 1) for (const dir of dirs) dir.results.push(await viewOnce(dir.out));
  const rows = dirs.map(({ n, size, results }) => ({
    interactions: n,
    interactionsMiB: size / 2 ** 20,
    listeningMs: stats(results.map((r) => r.listeningMs)),
    firstPageMs: stats(results.map((r) => r.firstPageMs)),
    firstConversationMs: stats(results.map((r) => r.firstConversationMs)),
    scanS: stats(results.map((r) => r.scanS)),
  }));
  for (const { out } of dirs) await rm(out, { recursive: true, force: true });
  return { rows, ratio: rows.at(-1).firstPageMs.median / rows[0].firstPageMs.median };
}

// ---------------------------------------------------------------- report

/** A point of section 3, e.g. `C=64/429 0.1 (Retry-After: 1)`. */
const pointName = (r) => `C=${r.concurrency}/429 ${r.rate429}${r.rate429 > 0 ? ` (${RETRY_AFTER_FORMS[r.retryAfter ?? 'ms']})` : ''}`;

const fmt = (s, digits = 0) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

/** The targets of issue 3, each checked against this run's medians. */
function targets(results) {
  const { engine, little, plain, mem } = results;
  const headline = little.find((r) => r.concurrency === 256 && r.latencyMs === 200);
  const memoryRatio = mem.at(-1).peakRssMiB.median / mem[0].peakRssMiB.median;
  const behind = plain.filter((r) => r.ratio.median < 1);
  const under429 = plain.filter((r) => r.rate429 > 0);
  return [
    [headline.efficiency.median >= 0.95, `efficiency ≥ 0.95 at C=256, L=200 ms: ${headline.efficiency.median.toFixed(3)}`],
    [behind.length === 0, `at least the plain script's throughput at every point (wall clock): ${plain.map((r) => `${pointName(r)}: ${r.ratio.median.toFixed(2)}`).join(', ')}`],
    [under429.every((r) => r.ratio.median >= 1 && r.ours.failures.median <= r.theirs.failures.median), `at least the plain script's throughput under 429s, with no more failed conversations: ${under429.map((r) => `${pointName(r)}: ${r.ratio.median.toFixed(2)}× with ${r.ours.failures.median} vs ${r.theirs.failures.median} failed conversations`).join('; ')}`],
    [memoryRatio <= 1.5, `peak RSS at ${mem.at(-1).lines.toLocaleString('en')} lines within 1.5× of ${mem[0].lines.toLocaleString('en')}: ${memoryRatio.toFixed(2)}×`],
    [engine.callsPerS.median > 5000, `engine overhead leaves room to saturate a provider: ${Math.round(engine.callsPerS.median).toLocaleString('en')} sim calls/s from one process`],
    ...(results.resume === undefined ? [] : [[results.resume.resumeS.median < 60, `resuming over ${results.resume.interactions.toLocaleString('en')} interactions takes well under a minute: ${results.resume.resumeS.median.toFixed(1)} s`]]),
    ...(results.view === undefined ? [] : [[results.view.ratio <= 2, `the viewer's first page of ${results.view.rows.at(-1).interactions.toLocaleString('en')} interactions within 2× of ${results.view.rows[0].interactions.toLocaleString('en')}'s: ${results.view.ratio.toFixed(2)}×`]]),
  ];
}

const SECTION_NUMBERS = { engine: 1, little: 2, plain: 3, mem: 4, rateLimit: 5, resume: 6, llama: 7, view: 8, workers: 9 };

/** The earlier runs whose sections a BENCH_ONLY run kept, each with the sections it measured. */
const earlierRuns = (results) => (results.earlier === undefined ? [] : Array.isArray(results.earlier) ? results.earlier : [results.earlier]);

function markdown(results) {
  const { machine, engine, little, plain, mem } = results;
  const lines = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` on ${machine.date}: commit ${machine.commit}, Node ${machine.node}, ${machine.cores} cores (${machine.cpu}).`,
    ...earlierRuns(results).map((run) => `Sections ${run.sections.map((name) => SECTION_NUMBERS[name]).join(', ')} are from the run of ${run.date} (commit ${run.commit}).`),
    ...(earlierRuns(results).length === 0 ? [] : ['The others were measured in this run (BENCH_ONLY).']),
    'Each figure is the median of the runs, with min–max in parentheses; ratios come from the same run. The machine is small and',
    'shared, so read the ratios, not the third digit.',
    '',
    '## 1. Engine overhead (sim provider, zero latency)',
    '',
    `${engine.tasks} tasks at 2–5 turns, -j 64, output to /dev/null, ${engine.interactionsPerS.runs} runs.`,
    '',
    '| interactions/s | model calls/s | CPU s per 1,000 calls |',
    '| --- | --- | --- |',
    `| ${fmt(engine.interactionsPerS)} | ${fmt(engine.callsPerS)} | ${fmt(engine.cpuSPer1000Calls, 3)} |`,
    '',
    `One process spends about ${(engine.cpuSPer1000Calls.median).toFixed(2)} CPU seconds of its own per 1,000 calls, i.e. one core could drive about`,
    `${Math.round(1000 / engine.cpuSPer1000Calls.median).toLocaleString('en')} calls/s through the engine before any HTTP work.`,
    '',
    "## 2. Efficiency against Little's law",
    '',
    'A local OpenAI-compatible server (bench/server.js, its own process) answers every call after a fixed latency L;',
    'personaflow runs with concurrency C through the openai SDK. Ideal = C / L calls/s. Efficiency = achieved ÷ ideal over',
    'the middle 80% of answered calls (steady state); wall-clock efficiency divides all calls by the whole run, start-up and',
    'the tail of the last conversations included.',
    '',
    '| L (ms) | C | ideal calls/s | efficiency | wall-clock efficiency | peak in flight | CPU s / 1,000 calls |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...little.map((r) => `| ${r.latencyMs} | ${r.concurrency} | ${r.idealCallsPerS} | ${fmt(r.efficiency, 3)} | ${fmt(r.wallClockEfficiency, 3)} | ${r.peakInFlight} | ${fmt(r.cpuSPer1000Calls, 3)} |`),
    '',
    '## 3. Against the plain script a user would write',
    '',
    'bench/plain-script.js: openai SDK (its default retries), p-limit, the same 3-turn loop, JSON.stringify per line. Both',
    'against the same server in the same run; a share of calls refused at random with 429, the Retry-After as the row says',
    '(`retry-after-ms: 250`, or a whole second as OpenAI-compatible servers send on isolated refusals). Ratio = successful',
    'interactions/s ours ÷ theirs, wall clock from spawn to exit (start-up included: ~0.16 s from spawn to first request for',
    'either); steady ratio = calls/s over the middle 80% of answered calls, ours ÷ theirs.',
    '',
    '| L (ms) | C | 429 rate | Retry-After | ours interactions/s | plain interactions/s | ratio | steady ratio | ours failures | plain failures | ours CPU s | plain CPU s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...plain.map((r) => `| ${r.latencyMs} | ${r.concurrency} | ${r.rate429} | ${r.rate429 > 0 ? RETRY_AFTER_FORMS[r.retryAfter ?? 'ms'] : '—'} | ${fmt(r.ours.interactionsPerS)} | ${fmt(r.theirs.interactionsPerS)} | ${fmt(r.ratio, 2)} | ${fmt(r.steadyRatio, 2)} | ${fmt(r.ours.failures)} | ${fmt(r.theirs.failures)} | ${fmt(r.ours.cpuS, 1)} | ${fmt(r.theirs.cpuS, 1)} |`),
    '',
    '## 4. Peak memory while streaming',
    '',
    'sim, zero latency, 2 turns, default concurrency (16), output to /dev/null; peak RSS from the process itself (getrusage).',
    'Live heap and live buffers: the largest heap in use and array buffers after a full GC, sampled every 250 ms in one more run',
    '(bench/live-heap.cjs, --expose-gc). The buffers hold the dedupe set of task ids (at most 16 bytes a task) and stream chunks;',
    'the rest of the peak is the young generation and the garbage V8 lets pile up in the old generation between full GCs.',
    '',
    '| persona lines | peak RSS (MiB) | wall (s) | live heap (MiB) | live buffers (MiB) |',
    '| --- | --- | --- | --- | --- |',
    ...mem.map((r) => `| ${r.lines.toLocaleString('en')} | ${fmt(r.peakRssMiB)} | ${fmt(r.wallS, 1)} | ${r.liveHeapMiB === undefined ? '—' : r.liveHeapMiB.toFixed(1)} | ${r.liveBuffersMiB === undefined ? '—' : r.liveBuffersMiB.toFixed(1)} |`),
    '',
    `Largest ÷ smallest peak RSS: ${(mem.at(-1).peakRssMiB.median / mem[0].peakRssMiB.median).toFixed(2)}.`,
    '',
    '## 5. Against a hard rate limit',
    '',
    ...(results.rateLimit === undefined
      ? ['Not measured in this run.', '']
      : [
          `bench/server.js refuses a request with 429 (and retry-after-ms) when ${results.rateLimit.limit} were accepted in the last second; L = ${results.rateLimit.latencyMs} ms,`,
          `C = ${results.rateLimit.concurrency}, ${results.rateLimit.conversations} conversations of 5 calls (C / L would be ${Math.round((results.rateLimit.concurrency * 1000) / results.rateLimit.latencyMs)} requests/s). Utilisation = accepted requests/s over the`,
          'middle 80% ÷ the limit; wasted = share of all requests that got 429.',
          '',
          '| client | utilisation | wasted on 429s | failed conversations | wall (s) |',
          '| --- | --- | --- | --- | --- |',
          ...results.rateLimit.rows.map((r) => `| ${r.name} | ${fmt(r.utilisation, 2)} | ${fmt(r.wasted, 3)} | ${fmt(r.failed)} | ${fmt(r.wallS, 1)} |`),
          '',
        ]),
    '## 6. Resume',
    '',
    ...(results.resume === undefined
      ? ['Not measured in this run.', '']
      : [
          `A directory of ${results.resume.interactions.toLocaleString('en')} interactions (${results.resume.interactionsMiB.toFixed(0)} MiB, written by sim at 2 turns in ${results.resume.generateS.toFixed(0)} s), resumed with the same`,
          'input: the run reads the index, skips every persona line and writes nothing new.',
          '',
          '| interactions in DIR | resume wall (s) | peak RSS (MiB) |',
          '| --- | --- | --- |',
          `| ${results.resume.interactions.toLocaleString('en')} | ${fmt(results.resume.resumeS, 1)} | ${fmt(results.resume.peakRssMiB)} |`,
          '',
        ]),
    '## 7. A local model in process (llama provider, ../shared/models/stories260K.gguf)',
    '',
    ...(results.llama === undefined ? ['Not measured in this run.', ''] : typeof results.llama === 'string' ? [`Skipped: ${results.llama}.`, ''] : [llamaMarkdown(results.llama), '']),
    "## 8. The viewer's first page (`personaflow view`)",
    '',
    ...(results.view === undefined
      ? ['Not measured in this run.', '']
      : [
          'Directories written by sim (rule noise, 2–3 turns). Each run starts `personaflow view DIR` and times, from spawn: the address on',
          "stderr; the first page's data over HTTP (the HTML, script and style, then summary and stats, then the first 50 rows,",
          'each read through index.ndjson\'s offsets); the first conversation; and the end of the background scan that feeds the',
          'filters and the dashboard, asked once a second as the page does (the page is usable long before). Runs alternate',
          'between the directories.',
          '',
          '| interactions in DIR | interactions.ndjson (MiB) | listening (ms) | first page (ms) | first conversation (ms) | scan done (s) |',
          '| --- | --- | --- | --- | --- | --- |',
          ...results.view.rows.map((r) => `| ${r.interactions.toLocaleString('en')} | ${r.interactionsMiB.toFixed(0)} | ${fmt(r.listeningMs)} | ${fmt(r.firstPageMs)} | ${fmt(r.firstConversationMs)} | ${fmt(r.scanS, 1)} |`),
          '',
          `First page, largest ÷ smallest directory: ${results.view.ratio.toFixed(2)}×.`,
          '',
        ]),
    '## 9. Workers on a queue (generate --queue, personaflow worker, a local redis-server)',
    '',
    ...(results.workers === undefined
      ? ['Not measured in this run.', '']
      : typeof results.workers === 'string'
        ? [`Skipped: ${results.workers}.`, '']
        : [
            `bench/server.js answers after L = ${results.workers.latencyMs} ms; every process runs -j ${results.workers.concurrency}, so C / L (${(results.workers.concurrency * 1000) / results.workers.latencyMs} calls/s a process) is far above`,
            `what one process drives: the client is the limit. ${results.workers.conversations.toLocaleString('en')} conversations of 5 calls; interactions/s = interactions ÷ the producer's`,
            'wall clock (spawn to exit, the workers already waiting); calls/s = answered calls over the middle 80%; scaling efficiency =',
            `rate with k workers ÷ (k × rate with 1). The producer, the workers, redis-server and the server share this machine's ${results.workers.cores} cores.`,
            '',
            '| processes | interactions/s | calls/s (steady) | scaling efficiency |',
            '| --- | --- | --- | --- |',
            ...results.workers.rows.map((r) => `| ${r.name} | ${fmt(r.interactionsPerS)} | ${fmt(r.callsPerS)} | ${r.efficiency === undefined ? '—' : r.efficiency.toFixed(2)} |`),
            '',
          ]),
    '## Targets',
    '',
    ...targets(results).map(([met, text]) => `- ${met ? 'met' : '**missed**'}: ${text}`),
    '',
  ];
  return lines.join('\n');
}

if (process.argv.includes('--report')) {
  // Rewrites RESULTS.md from RESULTS.json, e.g. after a change to the report's format; measures nothing.
  const results = JSON.parse(await readFile(join(ROOT, 'bench', 'RESULTS.json'), 'utf8'));
  await writeFile(join(ROOT, 'bench', 'RESULTS.md'), markdown(results));
  await rm(work, { recursive: true, force: true });
  process.exit(0);
}

try {
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  // The results files themselves do not count: a BENCH_ONLY run starts from the last run's, uncommitted.
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/RESULTS.md', ':!bench/RESULTS.json'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  const machine = { date: new Date().toISOString(), commit: `${commit}${dirty ? ' (with uncommitted changes)' : ''}`, node: process.version, cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', quick: QUICK };
  const sections = {
    engine: engineOverhead,
    little: littlesLaw,
    plain: plainScript,
    mem: memory,
    rateLimit,
    resume,
    llama: async () => llamaUnavailable() ?? (await llamaBench({ runs: RUNS, quick: QUICK })),
    view,
    workers,
  };
  // BENCH_ONLY=little,plain re-measures those sections after a change to the hot path and keeps the
  // others from the last full run's RESULTS.json; the report says which sections came from which run.
  const only = process.env.BENCH_ONLY?.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = (only ?? []).filter((name) => !(name in sections));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: no section ${unknown.join(', ')} (sections: ${Object.keys(sections).join(', ')})`);
  const previous = only === undefined ? undefined : JSON.parse(await readFile(join(ROOT, 'bench', 'RESULTS.json'), 'utf8'));
  // Each kept section stays attributed to the run that measured it.
  const kept = (names) => names.filter((name) => !only.includes(name));
  const earlier =
    previous === undefined
      ? undefined
      : [
          ...earlierRuns(previous).map((run) => ({ ...run, sections: kept(run.sections) })),
          { ...previous.machine, sections: kept(Object.keys(sections).filter((name) => !earlierRuns(previous).some((run) => run.sections.includes(name)))) },
        ].filter((run) => run.sections.length > 0);
  const results = { machine, ...(earlier === undefined ? {} : { earlier }) };
  for (const [name, measureSection] of Object.entries(sections)) results[name] = only === undefined || only.includes(name) ? await measureSection() : previous[name];
  const out = QUICK ? join(work, 'RESULTS') : join(ROOT, 'bench', 'RESULTS');
  await writeFile(`${out}.json`, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(`${out}.md`, markdown(results));
  log(`wrote ${out}.md and ${out}.json`);
  if (QUICK) process.stdout.write(markdown(results));
} finally {
  if (!QUICK) await rm(work, { recursive: true, force: true });
}
