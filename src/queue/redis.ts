// The Redis a queue run lives on: its URL read and checked, shown without its password, and connections to it.
import { Redis } from 'ioredis';
import { ConfigError } from '../errors.js';

/** A `--queue` URL: what to connect to, and what may be shown (the password replaced). */
export interface QueueAddress {
  readonly url: string;
  /** The URL with any password or user name replaced by `***`: the only form that reaches stderr or a file. */
  readonly shown: string;
}

/**
 * `redis://[[user]:password@]host[:port][/db]` (or `rediss://` for TLS) as a QueueAddress. A password in
 * it never appears in a message: `shown` replaces it.
 *
 * @example
 * queueAddress('redis://:s3cret@10.0.0.5:6379/2').shown // 'redis://:***@10.0.0.5:6379/2'
 */
export function queueAddress(text: string): QueueAddress {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new ConfigError(`--queue: expected a URL like redis://HOST:6379, got \`${redact(text)}\``);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new ConfigError(`--queue: expected a redis:// or rediss:// URL, got \`${redact(text)}\``);
  if (parsed.hostname === '') throw new ConfigError(`--queue: the URL names no host: \`${redact(text)}\``);
  return { url: text, shown: redact(text) };
}

/** A URL with the user and password of its authority replaced (also for text that is not a valid URL). */
export function redact(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/]*)@/i, (_match, scheme: string, auth: string) => `${scheme}${auth.includes(':') ? `${auth.slice(0, auth.indexOf(':')) === '' ? '' : '***'}:***` : '***'}@`);
}

/**
 * A connection to the queue's Redis. `blocking` connections (BullMQ's workers and event readers) retry
 * a command forever while Redis is away (BullMQ requires it); the others give up after a few tries, so a
 * Redis that is down is an error instead of a hang.
 */
export function connect(address: QueueAddress, options: { readonly blocking?: boolean } = {}): Redis {
  const redis = new Redis(address.url, { maxRetriesPerRequest: options.blocking === true ? null : 3, lazyConnect: false, enableReadyCheck: true });
  // Errors surface on the commands that fail; the emitter's own would otherwise be logged by ioredis.
  redis.on('error', () => undefined);
  return redis;
}

/** Waits for the connection, or says the Redis cannot be reached, naming it without its password. */
export async function reachable(redis: Redis, address: QueueAddress, timeoutMs = 10_000): Promise<void> {
  const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new ConfigError(`--queue ${address.shown}: cannot reach Redis within ${timeoutMs / 1000} s; start one with \`redis-server\` (see the README)`)), timeoutMs).unref());
  await Promise.race([redis.ping(), timeout]).catch((error: unknown) => {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`--queue ${address.shown}: cannot reach Redis (${redact(error instanceof Error ? error.message : String(error))})`);
  });
}
