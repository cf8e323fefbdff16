// A real local HTTP server speaking the OpenAI chat completions API, with per-request fault injection.
// Used by the end-to-end tests: the CLI talks to it through the openai SDK exactly as it would to a real endpoint.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** What the server does with one request. */
export type Fault =
  | { readonly kind: 'ok' }
  /** 429 with a Retry-After header (seconds as text, e.g. "0" or "1"; omitted when undefined). */
  | { readonly kind: 'rate_limit'; readonly retryAfter?: string }
  /** 500 (or another 5xx) with an OpenAI-style error body. */
  | { readonly kind: 'server_error'; readonly status?: number }
  /** Reads the request and never answers; the socket stays open until the client gives up or close(). */
  | { readonly kind: 'hang' }
  /** 200 and the first bytes of a JSON body, then nothing: the server hangs mid-body. */
  | { readonly kind: 'stall' }
  /** 200, content-type application/json, a body that is not JSON. */
  | { readonly kind: 'malformed' }
  /** 200, valid JSON, but no `choices`; still billed: the body carries usage (recorded in `usage`). */
  | { readonly kind: 'no_choices' }
  /** 200 with an empty assistant message and usage (billed; recorded in `usage`). */
  | { readonly kind: 'empty' }
  /** 401 as for a wrong key. */
  | { readonly kind: 'unauthorized' }
  /** Any other answer: a status (404, 301, 400, ...), its headers and an OpenAI-style error message. */
  | { readonly kind: 'status'; readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly message?: string; readonly code?: string };

export type FaultKind = Fault['kind'];

/** A request as the server saw it. */
export interface RecordedRequest {
  /** 0-based arrival order. */
  readonly index: number;
  /** performance.now() when the request body had been read. */
  readonly at: number;
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
  /** Every request header, by lower-case name. */
  readonly headers: IncomingMessage['headers'];
  /** Parsed JSON body, or the raw text when it is not JSON. */
  readonly body: unknown;
  /** Which side of the conversation asked: the user simulator, the assistant, or not a chat request. */
  readonly role: 'user_simulator' | 'assistant' | 'distractor' | 'style_transfer' | 'query_generation' | 'judge' | 'other';
  /** What the server did. */
  fault: FaultKind;
  /** The message content it answered with, for replies that had one. */
  reply?: string;
  /**
   * The usage the server returned with a 200 (answers, and the billed `no_choices` / `empty` faults): set
   * when the answer is sent to a client still connected, as a provider bills what it delivers.
   */
  usage?: { prompt: number; completion: number };
}

/** A fault named by its kind alone (those that need no details). */
export type SimpleFault = Exclude<FaultKind, 'status'>;

export type FaultPolicy = ((request: RecordedRequest) => Fault | SimpleFault) | readonly (Fault | SimpleFault)[];

export interface FakeOpenAIOptions {
  /** When set, a request whose `Authorization` is not `Bearer <apiKey>` gets 401 (before any other fault). */
  readonly apiKey?: string;
  /** Per-request decision: a function of the request, or a schedule by arrival index (requests past its end are answered normally). */
  readonly faults?: FaultPolicy;
  /** The simulated user says the stop token once the assistant has answered this many times (default 2). */
  readonly stopAfter?: number;
  readonly stopToken?: string;
  /**
   * Scripts the simulated user: its reply once the assistant has answered `answered` times (the
   * simulator's `user` messages, the opening cue left out) and `attempt` replies were already asked for at
   * this point (guard re-asks); default: follow-ups, then the stop token after `stopAfter` answers.
   */
  readonly simulator?: (answered: number, attempt: number, request: RecordedRequest) => string;
  /**
   * Answers judge prompts: `conversation` is the transcript the prompt shows, `attempt` 0 for the first
   * ask and n for the n-th re-ask after a rejected answer (default: every criterion 4, accept).
   */
  readonly judgeReply?: (conversation: string, attempt: number, request: RecordedRequest) => string;
  /** Answers distractor prompts (default: valid JSON with the text plus a casual ending). */
  readonly distractorReply?: (text: string, request: RecordedRequest) => string;
  /** Put the bearer token the client sent into the 401 message (as a careless server might), to test redaction. */
  readonly echoKeyInErrors?: boolean;
  /** A hard limit: more than this many requests in any 1 s window get 429 with retry-after-ms. */
  readonly rps?: number;
  /** Milliseconds before each answer and each 5xx (the model's, or the failing upstream's, time); 429s and 401s come at once. */
  readonly latencyMs?: number;
  /** Extra headers on every 200 answer (x-ratelimit-* for instance). */
  readonly answerHeaders?: Readonly<Record<string, string>>;
  /** Put every request header into error messages (as a careless proxy might), to test redaction. */
  readonly echoHeaders?: boolean;
  /**
   * The usage a 200 answer reports, instead of the characters/4 count: `null` leaves `usage` out of the
   * body (servers and proxies that omit it), numbers report those (a hostile server). What it reports is
   * what `request.usage` records as billed, or nothing when it reports none.
   */
  readonly usage?: (request: RecordedRequest, counted: { prompt: number; completion: number }) => { prompt: number; completion: number } | null;
}

