// Shared by every prompt that asks a model to rewrite or write a user message (distractor, style
// transfer, query generation): the answer must be the message itself, not a refusal or a report.
import { Observable, concatMap, of, throwError } from 'rxjs';
import { FatalError, ModelError } from '../errors.js';
import type { CallHints, ChatMessage, ChatModel, ChatRequest, ChatResponse } from './types.js';

/** Makes one model call; the caller adds retries and usage accounting. */
export type PromptCall = (model: ChatModel, request: ChatRequest) => Observable<ChatResponse>;

/**
 * A model declining: what it says it cannot do is help, rewrite, comply... A user's own "I can't get
 * docker to start" or "I'm sorry to bother you" is a message, not a refusal.
 */
const CANNOT = String.raw`(?:can(?:no|['’])t|won['’]t|am (?:not able|unable) to|['’]m (?:not able|unable) to)`;
const REFUSAL = new RegExp(
  String.raw`^(?:(?:i['’]?m sorry|sorry|i apologi[sz]e)[,.!]?\s+(?:but\s+)?(?:i\s*${CANNOT}|i do not|i don['’]t|that(?:['’]s| is) not something|this is not something)|i\s*${CANNOT}\s+(?:help|assist|comply|do that|provide|fulfil+|create|rewrite|write|complete|generate|produce)\b|as an ai\b)`,
  'i',
);
/** Openings a model puts before its answer ("Sure, ..."); a problem only when the user's text did not open so. */
const CHATTER = /^(?:sure|certainly|of course|absolutely)[,!.]/i;
/**
 * A wrapper or a report instead of the message: at the start ("Here's...", "I've rewritten..."), where a
 * user's own "I added an index" never trips it, or a note in parentheses about what was applied.
 */
