// The SDK's fetch (src/models/transport.ts) against real sockets on 127.0.0.1: plain HTTP in process, its
// edge cases (a false gzip, a gzip bomb, a BOM, keep-alive hints), and HTTPS through the built CLI, which
// trusts a throwaway certificate made with openssl.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createOpenAIModel } from '../../src/models/openai.js';
import { HeldChars, createFetch } from '../../src/models/transport.js';
import { ROOT, ensureBuilt, runCli } from '../helpers/cli.js';

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void;

interface Local {
  readonly url: string;
  /** Connections the server accepted, and those still open. */
  readonly connections: () => number;
  readonly open: () => number;
  readonly close: () => Promise<void>;
}

const servers: Local[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function listen(server: Server, protocol: 'http' | 'https'): Promise<Local> {
  const sockets = new Set<Socket>();
  let connections = 0;
  server.on(protocol === 'https' ? 'secureConnection' : 'connection', (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const local: Local = {
    url: `${protocol}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    open: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
  servers.push(local);
  return local;
}

const reading = (handler: Handler) => (request: IncomingMessage, response: ServerResponse) => {
  let body = '';
  request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
  request.on('end', () => handler(request, body, response));
};

/** A plain HTTP server on 127.0.0.1 that reads each request's body, then lets `handler` answer. */
const serve = (handler: Handler): Promise<Local> => listen(createServer(reading(handler)), 'http');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('createFetch over HTTP', () => {
  it('sends the method, headers and body, and returns status, headers and the whole body', async () => {
    const seen: { method?: string; headers?: IncomingMessage['headers']; body?: string } = {};
    const server = await serve((request, body, response) => {
      Object.assign(seen, { method: request.method, headers: request.headers, body });
      response.setHeader('x-request-id', 'req_1');
      response.setHeader('set-cookie', ['a=1', 'b=2']);
      response.writeHead(201, { 'content-type': 'application/json' });
      response.end('{"ok":true,"text":"héllo"}');
    });
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'ünïcode' }] });
    const response = await createFetch()(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: new Headers({ authorization: 'Bearer k', 'content-type': 'application/json' }),
      body,
    });
    expect(seen).toMatchObject({ method: 'POST', body });
    expect(seen.headers).toMatchObject({ authorization: 'Bearer k', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    expect(response.status).toBe(201);
    expect(response.ok).toBe(true);
    expect(response.headers.get('x-request-id')).toBe('req_1');
    expect(response.headers.get('set-cookie')).toBe('a=1, b=2');
    expect(await response.json()).toEqual({ ok: true, text: 'héllo' });
  });

  it.each(['gzip', 'deflate', 'br'])('decodes a %s body that a proxy compressed unasked', async (encoding) => {
    const json = JSON.stringify({ choices: [{ message: { content: 'ünïcode '.repeat(200) } }] });
    const compressed = encoding === 'gzip' ? gzipSync(json) : encoding === 'deflate' ? deflateSync(json) : brotliCompressSync(json);
    const server = await serve((_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding });
      response.end(compressed);
    });
    expect(await (await createFetch()(server.url, { method: 'POST', body: '{}' })).text()).toBe(json);
  });

  it('rejects a body that says gzip and is not', async () => {
    const server = await serve((_request, _body, response) => {
      response.writeHead(200, { 'content-encoding': 'gzip' });
      response.end('{"not":"gzip"}');
    });
    await expect(createFetch()(server.url, { method: 'POST', body: '{}' })).rejects.toThrow();
  });

  it('passes error statuses through with their body and headers', async () => {
    const server = await serve((_request, _body, response) => {
      response.writeHead(429, { 'retry-after-ms': '250' });
      response.end('{"error":{"message":"slow down"}}');
    });
    const response = await createFetch()(server.url, { method: 'POST', body: '{}' });
    expect(response.ok).toBe(false);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after-ms')).toBe('250');
    expect(await response.text()).toBe('{"error":{"message":"slow down"}}');
  });

  it('keeps one connection alive for calls made one after another', async () => {
    const server = await serve((_request, _body, response) => response.end('{}'));
    const fetch = createFetch();
    for (let i = 0; i < 5; i += 1) expect((await fetch(server.url, { method: 'POST', body: '{}' })).status).toBe(200);
    expect(server.connections()).toBe(1);
  });

  it('rejects when the connection drops in the middle of the body', async () => {
    const server = await serve((_request, _body, response) => {
      response.writeHead(200, { 'content-length': '1000' });
      response.write('{"choices":[');
      setTimeout(() => response.socket?.destroy(), 20);
    });
    await expect(createFetch()(server.url, { method: 'POST', body: '{}' })).rejects.toThrow();
  });

  it('rejects with an AbortError as soon as its signal aborts, even while the server hangs', async () => {
    const server = await listen(createServer(() => undefined), 'http');
    const controller = new AbortController();
    const pending = createFetch()(server.url, { method: 'POST', body: '{}', signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects a refused connection with the system error', async () => {
    const server = await listen(createServer(), 'http');
    const { url } = server;
    await server.close();
    servers.length = 0;
    await expect(createFetch()(url, { method: 'POST', body: '{}' })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses a protocol other than http and https', async () => {
    await expect(createFetch()('file:///etc/passwd')).rejects.toThrow('unsupported protocol file:');
  });
});

const chat = { module: 'assistant', messages: [{ role: 'user', content: 'hi' }] } as const;

// Edge cases a review of this transport found; each test failed before its fix.
describe('createFetch at its edges', () => {
  // Was a bug: a decoder error rejects the call but leaves `response` unpiped and paused:
  // the socket is neither read to its end (and returned to the pool) nor destroyed. It stays open,
  // held by nobody, for as long as the server keeps it: one leaked connection per such answer.
  it('closes or reuses the connection after a body that says gzip and is not (large body)', async () => {
    let calls = 0;
    const server = await serve((_request, _body, response) => {
      calls += 1;
      if (calls === 1) {
        const body = Buffer.alloc(4 * 1024 * 1024, 0x78);
        response.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(body.length) });
        response.end(body);
      } else response.end('{}');
    });
    const fetch = createFetch();
    await expect(fetch(server.url, { method: 'POST', body: '{}' })).rejects.toThrow();
    expect((await fetch(server.url, { method: 'POST', body: '{}' })).status).toBe(200);
    // Either the bad connection was destroyed or it was reused; never two open for one idle client.
    await vi.waitFor(() => expect(server.open()).toBeLessThanOrEqual(1), { timeout: 10_000, interval: 20 });
  });

  // Was a bug: the decoded body is unbounded (`text += chunk`). A ~570 KB gzip body inflates
  // past V8's longest string, and the RangeError is thrown inside the stream's 'data' listener, not
  // into the promise: an uncaught exception that kills the whole process (a CLI run loses every task
  // in flight) instead of failing one call. Decoding makes such a body cheap for a server to send.
  it('fails the call, not the process, on a gzip bomb', async () => {
    ensureBuilt();
    const transport = pathToFileURL(join(ROOT, 'dist', 'models', 'transport.js')).href;
    const script = `
      import { createServer } from 'node:http';
      import { once } from 'node:events';
      import { gzipSync } from 'node:zlib';
      const { createFetch } = await import(${JSON.stringify(transport)});
      const member = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x61), { level: 9 });
      const server = createServer((request, response) => {
        request.resume();
        request.on('end', () => {
          response.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'application/json' });
          for (let i = 0; i < 70; i += 1) response.write(member);
          response.end();
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      let outcome;
      try {
        await createFetch()('http://127.0.0.1:' + server.address().port, { method: 'POST', body: '{}' });
        outcome = 'resolved';
      } catch {
        outcome = 'rejected';
      }
      process.stdout.write(outcome + '\\n');
      server.closeAllConnections();
      server.close();
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.resume();
    const [code] = (await once(child, 'close')) as [number | null];
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'rejected\n' });
  }, 60_000);

  it('regression: bodies read at once count against one shared limit, so many calls cannot add up to gigabytes', async () => {
    // Each answer is under the per-call limit; two at once are over the shared one. The server sends the
    // first half of each, and the second halves only once both first halves have been read.
    let firstHalves = 0;
    const finishers: (() => void)[] = [];
    const server = await serve((_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('x'.repeat(600));
      firstHalves += 1;
      finishers.push(() => response.end('y'.repeat(300)));
      if (firstHalves === 2) setTimeout(() => finishers.forEach((finish) => finish()), 20);
      if (firstHalves > 2) response.end('y'.repeat(300));
    });
    const held = new HeldChars(1400);
    const fetcher = createFetch({ maxBodyChars: 1000, held });
    const outcomes = await Promise.allSettled([fetcher(server.url, { method: 'POST', body: '{}' }), fetcher(server.url, { method: 'POST', body: '{}' })]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(String((outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason)).toMatch(/responses being read hold over 1400 characters in all/);
    // Every character counted is given back once its call is over, failed or not.
    await sleep(20);
    expect(held.held).toBe(0);
    // So the next call is not refused for characters nobody holds any more.
    expect(await (await fetcher(server.url, { method: 'POST', body: '{}' })).text()).toHaveLength(900);
  });

  it('fails a call whose body alone is over the per-call limit', async () => {
    const server = await serve((_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('z'.repeat(2000));
    });
    await expect(createFetch({ maxBodyChars: 1000, held: new HeldChars(10_000) })(server.url, { method: 'POST', body: '{}' })).rejects.toThrow('response body over 1000 characters');
  });

  // Was a bug: every `content-encoding: gzip` body goes through createGunzip with its default
  // Z_FINISH, so an empty body (a proxy's 429 with `content-length: 0`) or one without its trailer
  // rejects with "unexpected end of file", where fetch returns the response. The SDK then sees a
  // connection error: the 429 becomes a 'network' error, its Retry-After is lost, and the limiter
  // neither pauses nor counts an overload.
  it('keeps the status and Retry-After of a 429 whose empty body is labelled gzip', async () => {
    const server = await serve((_request, _body, response) => {
      response.writeHead(429, { 'content-encoding': 'gzip', 'content-length': '0', 'retry-after': '3' });
      response.end();
    });
    const model = createOpenAIModel({ provider: 'openai', model: 'm', apiKey: 'k', baseURL: `${server.url}/v1`, timeoutMs: 5000 });
    await expect(model.complete(chat, new AbortController().signal)).rejects.toMatchObject({ kind: 'rate_limit', retryAfterMs: 3000 });
  });

  // Was a bug: setEncoding('utf8') keeps a leading byte order mark, which fetch's text() and
  // json() (and undici's body.text(), used before this change) drop. A server that sends one gets
  // every answer rejected as malformed JSON, retried, and failed.
  it('reads a JSON answer that starts with a UTF-8 byte order mark', async () => {
    const server = await serve((_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(`\uFEFF${JSON.stringify({ id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1 } })}`);
    });
    const model = createOpenAIModel({ provider: 'openai', model: 'm', apiKey: 'k', baseURL: `${server.url}/v1`, timeoutMs: 5000 });
    await expect(model.complete(chat, new AbortController().signal)).resolves.toMatchObject({ content: 'hello' });
  });

  // Was a bug: the agents have no `timeout`, and Node 20's Agent applies a server's
  // `Keep-Alive: timeout=N` hint only when it is shorter than the agent's own timeout, so the hint is
  // ignored and an idle socket is reused after the server said it closes it (undici, used before,
  // honoured the hint). A call sent as the server closes it fails with ECONNRESET / socket hang up:
  // e.g. every call released together at the end of a shared Retry-After pause as long as the
  // server's keep-alive (Node servers announce timeout=5).
  it('does not reuse a connection past the keep-alive timeout the server announced', async () => {
    const server = await serve((_request, _body, response) => {
      // Announce 2 s but keep the socket open, so that what the client does is seen deterministically.
      response.writeHead(200, { connection: 'keep-alive', 'keep-alive': 'timeout=2', 'content-type': 'application/json' });
      response.end('{}');
    });
    const fetch = createFetch();
    expect((await fetch(server.url, { method: 'POST', body: '{}' })).status).toBe(200);
    await sleep(2200);
    expect((await fetch(server.url, { method: 'POST', body: '{}' })).status).toBe(200);
    expect(server.connections()).toBe(2);
  });
});

const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });

