// The viewer's HTTP server: GET only, on 127.0.0.1 only, a fixed set of routes over one directory's data, never a file by its path.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../errors.js';
import type { Filter } from './api.js';
import { VIEW_CSP, VIEW_HTML, loadAssets, type Assets } from './assets.js';
import type { Dataset } from './dataset.js';

/** The only address the viewer listens on. */
export const LOOPBACK = '127.0.0.1';
/** Longest value of a query parameter accepted. */
const MAX_PARAM = 1000;
/** Highest page number accepted (a million interactions are 20,000 pages). */
const MAX_PAGE = 10_000_000;

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': VIEW_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A filter from the query string: `persona`, `f.<feature>`, `model`, `end`, `reason`, `noised`, `round`, `verdict`, `score`, `min`, `max`. */
export function filterOf(params: URLSearchParams): Filter {
  const get = (name: string): string | undefined => {
    const value = params.get(name);
    if (value === null || value === '') return undefined;
    if (value.length > MAX_PARAM) throw new HttpError(400, `${name}: longer than ${MAX_PARAM} characters`);
    return value;
  };
  const number = (name: string): number | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (!Number.isFinite(parsed)) throw new HttpError(400, `${name}: expected a number`);
    return parsed;
  };
  const features: Record<string, string> = {};
  for (const [name, value] of params) {
    if (!name.startsWith('f.') || value === '') continue;
    if (name.length > MAX_PARAM || value.length > MAX_PARAM) throw new HttpError(400, 'feature filter: too long');
    Object.defineProperty(features, name.slice(2), { value, enumerable: true });
  }
  const noised = get('noised');
  if (noised !== undefined && noised !== 'yes' && noised !== 'no') throw new HttpError(400, 'noised: expected yes or no');
  return {
    persona: get('persona'),
    features: Object.keys(features).length === 0 ? undefined : features,
    model: get('model'),
    endReason: get('end'),
    reason: get('reason'),
    noised,
    round: get('round'),
    verdict: get('verdict'),
    score: get('score'),
    scoreMin: number('min'),
    scoreMax: number('max'),
  };
}

function integerParam(params: URLSearchParams, name: string, max: number, fallback?: number): number {
  const value = params.get(name);
  if (value === null || value === '') {
    if (fallback !== undefined) return fallback;
    throw new HttpError(400, `${name}: required`);
  }
  if (!/^\d{1,16}$/.test(value) || Number(value) > max) throw new HttpError(400, `${name}: expected an integer from 0 to ${max}`);
  return Number(value);
}

/** Whether a Host header names this server on loopback (a page that rebinds a DNS name to 127.0.0.1 sends its own name). */
function isOwnHost(host: string | undefined, port: number): boolean {
  return host === `${LOOPBACK}:${port}` || host === `localhost:${port}`;
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), ...extra });
  response.end(body);
}

const json = (response: ServerResponse, value: unknown): void => send(response, 200, 'application/json; charset=utf-8', JSON.stringify(value));

async function route(request: IncomingMessage, response: ServerResponse, dataset: Dataset, assets: Assets, port: number): Promise<void> {
  if (request.method !== 'GET') throw new HttpError(405, 'only GET');
  if (!isOwnHost(request.headers.host, port)) throw new HttpError(403, 'this server answers only requests addressed to it on 127.0.0.1 or localhost');
  if (request.headers['sec-fetch-site'] === 'cross-site') throw new HttpError(403, 'no cross-site requests');
  const url = new URL(request.url ?? '/', `http://${LOOPBACK}:${port}`);
  const params = url.searchParams;
  switch (url.pathname) {
    case '/':
      return send(response, 200, 'text/html; charset=utf-8', VIEW_HTML);
    case '/app.js':
      return send(response, 200, 'text/javascript; charset=utf-8', assets.script);
    case '/app.css':
      return send(response, 200, 'text/css; charset=utf-8', assets.style);
    case '/favicon.ico':
      return send(response, 204, 'text/plain; charset=utf-8', '');
    case '/api/summary':
      return json(response, dataset.summary('view'));
    case '/api/stats':
      return json(response, dataset.stats());
    case '/api/conversations':
      return json(response, await dataset.page(filterOf(params), integerParam(params, 'page', MAX_PAGE, 0)));
    case '/api/conversation': {
      const conversation = await dataset.conversation(integerParam(params, 'at', Number.MAX_SAFE_INTEGER));
      if (conversation === undefined) throw new HttpError(404, 'no interaction starts at that offset');
      return json(response, conversation);
    }
    default:
      throw new HttpError(404, 'not found');
  }
}

export interface Viewer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Serves `dataset` on 127.0.0.1 (port 0: a free one). Only GET, only requests whose Host is this
 * server (no DNS rebinding), only the page, its two files and the JSON API; every answer carries a CSP
 * that allows nothing but the page's own script, style and API.
 */
export async function startViewer(dataset: Dataset, options: { readonly port?: number | undefined } = {}): Promise<Viewer> {
  const assets = await loadAssets();
  let port = options.port ?? 0;
  const server = createServer((request, response) => {
    // The background scan gives way while a request is answered.
    dataset.pacer.begin();
    response.once('close', () => dataset.pacer.end());
    route(request, response, dataset, assets, port).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof HttpError ? error.message : 'internal error';
      if (response.headersSent) {
        response.destroy();
        return;
      }
      send(response, status, 'text/plain; charset=utf-8', `${message}\n`, status === 405 ? { Allow: 'GET' } : {});
    });
  });
  // No request may hold the server: a slow client is cut off.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new ConfigError(`--port ${port}: already in use; choose another, or leave --port out for a free one`) : error.code === 'EACCES' ? new ConfigError(`--port ${port}: not allowed for this user`) : error);
    });
    server.listen(port, LOOPBACK, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${LOOPBACK}:${port}/`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
