// A real local HTTP server speaking OpenAI's files and batches endpoints, for the batch end-to-end tests.
// Lines are answered as the chat server answers the same request online (chatAnswer), and every request
// a batch is created with is counted, so a test can see that nothing was submitted twice.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { chatAnswer, hash, type FakeOpenAIOptions } from './openai-server.js';

/** A moment of the protocol a test can wait for (and hold: the server does the work but never answers). */
export interface BatchEvent {
  readonly kind: 'upload' | 'create' | 'retrieve' | 'content' | 'list';
  readonly fileId?: string;
  readonly batchId?: string;
  /** For `retrieve`: the batch's status after this look. */
  readonly status?: string;
  /** For `content`: whose file it is (the input, output or error file of a batch). */
  readonly file?: 'input' | 'output' | 'error';
}

export interface BatchServerOptions {
  /** Looks at a batch before it is done (the completion delay, counted in looks rather than seconds). Default 2. */
  readonly pollsToComplete?: number;
  /** Share of requests answered with a 500 in the error file (chosen by a hash of the custom id). */
  readonly failedShare?: number;
  /** Share of requests left unanswered; a batch holding one ends `expired`. */
  readonly expiredShare?: number;
  /** Batches (0-based creation order) that fail as a whole, at validation. */
  readonly failWhole?: (batchIndex: number) => boolean;
  /** Seeds the fates of requests. */
  readonly seed?: number;
  /** Return true to hold this moment: the server does what was asked but never answers. */
  readonly hold?: (event: BatchEvent) => boolean;
  /** How the chat lines are answered (the simulator's stop, the judge, ...), as for the chat server. */
  readonly chat?: FakeOpenAIOptions;
}

interface StoredFile {
  readonly id: string;
  readonly filename: string;
  readonly purpose: string;
  readonly content: string;
}

interface StoredBatch {
  readonly id: string;
  readonly index: number;
  readonly inputFileId: string;
  status: string;
  polls: number;
  outputFileId: string | null;
  errorFileId: string | null;
  counts: { total: number; completed: number; failed: number };
  errors: { data: { code: string; message: string }[] } | null;
  readonly metadata: unknown;
}

export interface BatchServer {
  readonly baseURL: string;
  /** How many times each custom id was in a created batch. */
  readonly submitted: ReadonlyMap<string, number>;
  /** Files uploaded, batches created (ids in creation order). */
  readonly uploads: number;
  readonly batches: readonly string[];
  /** Usage the server reported in output files: tokens and answered requests. */
  readonly reported: { readonly input: number; readonly output: number; readonly calls: number };
  /** Requests answered with an error line (failed) or left unanswered (expired), and batches failed whole. */
  readonly faults: { readonly failed: number; readonly expired: number; readonly failedWhole: number };
  /** Resolves at the first event (from now) that `matches`. */
  next(matches: (event: BatchEvent) => boolean): Promise<BatchEvent>;
  close(): Promise<void>;
}

/** The file part of a multipart/form-data body, with its filename, and the purpose field. */
function parseMultipart(body: Buffer, contentType: string): { filename: string; content: string; purpose: string } | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const marker = boundary?.[1] ?? boundary?.[2];
  if (marker === undefined) return undefined;
  const text = body.toString('utf8');
  let file: { filename: string; content: string } | undefined;
  let purpose = '';
  for (const part of text.split(`--${marker}`)) {
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const headers = part.slice(0, split);
    const value = part.slice(split + 4).replace(/\r\n$/, '');
    const name = /name="([^"]+)"/.exec(headers)?.[1];
    if (name === 'file') file = { filename: /filename="([^"]*)"/.exec(headers)?.[1] ?? 'input.jsonl', content: value };
    else if (name === 'purpose') purpose = value;
  }
  return file === undefined ? undefined : { ...file, purpose };
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
  response.end(body);
}

const draw = (seed: number, id: string, purpose: string): number => hash(`${seed}:${purpose}:${id}`) / 2 ** 32;

/**
 * Starts the server on 127.0.0.1, port 0.
 *
 * @example
 * const server = await startBatchServer({ failedShare: 0.1, expiredShare: 0.1 });
 * // personaflow generate --batch --provider openai --base-url server.baseURL ...
 */
