// retryingCall: one model call as the pipeline makes it — cold, retried with backoff, and every billed token counted.
import { catchError, defer, map, tap, throwError, type Observable, type SchedulerLike } from 'rxjs';
import { ModelError, runEndingError } from '../errors.js';
import { callModel } from '../models/call.js';
import type { ChatModel, ChatRequest, ChatResponse, ModelModule, ModelOperation, RetryListener, UsageListener } from '../chat.js';
import type { Stopping } from '../limits/stop.js';
import { retryWithDelay } from './retryWithDelay.js';

export interface RetryingCallOptions {
  /** Retries after the first attempt (PersonaGym's `max_retries`). */
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  /** Called on every retried attempt (for statistics, and --verbose: which model, which retry, how long a wait). */
  readonly onRetry?: RetryListener;
  /** Told about every billed call: answered ones and failed attempts whose response carried usage. */
  readonly onUsage?: UsageListener;
  readonly scheduler?: SchedulerLike;
  /** Lends the caller's concurrency slot while a retry waits (see retryWithDelay's `lend`). */
  readonly lend?: () => () => void;
  /** The run stopping: retry waits past its deadline end at once (see retryWithDelay's `stopping`). */
  readonly stopping?: Stopping;
}

/** The operation a request is counted under when it does not say. */
const FIRST_OPERATION: Readonly<Record<ModelModule, ModelOperation>> = {
  assistant: 'reply',
  user_simulator: 'follow_up',
  distractor: 'noise',
  style_transfer: 'rewrite',
  query_generation: 'generate',
  judge: 'review',
};

export const operationOf = (request: ChatRequest): ModelOperation => request.operation ?? FIRST_OPERATION[request.module];

/**
 * Makes `(model, request) => Observable<ChatResponse>` calls: nothing happens until subscription, a
 * transient failure is retried at this call only (a retry never re-bills earlier turns), an empty
 * assistant reply counts as a malformed answer, and a bad key or a dead endpoint becomes the run's
 * FatalError. Failed attempts the provider still billed (a 200 with usage but no usable answer) are
 * reported to `onUsage` with `failed: true`, so the run's cost is what the provider will charge.
 *
 * @example
 * const call = retryingCall({ maxRetries: 3, retryDelayMs: 1000, onUsage: (module, model, usage) => totals.call(module, model, usage) });
 * call(model, { module: 'assistant', messages }).subscribe((response) => console.log(response.content));
 */
export function retryingCall(options: RetryingCallOptions) {
  return (model: ChatModel, request: ChatRequest): Observable<ChatResponse> =>
    defer(() => {
      // Per subscription: a second subscription starts again at attempt 1.
      let attempt = 1;
      const ref = { provider: model.provider, model: model.model };
      const operation = operationOf(request);
      return defer(() => callModel(model, { ...request, attempt })).pipe(
        map((response) => {
          if (request.module === 'assistant' && response.content.trim() === '') {
            throw new ModelError('malformed', `${model.provider}/${model.model}: empty assistant reply`, { usage: response.usage });
          }
          return response;
        }),
        tap({
          error: (error: unknown) => {
            if (error instanceof ModelError && error.usage !== undefined) options.onUsage?.(request.module, ref, error.usage, { operation, failed: true });
          },
        }),
        retryWithDelay({
          maxRetries: options.maxRetries,
          delayMs: options.retryDelayMs,
          scheduler: options.scheduler,
          lend: options.lend,
          stopping: options.stopping,
          onRetry: (error, retry, delayMs) => {
            attempt += 1;
            options.onRetry?.(request.module, error, { model: ref, retry, delayMs });
          },
        }),
        tap((response) => options.onUsage?.(request.module, ref, response.usage, { operation, failed: false })),
        // A bad key or a dead endpoint ends the run; the callers pass FatalError on.
        catchError((error: unknown) => throwError(() => runEndingError(error, attempt) ?? error)),
      );
    });
}
