// Model calls as cold observables: each subscription makes a fresh request and unsubscribing aborts it.
import { Observable } from 'rxjs';
import type { ChatModel, ChatRequest, ChatResponse } from '../chat.js';

/**
 * Wraps `model.complete` in the `fromFetch` pattern: nothing happens until subscription, every
 * subscription (so every `retry`) calls again, and unsubscribing aborts the in-flight request.
 *
 * @example
 * callModel(model, { module: 'assistant', messages }).pipe(retryWithDelay({ maxRetries: 3, delayMs: 1000 }))
 */
export function callModel(model: ChatModel, request: ChatRequest): Observable<ChatResponse> {
  return new Observable<ChatResponse>((subscriber) => {
    const controller = new AbortController();
    let settled = false;
    model.complete(request, controller.signal).then(
      (response) => {
        settled = true;
        subscriber.next(response);
        subscriber.complete();
      },
      (error: unknown) => {
        settled = true;
        subscriber.error(error);
      },
    );
    return () => {
      if (!settled) controller.abort();
    };
  });
}
