// A `--queue` URL read and checked, and shown without its password (no Redis client loaded for that).
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

/** Default run name of `generate --queue` and `worker` (`--name`). */
export const DEFAULT_RUN_NAME = 'personaflow';
/** Tasks queued or being worked on at most, by default (`generate --queue --backlog`). */
export const DEFAULT_BACKLOG = 1000;
/** How long a job's lock lasts without renewal (BullMQ's default): a dead worker's task goes to another after about this. */
export const DEFAULT_LOCK_MS = 30_000;