export interface FakeOpenAIServer {
  readonly port: number;
  /** `http://127.0.0.1:PORT/v1`, for `--base-url`. */
  readonly baseURL: string;
  readonly requests: readonly RecordedRequest[];
  /** Requests received so far. */
  readonly count: number;
  /** Stops listening and destroys every open socket, hung requests included. */
  close(): Promise<void>;
  /** From now on, billed answers (200s with usage) are held, neither sent nor billed, until `release`. */
  hold(): void;
  /** Sends the held answers whose client is still connected (billing them); the others are dropped, unbilled. */
  release(): void;
  /**
   * Drops the held answers, unsent and unbilled, and holds no more: for answers whose client was killed.
   * (`release` right after a kill can still find the socket open: its close is an event not yet handled.)
   */
  drop(): void;
  /** What the server billed so far: answers sent with usage, and their tokens. */
  billed(): { calls: number; prompt: number; completion: number };
}

/** The first system message of the default user-simulator template (config/prompts/user_simulator.txt). */
export const USER_SIMULATOR_MARKER = 'role-playing a human user';
/** Opening words of the bundled distractor templates. */
export const DISTRACTOR_MARKER = 'You rewrite a message that a real person typed';
/** Opening words of the bundled style-transfer and query-generation templates. */
export const STYLE_TRANSFER_MARKER = 'You rewrite a request from a dataset';
export const QUERY_GENERATION_MARKER = 'You write requests that a real person';
/** Opening words of the bundled judge template (config/prompts/judge.txt). */
export const JUDGE_MARKER = 'You review one conversation';

/** A judge's answer: every criterion `score`, these tags, this verdict. */
export function judgeAnswer(score: number, verdict: 'accept' | 'reject', tags: readonly string[] = []): string {
  const scored = (names: readonly string[]) => Object.fromEntries(names.map((name) => [name, { reason: 'scripted', score }]));
  return JSON.stringify({ user: scored(['persona_adherence', 'naturalness', 'ending', 'information', 'consistency']), assistant: scored(['answered', 'clarification', 'noise_handling']), tags, verdict, verdict_reason: 'scripted' });
}

const FOLLOW_UPS = [
  'ok but what happens with weird edge cases',
  'and how would i test that quickly',
  'can you show me a shorter version',
  'what if the input file is really huge',
  'does this also work on windows',
  'which part should i try first',
];

interface ChatBody {
  model?: unknown;
  messages?: { role?: unknown; content?: unknown }[];
}

/** The prompt tokens the server bills: a character count over 4, as a stand-in tokenizer. */
const promptTokensOf = (body: unknown): number =>
  Math.max(1, Math.ceil(((body as ChatBody).messages ?? []).reduce((sum, m) => sum + textOf(m.content).length, 0) / 4));

const asFault = (fault: Fault | SimpleFault): Fault => (typeof fault === 'string' ? { kind: fault } : fault);

/** Small deterministic hash (FNV-1a), for replies and seeded fault mixes. */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: FNV-1a leaves the high bits of short, similar strings nearly equal. */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A fault policy that injects a fault into a fraction `rate` of requests (chosen by a hash of seed and
 * arrival index, so the same sequence of requests gets the same faults), cycling through `mix` in order so
 * that every kind occurs once enough faults have been injected; the rest are answered normally.
 */
