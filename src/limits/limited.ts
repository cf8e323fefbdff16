// limited: a ChatModel whose every call first takes a permit from its model's limiter.
import type { Subscription } from 'rxjs';
import { ModelError } from '../errors.js';
import type { CallListener, ChatModel, ChatRequest, ChatResponse } from '../chat.js';
import { waitText, type ModelLimiter, type Permit } from './limiter.js';
import { admitShared, type SharedLimits } from './shared.js';

/** Prompt tokens estimated from characters (~4 a token) plus the completion budget. */
export function estimateTokens(request: ChatRequest): number {
  let chars = 0;
  for (const message of request.messages) chars += message.content.length;
  return Math.ceil(chars / 4) + (request.maxCompletionTokens ?? 256);
}

/** A failed call that says the provider is over capacity: a 429, or a 503/529 "overloaded". The limit shrinks. */
export const isOverload = (error: unknown): boolean => error instanceof ModelError && (error.kind === 'rate_limit' || (error.kind === 'server' && (error.status === 503 || error.status === 529)));

/** A failed call that says the model is failing (5xx, timeouts, 429s): the breaker counts it. */
export const isFailing = (error: unknown): boolean => error instanceof ModelError && (error.kind === 'rate_limit' || error.kind === 'server' || error.kind === 'timeout');

/**
 * How long a refusal asks to wait: its Retry-After, or the reset of a limit its headers say is used up.
 */
function askedWait(error: ModelError): number | undefined {
  const info = error.rateLimit;
  const resets = [error.retryAfterMs, info?.remainingRequests === 0 ? info.resetRequestsMs : undefined, info?.remainingTokens === 0 ? info.resetTokensMs : undefined].filter((ms): ms is number => ms !== undefined);
  return resets.length === 0 ? undefined : Math.max(...resets);
}

/** Waits in line for a permit; an abort gives up the place (a permit granted meanwhile never reaches the model). */
function waitForPermit(limiter: ModelLimiter, tokens: number, signal: AbortSignal): Promise<Permit> {
  return new Promise<Permit>((resolve, reject) => {
    if (signal.aborted) {
      reject(new ModelError('aborted', 'request aborted'));
      return;
    }
    const subscription: Subscription = limiter.acquire(tokens).subscribe({
      next: (permit) => {
        signal.removeEventListener('abort', onAbort);
        resolve(permit);
      },
      error: (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    });
    function onAbort(): void {
      subscription.unsubscribe();
      reject(new ModelError('aborted', 'request aborted'));
    }
    if (!subscription.closed) signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A ChatModel whose every call first takes a permit from `limiter` and gives it back with what happened,
 * so rate limits, the adaptive limit, pauses and the breaker apply to all of its callers. With `shared`
 * (workers on a queue), a call holding its permit then waits for the limits all processes share, and
 * goes the moment they admit it, so calls leave spaced as the shared buckets spaced them. `onCall` is
 * told about every attempt: how long it waited for admission, how long the call took, and how it ended.
 */
export function limited(model: ChatModel, limiter: ModelLimiter, shared?: SharedLimits, onCall?: CallListener): ChatModel {
  const ref = { provider: model.provider, model: model.model };
  const tell = (request: ChatRequest, times: { readonly asked: number; readonly sent: number }, outcome: { readonly usage?: ChatResponse['usage']; readonly error?: unknown }): void => {
    if (onCall === undefined) return;
    const now = performance.now();
    onCall({ model: ref, module: request.module, operation: request.operation, attempt: request.attempt ?? 1, waitedMs: times.sent - times.asked, latencyMs: now - times.sent, ...outcome });
  };
  const call = async (request: ChatRequest, signal: AbortSignal, permit: Permit, tokens: number, askedAt: number): Promise<ChatResponse> => {
    let admitted = false;
    let sent = performance.now();
    try {
      if (shared !== undefined) await admitShared(shared, tokens, signal);
      admitted = true;
      sent = performance.now();
      const response = await model.complete(request, signal);
      tell(request, { asked: askedAt, sent }, { usage: response.usage });
      const result = { ok: true, tokens: response.usage.input + response.usage.output, rateLimit: response.rateLimit };
      permit.release(result);
      shared?.report(result, tokens);
      return response;
    } catch (error) {
      tell(request, { asked: askedAt, sent }, { error });
      const known = error instanceof ModelError ? error : undefined;
      const asked = known === undefined ? undefined : askedWait(known);
      if (known !== undefined && asked !== undefined && asked > limiter.maxWaitMs) {
        // An absurd wait (an hour, a date next week, `100h`) is not waited out: the call fails, and its
        // figures pause nothing. A model that only answers so soon opens the breaker, which ends the run.
        const refused = { ok: false, overloaded: isOverload(error), failing: isFailing(error) };
        permit.release(refused);
        if (admitted) shared?.report(refused, tokens);
        throw new ModelError(known.kind, `${known.message}; it asks to wait ${waitText(asked)}, over personaflow.max_wait_s (${waitText(limiter.maxWaitMs)}): the call fails instead of stalling the run`, { ...(known.status === undefined ? {} : { status: known.status }), ...(known.usage === undefined ? {} : { usage: known.usage }), permanent: true, cause: known });
      }
      const result = { ok: false, overloaded: isOverload(error), failing: isFailing(error), retryAfterMs: known?.retryAfterMs, rateLimit: known?.rateLimit };
      permit.release(result);
      if (admitted) shared?.report(result, tokens);
      throw error;
    }
  };
  return {
    provider: model.provider,
    model: model.model,
    complete: async (request, signal) => {
      const tokens = estimateTokens(request);
      const asked = performance.now();
      return call(request, signal, limiter.tryAcquire(tokens) ?? (await waitForPermit(limiter, tokens, signal)), tokens, asked);
    },
  };
}