export async function startBatchServer(options: BatchServerOptions = {}): Promise<BatchServer> {
  const files = new Map<string, StoredFile>();
  const batches = new Map<string, StoredBatch>();
  const order: string[] = [];
  const submitted = new Map<string, number>();
  const reported = { input: 0, output: 0, calls: 0 };
  const faults = { failed: 0, expired: 0, failedWhole: 0 };
  const waiters: { matches: (event: BatchEvent) => boolean; resolve: (event: BatchEvent) => void }[] = [];
  const simulatorAttempts = new Map<string, number>();
  const sockets = new Set<Socket>();
  let next = 0;
  const seed = options.seed ?? 1;

  /** Tells the waiters; true when the test holds this moment (the answer is never sent). */
  const happen = (event: BatchEvent): boolean => {
    for (const waiter of [...waiters]) {
      if (waiter.matches(event)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(event);
      }
    }
    return options.hold?.(event) === true;
  };

  const batchJson = (batch: StoredBatch) => ({
    id: batch.id,
    object: 'batch',
    endpoint: '/v1/chat/completions',
    input_file_id: batch.inputFileId,
    completion_window: '24h',
    status: batch.status,
    output_file_id: batch.outputFileId,
    error_file_id: batch.errorFileId,
    created_at: 0,
    request_counts: batch.counts,
    errors: batch.errors,
    metadata: batch.metadata,
  });

  const store = (filename: string, purpose: string, content: string): StoredFile => {
    const file = { id: `file-${(next += 1)}`, filename, purpose, content };
    files.set(file.id, file);
    return file;
  };

  /** Runs the batch's requests: answers, 500s and unanswered ones, by a hash of each custom id. */
  const finish = (batch: StoredBatch): void => {
    const lines = (files.get(batch.inputFileId)?.content ?? '').split('\n').filter((line) => line.trim() !== '');
    const output: string[] = [];
    const errors: string[] = [];
    let expired = false;
    for (const text of lines) {
      const line = JSON.parse(text) as { custom_id: string; body: unknown };
      const id = line.custom_id;
      if (draw(seed, id, 'expired') < (options.expiredShare ?? 0)) {
        expired = true;
        faults.expired += 1;
        errors.push(JSON.stringify({ id: `batch_req_${(next += 1)}`, custom_id: id, response: null, error: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' } }));
        continue;
      }
      if (draw(seed, id, 'failed') < (options.failedShare ?? 0)) {
        faults.failed += 1;
        errors.push(JSON.stringify({ id: `batch_req_${(next += 1)}`, custom_id: id, response: { status_code: 500, request_id: 'r', body: { error: { message: 'The server had an error while processing your request.', type: 'server_error' } } }, error: null }));
        continue;
      }
      const { content, usage } = chatAnswer(line.body, options.chat, simulatorAttempts);
      reported.input += usage.prompt;
      reported.output += usage.completion;
      reported.calls += 1;
      output.push(
        JSON.stringify({
          id: `batch_req_${(next += 1)}`,
          custom_id: id,
          response: {
            status_code: 200,
            request_id: `req_${next}`,
            body: { id: `chatcmpl-${next}`, object: 'chat.completion', model: 'test-model', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion } },
          },
          error: null,
        }),
      );
    }
    batch.outputFileId = output.length === 0 ? null : store('output.jsonl', 'batch_output', output.map((line) => `${line}\n`).join('')).id;
    batch.errorFileId = errors.length === 0 ? null : store('errors.jsonl', 'batch_output', errors.map((line) => `${line}\n`).join('')).id;
    batch.counts = { total: lines.length, completed: output.length, failed: errors.length };
    batch.status = expired ? 'expired' : 'completed';
  };

  const handle = (incoming: IncomingMessage, response: ServerResponse, raw: Buffer): void => {
    const method = incoming.method ?? '';
    const path = (incoming.url ?? '').split('?')[0] ?? '';
    if (method === 'POST' && path === '/v1/files') {
      const part = parseMultipart(raw, String(incoming.headers['content-type'] ?? ''));
      if (part === undefined) return sendJson(response, 400, { error: { message: 'expected multipart/form-data with a file' } });
      const file = store(part.filename, part.purpose, part.content);
      if (happen({ kind: 'upload', fileId: file.id })) return;
      return sendJson(response, 200, { id: file.id, object: 'file', bytes: Buffer.byteLength(file.content), created_at: 0, filename: file.filename, purpose: file.purpose, status: 'processed' });
    }
    const content = /^\/v1\/files\/([^/]+)\/content$/.exec(path);
    if (method === 'GET' && content !== null) {
      const file = files.get(content[1] as string);
      if (file === undefined) return sendJson(response, 404, { error: { message: 'no such file' } });
      const owner = [...batches.values()].find((batch) => batch.inputFileId === file.id || batch.outputFileId === file.id || batch.errorFileId === file.id);
      const role = owner === undefined ? undefined : owner.inputFileId === file.id ? 'input' : owner.outputFileId === file.id ? 'output' : 'error';
      if (happen({ kind: 'content', fileId: file.id, ...(owner === undefined ? {} : { batchId: owner.id }), ...(role === undefined ? {} : { file: role }) })) return;
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(Buffer.byteLength(file.content)) });
      response.end(file.content);
      return;
    }
    if (method === 'POST' && path === '/v1/batches') {
      const body = JSON.parse(raw.toString('utf8')) as { input_file_id?: string; metadata?: unknown };
      const input = files.get(body.input_file_id ?? '');
      if (input === undefined) return sendJson(response, 400, { error: { message: 'no such input file' } });
      const batch: StoredBatch = { id: `batch_${(next += 1)}`, index: order.length, inputFileId: input.id, status: 'validating', polls: 0, outputFileId: null, errorFileId: null, counts: { total: 0, completed: 0, failed: 0 }, errors: null, metadata: body.metadata ?? null };
      batches.set(batch.id, batch);
      order.push(batch.id);
      for (const line of input.content.split('\n').filter((l) => l.trim() !== '')) {
        const id = (JSON.parse(line) as { custom_id: string }).custom_id;
        submitted.set(id, (submitted.get(id) ?? 0) + 1);
      }
      if (happen({ kind: 'create', fileId: input.id, batchId: batch.id })) return;
      return sendJson(response, 200, batchJson(batch));
    }
    if (method === 'GET' && path === '/v1/batches') {
      if (happen({ kind: 'list' })) return;
      return sendJson(response, 200, { object: 'list', data: [...order].reverse().map((id) => batchJson(batches.get(id) as StoredBatch)), has_more: false });
    }
    const one = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    if (one !== null) {
      const batch = batches.get(one[1] as string);
      if (batch === undefined) return sendJson(response, 404, { error: { message: 'no such batch' } });
      if (method === 'POST' && one[2] !== undefined) {
        if (batch.status === 'in_progress' || batch.status === 'validating') batch.status = 'cancelled';
        return sendJson(response, 200, batchJson(batch));
      }
      if (method === 'GET') {
        if (batch.status === 'validating') {
          if (options.failWhole?.(batch.index) === true) {
            batch.status = 'failed';
            batch.errors = { data: [{ code: 'invalid_request', message: 'The batch failed validation (injected).' }] };
            faults.failedWhole += 1;
          } else batch.status = 'in_progress';
        }
        if (batch.status === 'in_progress') {
          batch.polls += 1;
          if (batch.polls >= (options.pollsToComplete ?? 2)) finish(batch);
        }
        if (happen({ kind: 'retrieve', batchId: batch.id, status: batch.status })) return;
        return sendJson(response, 200, batchJson(batch));
      }
    }
    sendJson(response, 404, { error: { message: `no route ${method} ${path}` } });
  };

  const server = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => handle(incoming, response, Buffer.concat(chunks)));
    incoming.on('error', () => undefined);
    response.on('error', () => undefined);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    submitted,
    get uploads() {
      return [...files.values()].filter((file) => file.purpose === 'batch').length;
    },
    batches: order,
    reported,
    faults,
    next: (matches) => new Promise((resolve) => waiters.push({ matches, resolve })),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }),
  };
}