describe.skipIf(openssl.status !== 0)('createFetch over HTTPS (the CLI, with a throwaway certificate)', () => {
  it('generates a conversation through an https:// base URL', async () => {
    ensureBuilt();
    const dir = await mkdtemp(join(tmpdir(), 'personaflow-tls-'));
    try {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
      expect(made.status, made.stderr).toBe(0);
      let calls = 0;
      const server = await listen(
        createHttpsServer(
          { key: await readFile(key), cert: await readFile(cert) },
          reading((request, body, response) => {
            calls += 1;
            const { model } = JSON.parse(body) as { model: string };
            response.writeHead(200, { 'content-type': 'application/json' });
            response.end(JSON.stringify({ id: 'c', object: 'chat.completion', model, choices: [{ index: 0, message: { role: 'assistant', content: `answer over ${request.socket.constructor.name}` }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 4 } }));
          }),
        ),
        'https',
      );
      const personas = join(dir, 'personas.ndjson');
      await writeFile(personas, `${JSON.stringify({ persona_id: 'p1', persona_features: { role: 'nurse' }, queries: [{ query_id: 'q1', original_query: 'How do I rest after nights?' }] })}\n`);
      const run = await runCli(['generate', personas, '--provider', 'openai', '--base-url', `${server.url}/v1`, '--model', 'tls-model', '--min-turns', '1', '--max-turns', '1', '-q'], { env: { NODE_EXTRA_CA_CERTS: cert } });
      expect(run.stderr).not.toContain('certificate');
      expect(run.code).toBe(0);
      const interaction = JSON.parse(run.stdout) as { messages: { role: string; content: string }[]; metadata: { usage: unknown } };
      expect(interaction.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
      expect(interaction.messages[1]?.content).toBe('answer over TLSSocket');
      expect(calls).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
