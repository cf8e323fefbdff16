// The viewer's server: GET only, its own Host only, a fixed set of routes, offsets that reach only interaction lines, no secrets, and a strict CSP.
import { request } from 'node:http';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/cli.js';
import { Dataset } from '../../src/view/dataset.js';
import { Pacer } from '../../src/view/pace.js';
import { LOOPBACK, startViewer, type Viewer } from '../../src/view/server.js';
import { interaction, writeDir } from './fixtures.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw HTTP request, with any method, path and Host (fetch would not send a foreign Host). */
function ask(viewer: Viewer, path: string, options: { method?: string; host?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: LOOPBACK, port: viewer.port, path, method: options.method ?? 'GET', headers: { Host: options.host ?? `${LOOPBACK}:${viewer.port}`, ...options.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const SECRET = 'sk-live-0123456789abcdefghij';
let dir: string;
let offsets: number[];
let dataset: Dataset;
let viewer: Viewer;

beforeAll(async () => {
  ensureBuilt();
  ({ dir, offsets } = await writeDir({
    interactions: [interaction({ persona: 'p1', extraMetadata: { api_key: SECRET } }), interaction({ persona: 'p2' })],
    run: { seed: 1, settings: { base_url: `https://user:${SECRET}@llm.example/v1`, api_key: SECRET } },
    usage: { statistics: { by_model: {}, by_module: {} }, api_key: SECRET },
  }));
  dataset = await Dataset.open(dir);
  await dataset.start();
  viewer = await startViewer(dataset);
});
afterAll(async () => {
  await viewer?.close();
  await dataset?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the viewer server', () => {
  it('listens on 127.0.0.1 only, on a free port', () => {
    expect(viewer.server.address()).toMatchObject({ address: '127.0.0.1' });
    expect(viewer.port).toBeGreaterThan(0);
    expect(viewer.url).toBe(`http://127.0.0.1:${viewer.port}/`);
  });

  it('serves the page, its script and style, and the API, each with a CSP that allows only its own files', async () => {
    for (const [path, type] of [
      ['/', 'text/html'],
      ['/app.js', 'text/javascript'],
      ['/app.css', 'text/css'],
      ['/api/summary', 'application/json'],
      ['/api/stats', 'application/json'],
      ['/api/conversations?page=0', 'application/json'],
      [`/api/conversation?at=${offsets[1]}`, 'application/json'],
    ] as const) {
      const answer = await ask(viewer, path);
      expect(answer.status, path).toBe(200);
      expect(answer.headers['content-type']).toContain(type);
      expect(answer.headers['content-security-policy']).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
    }
    expect(await ask(viewer, '/', { host: `localhost:${viewer.port}` })).toMatchObject({ status: 200 });
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'])('answers %s with 405', async (method) => {
    const answer = await ask(viewer, '/api/summary', { method });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('GET');
  });

  it.each(['evil.example', `evil.example:${0}`, 'attacker.test:80', '127.0.0.1', '192.168.1.2:1'])('refuses a request whose Host is %s (DNS rebinding)', async (host) => {
    const answer = await ask(viewer, '/api/summary', { host });
    expect(answer.status).toBe(403);
    expect(answer.body).not.toContain('p1');
  });

  it('refuses cross-site requests', async () => {
    expect((await ask(viewer, '/api/summary', { headers: { 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(403);
  });

  it.each([
    '/interactions.ndjson',
    '/run.json',
    '/usage.json',
    '/../../../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/app.js/../../interactions.ndjson',
    '//etc/passwd',
    '/api/../interactions.ndjson',
    '/dist/page/app.js',
    '/package.json',
  ])('serves no file by its path: %s', async (path) => {
    const answer = await ask(viewer, path);
    expect(answer.status).toBe(404);
    expect(answer.body).toBe('not found\n');
  });

  it('reads a conversation only where an interaction line starts', async () => {
    expect((await ask(viewer, `/api/conversation?at=${offsets[1]! + 1}`)).status).toBe(404);
    expect((await ask(viewer, '/api/conversation?at=999999999')).status).toBe(404);
    for (const at of ['-1', '1e3', '0x10', '', '99999999999999999999', '1.5']) expect((await ask(viewer, `/api/conversation?at=${at}`)).status, at).toBe(400);
    for (const page of ['-1', 'x', '1e9', '99999999999']) expect((await ask(viewer, `/api/conversations?page=${page}`)).status, page).toBe(400);
    expect((await ask(viewer, `/api/conversations?noised=maybe`)).status).toBe(400);
    expect((await ask(viewer, `/api/conversations?persona=${'x'.repeat(1001)}`)).status).toBe(400);
  });

  it('never shows a secret from run.json, usage.json or metadata', async () => {
    const bodies = await Promise.all(['/api/summary', '/api/stats', `/api/conversation?at=${offsets[0]}`, '/api/conversations?page=0'].map(async (path) => (await ask(viewer, path)).body));
    for (const body of bodies) expect(body).not.toContain(SECRET);
    expect(JSON.parse(bodies[0]!).run.settings.base_url).toBe('https://[redacted]@llm.example/v1');
  });

  it('filters by query parameters, features included', async () => {
    const answer = JSON.parse((await ask(viewer, '/api/conversations?persona=P2&f.role=nurse')).body);
    expect(answer).toMatchObject({ matches: 1, rows: [{ persona: 'p2' }] });
    expect(JSON.parse((await ask(viewer, '/api/conversations?f.__proto__=x')).body)).toMatchObject({ matches: 0 });
  });
});

describe('startViewer', () => {
  it('says a port in use is in use', async () => {
    await expect(startViewer(dataset, { port: viewer.port })).rejects.toThrow(`--port ${viewer.port}: already in use`);
  });
});

describe('a server whose scan gives way', () => {
  it('still answers what waits for the scan: a directory without an index, a conversation with rejected replies', async () => {
    const { dir: bare, offsets: at } = await writeDir({
      interactions: Array.from({ length: 60 }, (_, i) => interaction({ persona: `q${i}` })),
      index: false,
      rejections: [{ persona_id: 'q3', query_id: 'q1', reason: 'echo', text: 'again' }],
    });
    // The quiet start never ends by itself here: only the requests' own need can move the scan.
    const held = await Dataset.open(bare, { pacer: new Pacer(10, 150, 3_600_000) });
    const scan = held.start();
    const server = await startViewer(held);
    try {
      const page = JSON.parse((await ask(server, '/api/conversations?page=0')).body);
      expect(page.rows).toHaveLength(50);
      const conversation = JSON.parse((await ask(server, `/api/conversation?at=${at[3]}`)).body);
      expect(conversation.rejections).toEqual([{ reason: 'echo', text: 'again', turn: null, role: null }]);
    } finally {
      await server.close();
      await held.close();
      await scan;
      await rm(bare, { recursive: true, force: true });
    }
  });
});