export function randomFaults(options: { readonly seed: number; readonly rate: number; readonly mix: readonly (Fault | SimpleFault)[] }): (request: RecordedRequest) => Fault {
  let injected = 0;
  return (request) => {
    const draw = mix32(hash(`${options.seed}:${request.index}`)) / 2 ** 32;
    if (draw >= options.rate || options.mix.length === 0) return { kind: 'ok' };
    const fault = options.mix[injected % options.mix.length]!;
    injected += 1;
    return asFault(fault);
  };
}

const textOf = (content: unknown): string => (typeof content === 'string' ? content : JSON.stringify(content ?? ''));

function roleOf(body: unknown): RecordedRequest['role'] {
  const messages = (body as ChatBody | undefined)?.messages;
  if (!Array.isArray(messages)) return 'other';
  const first = messages[0];
  if (first?.role === 'system' && textOf(first.content).includes(USER_SIMULATOR_MARKER)) return 'user_simulator';
  if (first?.role === 'user' && textOf(first.content).startsWith(DISTRACTOR_MARKER)) return 'distractor';
  if (first?.role === 'user' && textOf(first.content).startsWith(STYLE_TRANSFER_MARKER)) return 'style_transfer';
  if (first?.role === 'user' && textOf(first.content).startsWith(QUERY_GENERATION_MARKER)) return 'query_generation';
  if (first?.role === 'user' && textOf(first.content).startsWith(JUDGE_MARKER)) return 'judge';
  return 'assistant';
}

/** The reply text: a short follow-up or the stop token for the simulator, a plain answer for the assistant. */
function replyFor(request: RecordedRequest, options: FakeOpenAIOptions, simulatorAttempts: Map<string, number>): string {
  const messages = (request.body as ChatBody).messages ?? [];
  if (request.role === 'user_simulator') {
    // The simulator's view is inverted: the assistant's answers are its `user` messages.
    // The first `user` message is the cue that opens the conversation, not an answer.
    const answered = messages.filter((m) => m.role === 'user' && !textOf(m.content).startsWith('(The conversation starts')).length;
    if (options.simulator !== undefined) {
      // A re-ask carries a nudge in its last message; count the re-asks at this point by the nudges seen so far.
      const key = `${textOf(messages.find((m) => m.role === 'assistant')?.content)}|${answered}`;
      const attempt = simulatorAttempts.get(key) ?? 0;
      simulatorAttempts.set(key, attempt + 1);
      return options.simulator(answered, attempt, request);
    }
    const told = messages.some((m) => /do not end the conversation yet/i.test(textOf(m.content)));
    if (answered >= (options.stopAfter ?? 2) && !told) return options.stopToken ?? '###STOP###';
    const base = hash(textOf(messages[0]?.content)) % FOLLOW_UPS.length;
    return FOLLOW_UPS[(base + answered) % FOLLOW_UPS.length] as string;
  }
  if (request.role === 'distractor') {
    // The text to noise sits between "The message:" and the JSON instructions of the bundled templates.
    const text = /The message:\n([\s\S]*?)\n\nAnswer with JSON/.exec(textOf(messages[0]?.content))?.[1] ?? '';
    if (options.distractorReply !== undefined) return options.distractorReply(text, request);
    return JSON.stringify({ intent: 'ask', slots: {}, noisy_text: `${text.replace(/[.?!]$/, '')} pls, kinda urgent`, applied_strategies: [], slots_dropped: [] });
  }
  if (request.role === 'style_transfer') {
    const query = /The request:\n([\s\S]*?)\n\nAnswer with JSON/.exec(textOf(messages[0]?.content))?.[1] ?? '';
    return JSON.stringify({ adapted_query: `styled: ${query}`, inferred_domain: 'Coding', inferred_scenario: 'nonsense' });
  }
  if (request.role === 'judge') {
    const prompt = textOf(messages[0]?.content);
    // The transcript sits between the noise note and the rubric in the bundled template.
    const conversation = /\[meant: \.\.\.\]\. The noise is intended[^\n]*\n([\s\S]*?)\n\nScore each criterion/.exec(prompt)?.[1] ?? prompt;
    const attempt = (messages.length - 1) / 2;
    return options.judgeReply === undefined ? judgeAnswer(4, 'accept') : options.judgeReply(conversation, attempt, request);
  }
  if (request.role === 'query_generation') {
    const prompt = textOf(messages[0]?.content);
    const count = Number(/Write (\d+) new request/.exec(prompt)?.[1] ?? 1);
    const salt = hash(prompt).toString(16);
    return JSON.stringify({ queries: Array.from({ length: count }, (_, i) => ({ query: `generated request ${i + 1} (${salt})`, domain: 'general', scenario: 'planning' })) });
  }
  const users = messages.filter((m) => m.role === 'user');
  const last = textOf(users[users.length - 1]?.content);
  return `Answer ${users.length} (ref ${hash(last).toString(16)}): start by checking your input, then change one thing at a time and verify the result before moving on.`;
}

