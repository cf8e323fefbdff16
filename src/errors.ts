// Error classes shared by every stage: what kind of failure it is, whether a retry can help, and the exit code.

/** What went wrong with a model call, in terms a retry policy can act on. */
export type ModelErrorKind =
  | 'rate_limit' // 429
  | 'server' // 5xx
  | 'timeout' // no answer in time
  | 'unreachable' // connection refused, host not found: nothing is listening there
  | 'network' // connection reset, socket closed mid-answer
  | 'malformed' // a 2xx answer whose body is not a chat completion
  | 'auth' // 401, 403
  | 'bad_request' // 400, 422 and other 4xx
  | 'endpoint' // 404, a redirect, a model the server does not have: the base URL or the model name is wrong
  | 'aborted' // we cancelled it
  | 'unknown'; // anything else: a bug, not retried

import type { RateLimitInfo, TokenUsage } from './chat.js';

const TRANSIENT: ReadonlySet<ModelErrorKind> = new Set(['rate_limit', 'server', 'timeout', 'unreachable', 'network', 'malformed']);

/** A failed model call. `transient` errors are retried; `auth`, `endpoint`, and `unreachable` after its retries, end the whole run. */
export class ModelError extends Error {
  override readonly name = 'ModelError';
  readonly kind: ModelErrorKind;
  readonly status: number | undefined;
  /** Milliseconds the server asked us to wait (Retry-After, retry-after-ms), if it said. */
  readonly retryAfterMs: number | undefined;
  /** Tokens the provider billed for this failed attempt (a 200 whose answer was unusable), if it said. */
  readonly usage: TokenUsage | undefined;
  /** The x-ratelimit-* headers of the refusal, when the provider sent them. */
  readonly rateLimit: RateLimitInfo | undefined;

  /** Not retried whatever its kind (a refusal that asks for an absurd wait). */
  readonly permanent: boolean;

  constructor(kind: ModelErrorKind, message: string, options: { status?: number; retryAfterMs?: number | undefined; usage?: TokenUsage; rateLimit?: RateLimitInfo | undefined; cause?: unknown; permanent?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.permanent = options.permanent === true;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.usage = options.usage;
    this.rateLimit = options.rateLimit;
  }

  get transient(): boolean {
    return !this.permanent && TRANSIENT.has(this.kind);
  }
}

/** True when retrying the same call may succeed. Unknown errors are not retried: they are bugs. */
export const isTransient = (error: unknown): boolean => error instanceof ModelError && error.transient;

/** Ends the run at once (exit 1): retrying or moving on to the next task cannot help. */
export class FatalError extends Error {
  override readonly name = 'FatalError';
  readonly exitCode = 1;
}

/** Bad configuration or command line (exit 2). The message names the file, YAML path and value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly exitCode = 2;
}

/** A conversation the user-simulator guards could not repair. */
export class GuardError extends Error {
  override readonly name = 'GuardError';
}

/**
 * Whether an error ends the whole run rather than one task: a FatalError, a bad key (every other call
 * would fail the same way), a wrong endpoint or model name (404, a redirect, model not found), or an
 * endpoint nothing listens on. The one definition of it: `runEndingError`
 * turns such an error into the run's FatalError, and the steps that absorb their own failures (style
 * transfer keeping the query, the distractor keeping the text clean) pass these on, and aborts too.
 */
export const endsRun = (error: unknown): boolean => error instanceof FatalError || (error instanceof ModelError && (error.kind === 'auth' || error.kind === 'endpoint' || error.kind === 'unreachable' || error.kind === 'aborted'));

/**
 * The error that ends a run for a model call that failed for good, or undefined when only its task
 * fails: a bad key, or an endpoint still unreachable after `attempts`, fails every other call the same
 * way, so the run stops at once instead of writing thousands of identical failures. (An abort is the
 * run stopping already: its task ends, with no FatalError of its own.)
 */
export function runEndingError(error: unknown, attempts: number): FatalError | undefined {
  if (!endsRun(error)) return undefined;
  if (error instanceof FatalError) return error;
  const modelError = error as ModelError;
  if (modelError.kind === 'auth' || modelError.kind === 'endpoint') return new FatalError(describeError(error), { cause: error });
  if (modelError.kind === 'unreachable') return new FatalError(`${describeError(error)}; still unreachable after ${attempts} attempt(s)`, { cause: error });
  return undefined;
}

/** Short, one-line description of any error, safe to print (no stack, no secrets). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}

