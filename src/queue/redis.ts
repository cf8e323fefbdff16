// Connections to the Redis a queue run lives on (ioredis), and a clear error when it cannot be reached.
import { Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import { redact, type QueueAddress } from './address.js';

export { queueAddress, redact, type QueueAddress } from './address.js';

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
  const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new ConfigError(`--queue ${address.shown}: cannot reach Redis within ${timeoutMs / 1000} s; start one with \`redis-server\` (see docs/long-runs.md)`)), timeoutMs).unref());
  await Promise.race([redis.ping(), timeout]).catch((error: unknown) => {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`--queue ${address.shown}: cannot reach Redis (${redact(error instanceof Error ? error.message : String(error))})`);
  });
}