/**
 * What the server answers a chat completion body with on a 200 (the reply and its usage), so the batch
 * server (batch-server.ts) answers a batch line exactly as this one answers the same request online.
 */
export function chatAnswer(body: unknown, options: FakeOpenAIOptions = {}, simulatorAttempts = new Map<string, number>()): { content: string; usage: { prompt: number; completion: number } } {
  const request: RecordedRequest = { index: 0, at: 0, method: 'POST', url: '/v1/chat/completions', authorization: undefined, headers: {}, body, role: roleOf(body), fault: 'ok' };
  const content = replyFor(request, options, simulatorAttempts);
  return { content, usage: { prompt: promptTokensOf(body), completion: Math.max(1, content.split(/\s+/).length) } };
}

function sendJson(response: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers });
  response.end(body);
}

const errorBody = (message: string, type: string, code: string | null) => ({ error: { message, type, param: null, code } });

/**
 * Starts the server on 127.0.0.1, port 0.
 *
 * @example
 * const server = await startOpenAIServer({ faults: ['rate_limit', 'ok'] });
 * // ... run the CLI with --base-url server.baseURL ...
 * await server.close();
 */
export async function startOpenAIServer(options: FakeOpenAIOptions = {}): Promise<FakeOpenAIServer> {
  const requests: RecordedRequest[] = [];
  /** Replies asked so far per conversation (its first user message) and point (answers so far), for a scripted simulator. */
  const simulatorAttempts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const accepted: number[] = [];
  let holding = false;
  let held: (() => void)[] = [];
  /** Sends a billed answer, and bills it, if its client is still there to get it; held while `hold` lasts. */
  const billed = (request: RecordedRequest, response: ServerResponse, usage: { prompt: number; completion: number } | undefined, send: () => void): void => {
    const go = (): void => {
      if (response.destroyed || response.socket === null || response.socket.destroyed) return;
      if (usage !== undefined) request.usage = usage;
      send();
    };
    if (holding) held.push(go);
    else go();
  };

  const decide = (request: RecordedRequest): Fault => {
    const policy = options.faults;
    if (policy === undefined) return { kind: 'ok' };
    if (typeof policy === 'function') return asFault(policy(request));
    const scheduled = policy[request.index];
    return scheduled === undefined ? { kind: 'ok' } : asFault(scheduled);
  };

  const handle = (incoming: IncomingMessage, response: ServerResponse, raw: string): void => {
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      // keep the raw text
    }
    const authorization = incoming.headers.authorization;
    const request: RecordedRequest = {
      index: requests.length,
      at: performance.now(),
      method: incoming.method ?? '',
      url: incoming.url ?? '',
      authorization,
      headers: incoming.headers,
      body,
      role: roleOf(body),
      fault: 'ok',
    };
    requests.push(request);

    const path = request.url.split('?')[0];
    if (request.method !== 'POST' || path !== '/v1/chat/completions') {
      request.fault = 'server_error';
      sendJson(response, 404, errorBody(`no route ${request.method} ${request.url}`, 'invalid_request_error', 'not_found'));
      return;
    }
    const wrongKey = options.apiKey !== undefined && authorization !== `Bearer ${options.apiKey}`;
    let fault: Fault = wrongKey ? { kind: 'unauthorized' } : decide(request);
    if (fault.kind === 'ok' && options.rps !== undefined) {
      // Requests accepted in the last second; one more than the limit is refused until the oldest ages out.
      const now = performance.now();
      while (accepted.length > 0 && (accepted[0] as number) <= now - 1000) accepted.shift();
      if (accepted.length >= options.rps) {
        const wait = Math.ceil((accepted[0] as number) + 1000 - now);
        request.fault = 'rate_limit';
        sendJson(response, 429, errorBody('Rate limit reached for requests', 'requests', 'rate_limit_exceeded'), { 'retry-after-ms': String(wait) });
        return;
      }
      accepted.push(now);
      fault = { kind: 'ok' };
    }
    request.fault = fault.kind;
    switch (fault.kind) {
      case 'hang':
        return;
      case 'rate_limit':
        sendJson(response, 429, errorBody('Rate limit reached for test-model, please retry later.', 'requests', 'rate_limit_exceeded'), fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter });
        return;
      case 'server_error': {
        const fail = (): void => sendJson(response, fault.status ?? 500, errorBody('The server had an error while processing your request.', 'server_error', null));
        if (options.latencyMs === undefined) fail();
        else setTimeout(fail, options.latencyMs);
        return;
      }
      case 'stall':
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
        response.write('{"id": "chatcmpl-stalled", "object": "chat.completion", "choices": [');
        return;
      case 'malformed': {
        const text = '{"id": "chatcmpl-broken", "choices": [ {"message": ';
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
        response.end(text);
        return;
      }
      case 'no_choices': {
        const promptTokens = promptTokensOf(body);
        billed(request, response, { prompt: promptTokens, completion: 0 }, () =>
          sendJson(response, 200, { id: `chatcmpl-${request.index}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: 'test-model', usage: { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens } }),
        );
        return;
      }
      case 'empty': {
        const promptTokens = promptTokensOf(body);
        billed(request, response, { prompt: promptTokens, completion: 1 }, () => sendJson(response, 200, {
          id: `chatcmpl-${request.index}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: 'test-model',
          choices: [{ index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: promptTokens, completion_tokens: 1, total_tokens: promptTokens + 1 },
        }));
        return;
      }
      case 'unauthorized': {
        const sent = (authorization ?? '').replace(/^Bearer\s+/i, '');
        const shown = options.echoKeyInErrors === true ? sent : `${sent.slice(0, 3)}***${sent.slice(-2)}`;
        const headers = options.echoHeaders === true ? ` Headers: ${JSON.stringify(incoming.headers)}` : '';
        sendJson(response, 401, errorBody(`Incorrect API key provided: ${shown}.${headers} You can find your API key at https://example.invalid/keys.`, 'invalid_request_error', 'invalid_api_key'));
        return;
      }
      case 'status': {
        const headers = options.echoHeaders === true ? ` Headers: ${JSON.stringify(incoming.headers)}` : '';
        sendJson(response, fault.status, errorBody(`${fault.message ?? `status ${fault.status}`}${headers}`, 'invalid_request_error', fault.code ?? null), { ...fault.headers });
        return;
      }
      case 'ok': {
        const content = replyFor(request, options, simulatorAttempts);
        request.reply = content;
        const counted = { prompt: promptTokensOf(body), completion: Math.max(1, content.split(/\s+/).length) };
        const reported = options.usage === undefined ? counted : options.usage(request, counted);
        const model = (body as ChatBody).model;
        const answer = (): void =>
          billed(request, response, reported ?? undefined, () => sendJson(response, 200, {
            id: `chatcmpl-${request.index}`,
            object: 'chat.completion',
            created: Math.floor(Date.now() / 1000),
            model: typeof model === 'string' ? model : 'test-model',
            choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
            ...(reported === null ? {} : { usage: { prompt_tokens: reported.prompt, completion_tokens: reported.completion, total_tokens: reported.prompt + reported.completion } }),
          }, options.answerHeaders));
        if (options.latencyMs === undefined) answer();
        else setTimeout(answer, options.latencyMs);
        return;
      }
    }
  };

  const server = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => handle(incoming, response, Buffer.concat(chunks).toString('utf8')));
    incoming.on('error', () => undefined);
    response.on('error', () => undefined);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    port,
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    get count() {
      return requests.length;
    },
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      const waiting = held;
      held = [];
      for (const go of waiting) go();
    },
    drop: () => {
      holding = false;
      held = [];
    },
    billed: () => {
      const sent = requests.filter((r) => r.usage !== undefined);
      return { calls: sent.length, prompt: sent.reduce((sum, r) => sum + (r.usage?.prompt ?? 0), 0), completion: sent.reduce((sum, r) => sum + (r.usage?.completion ?? 0), 0) };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** A port on 127.0.0.1 with nothing listening (a server is opened there and closed again). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
