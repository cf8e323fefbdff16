#!/usr/bin/env node
// Benchmark server: a lean OpenAI-compatible chat endpoint on 127.0.0.1 with a fixed latency and optional 429s.
// Runs as its own process so that it does not share an event loop with the client being measured.
//   node bench/server.js --latency 50 --rate429 0.1 --turns 3 [--rps 200] [--retry-after ms|seconds|date --retry-after-ms 1000]
// --rps N: a hard limit like a provider's: a request arriving when N were accepted in the last second
// gets 429 at once, with retry-after-ms until the oldest of those ages out.
// Prints `{"port": N}` on stdout once listening. GET /stats returns the counts and completion times;
// POST /reset clears them. The simulated user stops after `--turns` assistant answers.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    latency: { type: 'string', default: '50' },
    rate429: { type: 'string', default: '0' },
    'retry-after-ms': { type: 'string', default: '250' },
    // How a random 429 says when to come back: `ms` (retry-after-ms and a rounded-up retry-after, as
    // OpenAI sends), `seconds` (only `Retry-After: <seconds>`), `date` (only an HTTP date that far ahead).
    'retry-after': { type: 'string', default: 'ms' },
    turns: { type: 'string', default: '3' },
    rps: { type: 'string' },
  },
});
const rps = values.rps === undefined ? undefined : Number(values.rps);
/** Arrival times of the requests accepted in the last second (--rps). */
let accepted = [];
const latency = Number(values.latency);
const rate429 = Number(values.rate429);
const retryAfterMs = values['retry-after-ms'];
const retryAfterForm = values['retry-after'];
if (!['ms', 'seconds', 'date'].includes(retryAfterForm)) throw new Error(`--retry-after: ms | seconds | date, got ${retryAfterForm}`);
/** The headers of a random 429, in the form --retry-after asks for. */
const retryHeaders = () => {
  const seconds = Math.ceil(Number(retryAfterMs) / 1000);
  if (retryAfterForm === 'seconds') return { 'retry-after': String(seconds) };
  if (retryAfterForm === 'date') return { 'retry-after': new Date(Date.now() + Number(retryAfterMs)).toUTCString() };
  return { 'retry-after-ms': retryAfterMs, 'retry-after': String(seconds) };
};
const turns = Number(values.turns);

let ok = 0;
let limited = 0;
/** Completion times (ms since start) of the successful answers, for steady-state throughput. */
let done = [];
let inFlight = 0;
let peakInFlight = 0;
const started = performance.now();
// A fixed-seed LCG so that the same requests see the same 429s in every run of the bench.
let lcg = 12345;
const random = () => {
  lcg = (Math.imul(lcg, 1103515245) + 12345) >>> 0;
  return lcg / 2 ** 32;
};

const answer = 'Here is a short answer with a few concrete steps you can follow, and one thing to watch out for.';
const followUps = ['ok and what about the edge cases?', 'can you show an example?', 'how would i test that?', 'what if the file is huge?'];

function reply(body) {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  const first = messages[0];
  const simulator = first?.role === 'system' && String(first.content).includes('role-playing a human user');
  let content = answer;
  if (simulator) {
    // Role-inverted history: the assistant's answers are `user` turns, after one opening cue.
    const answered = messages.filter((m) => m.role === 'user').length - 1;
    content = answered >= turns ? '###STOP###' : followUps[answered % followUps.length];
  }
  const promptChars = messages.reduce((n, m) => n + String(m.content).length, 0);
  return JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 0,
    model: body?.model ?? 'bench',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: Math.ceil(promptChars / 4), completion_tokens: Math.ceil(content.length / 4), total_tokens: 0 },
  });
}

const server = createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/stats') {
    response.writeHead(200, { 'content-type': 'application/json' });
    const cpu = process.cpuUsage();
    response.end(JSON.stringify({ ok, limited, peakInFlight, done, cpuS: (cpu.user + cpu.system) / 1e6 }));
    return;
  }
  if (request.method === 'POST' && request.url === '/reset') {
    ok = 0;
    limited = 0;
    done = [];
    accepted = [];
    peakInFlight = 0;
    lcg = 12345;
    request.resume();
    response.end('{}');
    return;
  }
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    if (rps !== undefined) {
      const now = performance.now();
      while (accepted.length > 0 && accepted[0] <= now - 1000) accepted.shift();
      if (accepted.length >= rps) {
        limited += 1;
        response.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': String(Math.ceil(accepted[0] + 1000 - now)) });
        response.end('{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}');
        return;
      }
      accepted.push(now);
    }
    inFlight += 1;
    peakInFlight = Math.max(peakInFlight, inFlight);
    setTimeout(() => {
      inFlight -= 1;
      if (random() < rate429) {
        limited += 1;
        response.writeHead(429, { 'content-type': 'application/json', ...retryHeaders() });
        response.end('{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}');
        return;
      }
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      ok += 1;
      done.push(performance.now() - started);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(reply(body));
    }, latency);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