const EXPLANATION =
  /^(?:(?:sure|certainly|of course|okay|ok)[,!.]?\s+)?here(?:['’]s| is) (?:the|a|an|your) (?:\w+ )?(?:rewrite|rewritten|noisy|adapted|revised|modified|rephrased|version|message|query|request)\b|^the (?:noisy|rewritten|adapted) (?:version|message|query)|^i(?:['’]ve| have)? (?:rewritten|rewrote)\b|^i(?:['’]ve| have)? (?:applied|made)\b[^\n]*\b(?:noise|noisy|strateg\w*|typos?|changes?|version|rewrite)\b|\([^()]*\b(?:applied|strateg\w*|noise|noisy)\b[^()]*\)/i;
const LABEL = /^(?:noisy(?: version| text)?|rewritten(?: message)?|output|message)\s*:\s*/i;
export const normalise = (text: string): string => text.toLowerCase().replace(/\s+/g, ' ').trim();

/** Strips a code fence, one label and one pair of surrounding quotes. */
export function cleanRewrite(text: string): string {
  let out = text.trim().replace(/^```[a-z]*\s*([\s\S]*?)\s*```$/i, '$1').trim();
  out = out.replace(LABEL, '').trim();
  // One pair of quotes around the whole text, and only when the text inside has none of that kind:
  // `"let" vs "const"` is a message with quotes in it, not a quoted message.
  const pair = /^(["'“])([\s\S]*)(["'”])$/.exec(out);
  if (pair !== null) {
    const [, open, inner = '', close] = pair;
    const matching = open === close || (open === '“' && close === '”');
    if (matching && !/["“”]/.test(open === "'" ? inner.replace(/[^']/g, '') : inner)) out = inner.trim();
  }
  return out;
}


/**
 * Why `text` is not a usable user message (a refusal, or an explanation instead of the message), or
 * undefined. `input` is the text that was rewritten, when there was one: an opening "Sure," is the
 * model's own chatter unless the input opened that way too.
 */
export function rewriteProblem(text: string, input?: string): string | undefined {
  if (REFUSAL.test(text)) return 'a refusal';
  if (EXPLANATION.test(text)) return 'an explanation instead of the message';
  if (CHATTER.test(text) && !(input !== undefined && CHATTER.test(input.trim()))) return 'an explanation instead of the message';
  return undefined;
}

/** The JSON object in an answer (a code fence and text around it tolerated), or undefined. */
export function jsonObjectIn(content: string): Record<string, unknown> | undefined {
  const body = content.trim().replace(/^```[a-z]*\s*([\s\S]*?)\s*```$/i, '$1').trim();
  const start = body.indexOf('{');
  const end = body.lastIndexOf('}');
  if (start < 0 || end <= start) return undefined;
  try {
    const parsed: unknown = JSON.parse(body.slice(start, end + 1));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** PersonaGym's domains and scenarios; anything else becomes `others`. */
export const DOMAINS = ['general', 'writing', 'coding', 'data', 'product', 'design', 'marketing', 'sales', 'customer_support', 'bizdev', 'ops', 'career', 'education', 'finance', 'legal', 'health', 'travel', 'shopping', 'food', 'communication', 'productivity', 'life_admin', 'research', 'news', 'entertainment', 'others'] as const;
export const SCENARIOS = ['in_a_rush', 'work_task', 'learning', 'decision_making', 'troubleshooting', 'brainstorming', 'planning', 'casual', 'others'] as const;

export const oneOf = (value: unknown, allowed: readonly string[], missing: string): string => {
  if (typeof value !== 'string' || value.trim() === '') return missing;
  const normalised = value.trim().toLowerCase();
  return allowed.includes(normalised) ? normalised : 'others';
};

/** Shared settings of a prompt that a model answers with JSON. */
export interface PromptModel {
  readonly model: ChatModel;
  readonly temperature?: number | undefined;
  readonly maxCompletionTokens?: number | undefined;
  /** Answers the validation may reject before giving up. */
  readonly validationRetries: number;
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** What askChecked asks: the prompt, for which module, and what a re-ask says after the reason. */
export interface CheckedPrompt {
  readonly module: 'style_transfer' | 'query_generation' | 'distractor';
  readonly prompt: string;
  readonly hints: CallHints;
  /** The re-ask after `That answer was rejected (reason).` Default: `Answer again with the JSON object only.` */
  readonly again?: string;
}

/**
 * Asks, checks, and asks again with the rejected answer and the reason, up to `validationRetries`
 * times, a little warmer each time; then errors with a RejectedAnswerError naming the last reason.
 * `check` gets the answer and its attempt number (0 for the first). Model errors pass through (the
 * caller's `call` retries them). Style transfer, query generation and the semantic distractor ask this way.
 */
export function askChecked<T>(settings: PromptModel, asked: CheckedPrompt, call: PromptCall, check: (content: string, attempt: number) => Checked<T>): Observable<T> {
  const { module, prompt, hints } = asked;
  const again = asked.again ?? 'Answer again with the JSON object only.';
  const ask = (attempt: number, previous: { answer: string; reason: string } | undefined): Observable<T> => {
    const messages: ChatMessage[] = [{ role: 'user', content: prompt }];
    if (previous !== undefined) {
      messages.push({ role: 'assistant', content: previous.answer }, { role: 'user', content: `That answer was rejected (${previous.reason}). ${again}` });
    }
    return call(settings.model, {
      module,
      ...(attempt === 0 ? {} : { operation: 'validation_retry' as const }),
      messages,
      temperature: attempt === 0 ? settings.temperature : Math.min(2, (settings.temperature ?? 0.7) + 0.1 * attempt),
      maxCompletionTokens: settings.maxCompletionTokens,
      hints,
    }).pipe(
      concatMap((response) => {
        const checked = check(response.content, attempt);
        if (checked.ok) return of(checked.value);
        if (attempt < settings.validationRetries) return ask(attempt + 1, { answer: response.content, reason: checked.reason });
        return throwError(() => new RejectedAnswerError(`${module} answer rejected ${attempt + 1} time(s), last: ${checked.reason}`));
      }),
    );
  };
  return ask(0, undefined);
}

/** A model's answers were rejected every time. */
export class RejectedAnswerError extends Error {
  override readonly name = 'RejectedAnswerError';
}

/** Errors that must end the run rather than one step: a bad key, an endpoint that stays unreachable, an abort. */
export const isRunError = (error: unknown): boolean => error instanceof FatalError || (error instanceof ModelError && (error.kind === 'auth' || error.kind === 'unreachable' || error.kind === 'aborted'));

