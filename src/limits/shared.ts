// SharedLimits: the part of a model's admission that many processes share (rate buckets, breaker, long pauses), behind an interface.
import { ModelError } from '../errors.js';
import type { CallResult } from './limiter.js';

/** The limits configured for one model (per minute; undefined: unknown, learnt from x-ratelimit headers if sent). */
export interface ConfiguredLimits {
  readonly rpm?: number | undefined;
  readonly tpm?: number | undefined;
  readonly breakerThreshold?: number | undefined;
  readonly breakerCooldownMs?: number | undefined;
  readonly breakerGiveUpMs?: number | undefined;
}

/**
 * Admission that one model's callers in every process share: its request and token buckets, its circuit
 * breaker and its pauses (remaining: 0, a long Retry-After). The in-process ModelLimiter keeps what is
 * a process's own (the calls it has in flight, its adaptive limit, dense refusals it sees) and asks this
 * for each call after it: see `limited`. Without it (the default), the ModelLimiter does it all in memory.
 */
export interface SharedLimits {
  /**
   * Asks to send one call of about `tokens` tokens now: resolves 0 when it may go (its share of the
   * buckets is taken), else the milliseconds to wait before asking again. Rejects with a FatalError when
   * the model's breaker has given up.
   */
  admit(tokens: number): Promise<number>;
  /** What the call admitted last did (`estimated`: the tokens asked for): feeds the breaker, the pauses and the token bucket. */
  report(result: CallResult, estimated: number): void;
}

/** Makes the SharedLimits of one model: `key` names its quota (provider, model, endpoint, a hash of the key). */
export type SharedLimitsFactory = (key: string, name: string, limits: ConfiguredLimits) => SharedLimits;

/** Waits until `shared` admits the call, asking again after each wait it names; an abort ends the wait. */
export async function admitShared(shared: SharedLimits, tokens: number, signal: AbortSignal): Promise<void> {
  for (;;) {
    if (signal.aborted) throw new ModelError('aborted', 'request aborted');
    const wait = await shared.admit(tokens);
    if (wait <= 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, wait);
      function onAbort(): void {
        clearTimeout(timer);
        reject(new ModelError('aborted', 'request aborted'));
      }
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
