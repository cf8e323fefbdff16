// A simulated OpenAI-compatible provider on the fake clock: latency, a hard requests-per-second limit, random 429s.
// For virtual-time tests of the limiter and retries: with vi.useFakeTimers() a minute of traffic takes no real time.
import { ModelError } from '../../src/errors.js';
import { retryAfterMs } from '../../src/models/openai.js';
import type { ChatModel } from '../../src/chat.js';

export interface VirtualProviderOptions {
  /** Milliseconds before each answer or random refusal. */
  readonly latencyMs: number;
  /** A hard limit: a request arriving when this many were accepted in the last second gets 429 at once, with retry-after-ms. */
  readonly rps?: number;
  /**
   * A share of requests refused at random after the latency, with `Retry-After` as seconds or as an HTTP
   * date that far ahead. Which ones is a hash of (seed, last message, attempt), so two clients that send
   * the same calls meet the same refusals whatever the order their calls arrive in.
   */
  readonly refuse?: { readonly rate: number; readonly retryAfterS: number; readonly form: 'seconds' | 'date'; readonly seed: number };
  /** A dead upstream: every call fails with a 500 after the latency. */
  readonly dead?: boolean;
}

export interface VirtualRequest {
  /** Fake-clock time of arrival. */
  readonly at: number;
  readonly outcome: 'ok' | 'limited' | 'refused' | 'server_error';
}

/** A uniform draw in [0, 1) from a string (FNV-1a, then MurmurHash3's finaliser). */
function draw(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/** A 429 as the openai provider turns one into a ModelError: its Retry-After read by the same parser. */
const refusal = (headers: Record<string, string>): ModelError => new ModelError('rate_limit', 'rate limited (429)', { status: 429, retryAfterMs: retryAfterMs(new Headers(headers), Date.now()) });

export function virtualProvider(options: VirtualProviderOptions): { readonly model: ChatModel; readonly requests: readonly VirtualRequest[] } {
  const requests: VirtualRequest[] = [];
  const accepted: number[] = [];
  const model: ChatModel = {
    provider: 'openai',
    model: 'virtual',
    complete: (request, signal) =>
      new Promise((resolve, reject) => {
        const now = Date.now();
        if (options.rps !== undefined) {
          while (accepted.length > 0 && (accepted[0] as number) <= now - 1000) accepted.shift();
          if (accepted.length >= options.rps) {
            requests.push({ at: now, outcome: 'limited' });
            reject(refusal({ 'retry-after-ms': String(Math.ceil((accepted[0] as number) + 1000 - now)) }));
            return;
          }
          accepted.push(now);
        }
        const refused = options.refuse !== undefined && draw(`${options.refuse.seed}:${request.messages.at(-1)?.content ?? ''}:${request.attempt ?? 1}`) < options.refuse.rate;
        requests.push({ at: now, outcome: options.dead === true ? 'server_error' : refused ? 'refused' : 'ok' });
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          const refuse = options.refuse;
          if (options.dead === true) reject(new ModelError('server', 'server error (500)', { status: 500 }));
          else if (refused && refuse !== undefined) {
            const header = refuse.form === 'seconds' ? String(refuse.retryAfterS) : new Date(Date.now() + refuse.retryAfterS * 1000).toUTCString();
            reject(refusal({ 'retry-after': header }));
          } else resolve({ content: 'ok', usage: { input: 10, output: 5 } });
        }, options.latencyMs);
        function onAbort(): void {
          clearTimeout(timer);
          reject(new ModelError('aborted', 'request aborted'));
        }
        signal.addEventListener('abort', onAbort, { once: true });
      }),
  };
  return { model, requests };
}
