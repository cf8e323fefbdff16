// Ask, check, ask again: the one loop every prompt whose answer is checked goes through.
import { Observable, concatMap, of, throwError } from 'rxjs';
import type { CallHints, ChatMessage, ChatModel, ChatRequest, ChatResponse, ModelModule, ModelOperation } from '../chat.js';

/** Makes one model call; the caller adds retries and usage accounting. */
export type PromptCall = (model: ChatModel, request: ChatRequest) => Observable<ChatResponse>;

/** An answer that passed its check, or why it did not. */
export type Checked<T, Reason extends string = string> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: Reason };

/** An answer the check turned down: its text, why, and which attempt it was (0 for the first). */
export interface Rejected<Reason extends string = string> {
  readonly answer: string;
  readonly reason: Reason;
  readonly attempt: number;
}

/** Everything one checked prompt needs. */
export interface Asking<T, Reason extends string = string> {
  readonly module: ModelModule;
  readonly model: ChatModel;
  /** The first attempt's temperature; each re-ask goes 0.1 warmer from it (or from `baseTemperature`), at most 2. */
  readonly temperature?: number | undefined;
  readonly baseTemperature: number;
  readonly maxCompletionTokens?: number | undefined;
  readonly hints?: CallHints | undefined;
  /** Rejected answers allowed: after the last, `exhausted` decides. */
  readonly retries: number;
  /** What the first attempt is counted as (default: the module's first operation), and what a re-ask is. */
  readonly firstOperation?: ModelOperation | undefined;
  readonly retryOperation: ModelOperation;
  /** The messages of an attempt: the first, or a re-ask after `rejected`. */
  messages(rejected: Rejected<Reason> | undefined): readonly ChatMessage[];
  /** Checks an answer (`response` has its finish reason, usage...). */
  check(content: string, attempt: number, response: ChatResponse): Checked<T, Reason>;
  /** Told about each rejected answer (to count it, to keep it). */
  onRejected?(rejected: Rejected<Reason>): void;
  /** What happens after the last rejected answer: an error, or a way out. */
  exhausted(rejected: Rejected<Reason>): Observable<T>;
}

/**
 * Asks, checks, and asks again with what `messages` makes of the rejected answer, up to `retries` times,
 * a little warmer each time; then `exhausted` decides. Model errors pass through (the caller's `call`
 * retries them). The user simulator (its guards), the distractor, style transfer and query generation
 * all ask this way.
 */
export function ask<T, Reason extends string = string>(asking: Asking<T, Reason>, call: PromptCall): Observable<T> {
  const attempt = (n: number, rejected: Rejected<Reason> | undefined): Observable<T> =>
    call(asking.model, {
      module: asking.module,
      ...(n === 0 ? (asking.firstOperation === undefined ? {} : { operation: asking.firstOperation }) : { operation: asking.retryOperation }),
      messages: asking.messages(rejected),
      temperature: n === 0 ? asking.temperature : Math.min(2, (asking.temperature ?? asking.baseTemperature) + 0.1 * n),
      maxCompletionTokens: asking.maxCompletionTokens,
      ...(asking.hints === undefined ? {} : { hints: asking.hints }),
    }).pipe(
      concatMap((response) => {
        const checked = asking.check(response.content, n, response);
        if (checked.ok) return of(checked.value);
        const turnedDown: Rejected<Reason> = { answer: response.content, reason: checked.reason, attempt: n };
        asking.onRejected?.(turnedDown);
        return n < asking.retries ? attempt(n + 1, turnedDown) : asking.exhausted(turnedDown);
      }),
    );
  return attempt(0, undefined);
}

/** Shared settings of a prompt that a model answers with JSON. */
export interface PromptModel {
  readonly model: ChatModel;
  readonly temperature?: number | undefined;
  readonly maxCompletionTokens?: number | undefined;
  /** Answers the validation may reject before giving up. */
  readonly validationRetries: number;
}

/** What askChecked asks: the prompt, for which module, and what a re-ask says after the reason. */
export interface CheckedPrompt {
  readonly module: 'style_transfer' | 'query_generation' | 'distractor' | 'judge';
  readonly prompt: string;
  readonly hints: CallHints;
  /** The re-ask after `That answer was rejected (reason).` Default: `Answer again with the JSON object only.` */
  readonly again?: string;
}

/** A model's answers were rejected every time. */
export class RejectedAnswerError extends Error {
  override readonly name = 'RejectedAnswerError';
}

/**
 * `ask` for a one-message prompt answered with JSON: a re-ask shows the rejected answer and the reason;
 * after `validationRetries` rejections it errors with a RejectedAnswerError naming the last reason.
 */
export function askChecked<T>(settings: PromptModel, asked: CheckedPrompt, call: PromptCall, check: (content: string, attempt: number) => Checked<T>): Observable<T> {
  const again = asked.again ?? 'Answer again with the JSON object only.';
  return ask<T>(
    {
      module: asked.module,
      model: settings.model,
      temperature: settings.temperature,
      baseTemperature: 0.7,
      maxCompletionTokens: settings.maxCompletionTokens,
      hints: asked.hints,
      retries: settings.validationRetries,
      retryOperation: 'validation_retry',
      messages: (rejected) => [
        { role: 'user', content: asked.prompt },
        ...(rejected === undefined
          ? []
          : [
              { role: 'assistant' as const, content: rejected.answer },
              { role: 'user' as const, content: `That answer was rejected (${rejected.reason}). ${again}` },
            ]),
      ],
      check,
      exhausted: (rejected) => throwError(() => new RejectedAnswerError(`${asked.module} answer rejected ${rejected.attempt + 1} time(s), last: ${rejected.reason}`)),
    },
    call,
  );
}
