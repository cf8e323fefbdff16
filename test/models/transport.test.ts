// The SDK's fetch (src/models/transport.ts) against real sockets on 127.0.0.1: plain HTTP in process,
// and HTTPS through the built CLI, which trusts a throwaway certificate made with openssl.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch } from '../../src/models/transport.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void;

interface Local {
  readonly url: string;
  /** Connections the server accepted. */
  readonly connections: () => number;
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

describe('createFetch over HTTP', () => {
  it('sends the method, headers and body, and returns status, headers and the whole body', async () => {
    const seen: { method?: string; headers?: IncomingMessage['headers']; body?: string } = {};
    const server = await listen(
      createServer(
        reading((request, body, response) => {
          Object.assign(seen, { method: request.method, headers: request.headers, body });
          response.setHeader('x-request-id', 'req_1');
          response.setHeader('set-cookie', ['a=1', 'b=2']);
          response.writeHead(201, { 'content-type': 'application/json' });
          response.end('{"ok":true,"text":"héllo"}');
        }),
      ),
      'http',
    );
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
    const server = await listen(
      createServer(
        reading((_request, _body, response) => {
          response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding });
          response.end(compressed);
        }),
      ),
      'http',
    );
    expect(await (await createFetch()(server.url, { method: 'POST', body: '{}' })).text()).toBe(json);
  });

  it('rejects a body that says gzip and is not', async () => {
    const server = await listen(
      createServer(
        reading((_request, _body, response) => {
          response.writeHead(200, { 'content-encoding': 'gzip' });
          response.end('{"not":"gzip"}');
        }),
      ),
      'http',
    );
    await expect(createFetch()(server.url, { method: 'POST', body: '{}' })).rejects.toThrow();
  });

  it('passes error statuses through with their body and headers', async () => {
    const server = await listen(
      createServer(
        reading((_request, _body, response) => {
          response.writeHead(429, { 'retry-after-ms': '250' });
          response.end('{"error":{"message":"slow down"}}');
        }),
      ),
      'http',
    );
    const response = await createFetch()(server.url, { method: 'POST', body: '{}' });
    expect(response.ok).toBe(false);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after-ms')).toBe('250');
    expect(await response.text()).toBe('{"error":{"message":"slow down"}}');
  });

  it('keeps one connection alive for calls made one after another', async () => {
    const server = await listen(createServer(reading((_request, _body, response) => response.end('{}'))), 'http');
    const fetch = createFetch();
    for (let i = 0; i < 5; i += 1) expect((await fetch(server.url, { method: 'POST', body: '{}' })).status).toBe(200);
    expect(server.connections()).toBe(1);
  });

  it('rejects when the connection drops in the middle of the body', async () => {
    const server = await listen(
      createServer(
        reading((_request, _body, response) => {
          response.writeHead(200, { 'content-length': '1000' });
          response.write('{"choices":[');
          setTimeout(() => response.socket?.destroy(), 20);
        }),
      ),
      'http',
    );
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
