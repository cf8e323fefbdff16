// src/models/transport.ts at its edges, from a review of the node:http(s) transport: a decoding error,
// a gzip bomb, an empty gzip-labelled 429, a byte order mark, the server's keep-alive timeout. Each
// failed before its fix.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createOpenAIModel } from '../../src/models/openai.js';
import { createFetch } from '../../src/models/transport.js';
import { ROOT, ensureBuilt } from '../helpers/cli.js';

interface Local {
  readonly url: string;
  readonly connections: () => number;
  readonly open: () => number;
  readonly close: () => Promise<void>;
}

const servers: Local[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function listen(server: Server): Promise<Local> {
  const sockets = new Set<Socket>();
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const local: Local = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
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

const answering = (handler: (request: IncomingMessage, response: ServerResponse) => void) => (request: IncomingMessage, response: ServerResponse) => {
  request.resume();
  request.on('end', () => handler(request, response));
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const chat = { module: 'assistant', messages: [{ role: 'user', content: 'hi' }] } as const;

describe('createFetch at its edges', () => {
  // Was a bug: a decoder error rejects the call but leaves `response` unpiped and paused:
  // the socket is neither read to its end (and returned to the pool) nor destroyed. It stays open,
  // held by nobody, for as long as the server keeps it: one leaked connection per such answer.
  it('closes or reuses the connection after a body that says gzip and is not (large body)', async () => {
    let calls = 0;
    const server = await listen(
      createServer(
        answering((_request, response) => {
          calls += 1;
          if (calls === 1) {
            const body = Buffer.alloc(4 * 1024 * 1024, 0x78);
            response.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(body.length) });
            response.end(body);
          } else response.end('{}');
        }),
      ),
    );
    const fetch = createFetch();
    await expect(fetch(server.url, { method: 'POST', body: '{}' })).rejects.toThrow();
    expect((await fetch(server.url, { method: 'POST', body: '{}' })).status).toBe(200);
    for (let waited = 0; waited < 500 && server.open() > 1; waited += 20) await sleep(20);
    // Either the bad connection was destroyed or it was reused; never two open for one idle client.
    expect(server.open()).toBeLessThanOrEqual(1);
  });

  // Was a bug: the decoded body is unbounded (`text += chunk`). A ~570 KB gzip body inflates
  // past V8's longest string, and the RangeError is thrown inside the stream's 'data' listener, not
  // into the promise: an uncaught exception that kills the whole process (a CLI run loses every task
  // in flight) instead of failing one call. Decoding, new in this change, makes it cheap for a server.
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

  // Was a bug: every `content-encoding: gzip` body goes through createGunzip with its default
  // Z_FINISH, so an empty body (a proxy's 429 with `content-length: 0`) or one without its trailer
  // rejects with "unexpected end of file", where fetch returns the response. The SDK then sees a
  // connection error: the 429 becomes a 'network' error, its Retry-After is lost, and the limiter
  // neither pauses nor counts an overload.
  it('keeps the status and Retry-After of a 429 whose empty body is labelled gzip', async () => {
    const server = await listen(
      createServer(
        answering((_request, response) => {
          response.writeHead(429, { 'content-encoding': 'gzip', 'content-length': '0', 'retry-after': '3' });
          response.end();
        }),
      ),
    );
    const model = createOpenAIModel({ provider: 'openai', model: 'm', apiKey: 'k', baseURL: `${server.url}/v1`, timeoutMs: 5000 });
    await expect(model.complete(chat, new AbortController().signal)).rejects.toMatchObject({ kind: 'rate_limit', retryAfterMs: 3000 });
  });

  // Was a bug: setEncoding('utf8') keeps a leading byte order mark, which fetch's text() and
  // json() (and undici's body.text(), used before this change) drop. A server that sends one gets
  // every answer rejected as malformed JSON, retried, and failed.
  it('reads a JSON answer that starts with a UTF-8 byte order mark', async () => {
    const server = await listen(
      createServer(
        answering((_request, response) => {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(`\uFEFF${JSON.stringify({ id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1 } })}`);
        }),
      ),
    );
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
    const server = await listen(
      createServer(
        answering((_request, response) => {
          // Announce 2 s but keep the socket open, so that what the client does is seen deterministically.
          response.writeHead(200, { connection: 'keep-alive', 'keep-alive': 'timeout=2', 'content-type': 'application/json' });
          response.end('{}');
        }),
      ),
    );
    const fetch = createFetch();
    expect((await fetch(server.url, { method: 'POST', body: '{}' })).status).toBe(200);
    await sleep(2200);
    expect((await fetch(server.url, { method: 'POST', body: '{}' })).status).toBe(200);
    expect(server.connections()).toBe(2);
  });
});
