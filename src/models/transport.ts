// HTTP for the openai SDK: a fetch built on node:http(s) requests, with keep-alive agents per model.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import { constants, createBrotliDecompress, createGunzip, createInflate, type ZlibOptions } from 'node:zlib';

/**
 * Decoders for a compressed body. The SDK asks for none, but a proxy may compress all the same. As
 * fetch does, a body cut short of its trailer (an empty 429, say) gives what it holds, not an error.
 */
const LENIENT: ZlibOptions = { flush: constants.Z_SYNC_FLUSH, finishFlush: constants.Z_SYNC_FLUSH };
const DECODERS: Readonly<Record<string, () => NodeJS.ReadWriteStream>> = {
  gzip: () => createGunzip(LENIENT),
  'x-gzip': () => createGunzip(LENIENT),
  deflate: () => createInflate(LENIENT),
  br: () => createBrotliDecompress({ flush: constants.BROTLI_OPERATION_FLUSH, finishFlush: constants.BROTLI_OPERATION_FLUSH }),
};

/**
 * Longest body read, in characters: a chat completion is a few KiB (128k tokens of answer are ~0.5 MiB),
 * so a bigger one, a gzip bomb say, fails the call.
 */
export const MAX_BODY_CHARS = 8 * 1024 * 1024;

/**
 * Characters of response bodies held at once by all calls of the process together: without it, many
 * calls each under the per-call limit still add up (16 gzip bombs at once took 1.2 GB). A call whose
 * chunk would pass it fails as a network error (retried: the others will have finished by then).
 */
export const MAX_HELD_CHARS = 64 * 1024 * 1024;

/** Characters held by the bodies being read, shared by every fetch of the process (or a test's own). */
export class HeldChars {
  held = 0;
  constructor(readonly max: number = MAX_HELD_CHARS) {}
}

const PROCESS_HELD = new HeldChars();

export interface FetchLimits {
  /** Longest body, in characters. Default MAX_BODY_CHARS. */
  readonly maxBodyChars?: number;
  /** The shared count of characters being read, with its own limit. Default: the process's, MAX_HELD_CHARS. */
  readonly held?: HeldChars;
}

/**
 * Idle keep-alive sockets are closed after this long, or sooner when the server announces a shorter
 * `Keep-Alive: timeout` (Node's agent honours the hint only under its own timeout). Not a limit on calls:
 * a socket timeout on a call in progress only emits an event; the SDK's deadline governs calls.
 */
const IDLE_SOCKET_MS = 60_000;

/** The request headers as node:http wants them: a plain object (the SDK hands over a Headers). */
function headerObject(headers: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers instanceof Headers) headers.forEach((value, name) => (out[name] = value));
  else if (Array.isArray(headers)) for (const [name, value] of headers) out[name as string] = value as string;
  else if (headers !== undefined) Object.assign(out, headers);
  return out;
}

/** The response headers as a WHATWG Headers, which the SDK reads (x-request-id, retry-after, ...). */
function headersOf(response: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = response.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
  return headers;
}

/**
 * A `fetch` for the openai SDK's `fetch` option, on node:http and node:https instead of WHATWG fetch. The
 * SDK stays in charge of building requests, mapping errors and parsing; only the transport changes. The
 * body is read in full before the response is returned, so the SDK's timeout covers the whole call.
 *
 * The response is a small object with what the SDK reads from a non-streaming answer (status, ok,
 * headers, url, json, text; body is null) rather than a WHATWG Response, whose stream machinery costs
 * as much again. Measured on this machine against a local server: ~0.11 ms of CPU per call for the
 * transport, against ~0.4 ms for the global fetch, and CPU per call is what caps the calls one process
 * keeps in flight (bench/RESULTS.md). node:http costs the same per call as undici's request API, which
 * this used before, and needs no megabyte of HTTP client to be parsed at start-up. The e2e tests run
 * the real SDK through this transport, faults included, so an SDK release that starts reading something
 * else from responses shows up there. Connections are kept alive and unbounded in number: the
 * pipeline's concurrency is the limit.
 */
export function createFetch(limits: FetchLimits = {}): typeof fetch {
  const maxBody = limits.maxBodyChars ?? MAX_BODY_CHARS;
  const shared = limits.held ?? PROCESS_HELD;
  const agentOptions = { keepAlive: true, maxSockets: Infinity, scheduling: 'lifo', timeout: IDLE_SOCKET_MS } as const;
  const agents = { 'http:': new HttpAgent(agentOptions), 'https:': new HttpsAgent(agentOptions) };
  return (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? String(input) : input.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new TypeError(`unsupported protocol ${url.protocol}`));
    const body = typeof init.body === 'string' ? init.body : undefined;
    // One end(body) with the whole body: node:http sends it with a Content-Length, not chunked.
    const options: RequestOptions = { method: init.method ?? 'GET', headers: headerObject(init.headers), agent: agents[url.protocol], signal: init.signal ?? undefined };
    return new Promise<Response>((resolve, reject) => {
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (response) => {
        const status = response.statusCode ?? 0;
        const encoding = String(response.headers['content-encoding']).trim().toLowerCase();
        const empty = status === 204 || status === 304 || response.headers['content-length'] === '0';
        const decoder = empty ? undefined : DECODERS[encoding]?.();
        let body: Readable = response;
        response.on('error', reject);
        if (decoder !== undefined) {
          // pipeline destroys the response too when decoding fails, so its socket is not left paused in the pool.
          body = pipeline(response, decoder, (error) => {
            if (error) reject(error);
          }) as unknown as Readable;
        }
        body.setEncoding('utf8');
        let text = '';
        // What this call adds to the shared count, given back once, however the body ends.
        let counted = 0;
        const giveBack = (): void => {
          shared.held -= counted;
          counted = 0;
        };
        body.on('close', giveBack);
        body.on('data', (chunk: string) => {
          const over = text.length + chunk.length > maxBody ? `response body over ${maxBody} characters` : shared.held + chunk.length > shared.max ? `responses being read hold over ${shared.max} characters in all` : undefined;
          if (over !== undefined) {
            // Destroying the last stream destroys the response too (pipeline does it when decoding).
            const error = new Error(over);
            giveBack();
            body.destroy(error);
            reject(error);
            return;
          }
          shared.held += chunk.length;
          counted += chunk.length;
          text += chunk;
        });
        body.on('end', () => {
          giveBack();
          // A byte order mark is not part of the JSON (fetch's text() drops it too).
          if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
          resolve({
            status,
            ok: status >= 200 && status < 300,
            statusText: response.statusMessage ?? '',
            headers: headersOf(response),
            url: url.href,
            body: null,
            bodyUsed: false,
            json: () => Promise.resolve(JSON.parse(text) as unknown),
            text: () => Promise.resolve(text),
          } as unknown as Response);
        });
      });
      request.on('error', reject);
      request.end(body);
    });
  };
}
