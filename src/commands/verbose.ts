// --verbose: one stderr line per model call attempt and per retry, for when a run misbehaves; never a key, a header or a URL's secrets.
import type { CallReport, ModelModule, RetryNote } from '../chat.js';
import { ModelError, describeError } from '../errors.js';
import { operationOf } from '../operators/retryingCall.js';
import { printable } from '../redact.js';

/** Who makes a call, in the words of the conversation. */
const ROLE: Readonly<Record<ModelModule, string>> = {
  assistant: 'assistant',
  user_simulator: 'user',
  distractor: 'distractor',
  style_transfer: 'style-transfer',
  query_generation: 'query-generation',
  judge: 'judge',
};

const ms = (value: number): string => (value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`);

/**
 * What went wrong, as a verbose line says it: the status or kind, and the error's first line. Model
 * errors are made without secrets (openai.ts redacts the key, the headers and the URL's credentials from
 * what a server echoes); control characters are escaped, and the text is cut at 300 characters.
 */
function failure(error: unknown): string {
  const what = error instanceof ModelError ? `${error.status === undefined ? '' : `${error.status} `}${error.kind}` : 'error';
  const text = printable(describeError(error));
  return `${what}: ${text.length > 300 ? `${text.slice(0, 299)}…` : text}`;
}

/**
 * `call assistant openai/gpt-4o-mini (reply, attempt 1): ok in 812 ms, 340+42 tokens` or
 * `call user openai/gpt-4o-mini (follow_up, attempt 2): waited 1.20 s for the limiter; failed in 35 ms: 500 server: ...`.
 */
export function callLine(call: CallReport): string {
  const head = `call ${ROLE[call.module]} ${call.model.provider}/${call.model.model} (${operationOf({ module: call.module, operation: call.operation, messages: [] })}, attempt ${call.attempt}): `;
  const waited = call.waitedMs >= 1 ? `waited ${ms(call.waitedMs)} for the limiter; ` : '';
  if (call.error !== undefined) return `${head}${waited}failed in ${ms(call.latencyMs)}: ${failure(call.error)}`;
  const usage = call.usage === undefined ? '' : `, ${call.usage.input}+${call.usage.output} tokens${call.usage.estimated === true ? ' (estimated)' : ''}`;
  return `${head}${waited}ok in ${ms(call.latencyMs)}${usage}`;
}

/** `retry 1 of 3 of a user call to openai/gpt-4o-mini in 1.20 s, after 500 server: ...`. */
export function retryLine(module: ModelModule, error: unknown, note: RetryNote | undefined, maxRetries: number): string {
  const model = note === undefined ? '' : ` to ${note.model.provider}/${note.model.model}`;
  const when = note === undefined ? 'retry ' : `retry ${note.retry} of ${maxRetries} `;
  return `${when}of a${ROLE[module].startsWith('a') ? 'n' : ''} ${ROLE[module]} call${model}${note === undefined ? '' : ` in ${ms(note.delayMs)}`}, after ${failure(error)}`;
}
