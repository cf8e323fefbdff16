// One model call as a line of a batch input file, and a line of its output or error file back as the call's answer.
import { createHash } from 'node:crypto';
import type { ChatRequest, ChatResponse, TokenUsage } from '../chat.js';
import { ModelError } from '../errors.js';

/** Where the lines of a model go and how its requests are shaped (what `createOpenAIModel` sends online). */
export interface LineTarget {
  readonly provider: string;
  readonly model: string;
  /** `max_completion_tokens` for OpenAI itself, `max_tokens` elsewhere (as online). */
  readonly lengthParam: 'max_completion_tokens' | 'max_tokens';
  readonly topP?: number | undefined;
}

/** The chat completion body of a request, as the online provider would POST it. */
export function bodyOf(target: LineTarget, request: ChatRequest): Record<string, unknown> {
  const { temperature, maxCompletionTokens } = request;
  return {
    model: target.model,
    messages: request.messages,
    ...(temperature === undefined ? {} : { temperature }),
    ...(maxCompletionTokens === undefined ? {} : { [target.lengthParam]: maxCompletionTokens }),
    ...(target.topP === undefined ? {} : { top_p: target.topP }),
  };
}

/**
 * The identity of a call: a digest of everything the answer may depend on (model, module, operation,
 * attempt, body and the hints sim answers from). A resumed run replays its conversations, and each call
 * it makes again gets the same digest, so it finds the answer already paid for instead of a new request.
 */
export function digestOf(target: LineTarget, request: ChatRequest, body: Record<string, unknown>): string {
  const what = JSON.stringify([target.provider, target.model, request.module, request.operation ?? null, request.attempt ?? 1, body, request.hints ?? null]);
  return createHash('sha256').update(what).digest('hex').slice(0, 24);
}

/** The JSONL line of a request (no newline). */
export const lineOf = (customId: string, body: Record<string, unknown>): string => JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body });

/** What a line of an output or error file says about one request: its answer, or why there is none. */
export type LineResult = { readonly ok: true; readonly response: ChatResponse } | { readonly ok: false; readonly error: ModelError };

interface OutputLine {
  custom_id?: unknown;
  response?: { status_code?: unknown; body?: unknown } | null;
  error?: { code?: unknown; message?: unknown } | null;
}

interface CompletionShape {
  choices?: { message?: { content?: unknown }; finish_reason?: unknown }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
  error?: { message?: unknown };
}

/** The custom id of an output or error line, or undefined when the line is not one. */
export function customIdOfLine(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as OutputLine;
    return typeof parsed.custom_id === 'string' ? parsed.custom_id : undefined;
  } catch {
    return undefined;
  }
}

function usageOf(body: CompletionShape | undefined): TokenUsage | undefined {
  const usage = body?.usage;
  if (typeof usage !== 'object' || usage === null) return undefined;
  const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);
  return { input: count(usage.prompt_tokens), output: count(usage.completion_tokens) };
}

/** The error kind of an HTTP status, as online calls map it. */
function kindOf(status: number): ModelError['kind'] {
  if (status === 401 || status === 403) return 'auth';
  if (status === 429) return 'rate_limit';
  if (status === 408) return 'timeout';
  if (status >= 500) return 'server';
  return 'bad_request';
}

/**
 * Reads one line of an output or error file (`where` names the model in messages). A 200 with an answer is
 * the call's response; a 200 without one is `malformed` (billed: its usage is kept, as online); another
 * status maps as an online call's would; a request without a response (expired, or in a batch that
 * failed) is a transient error, so it goes into the next round under the call's retry rules.
 */
export function resultOf(text: string, where: string): LineResult {
  let parsed: OutputLine;
  try {
    parsed = JSON.parse(text) as OutputLine;
  } catch (error) {
    return { ok: false, error: new ModelError('malformed', `${where}: batch output line is not JSON`, { cause: error }) };
  }
  const response = parsed.response;
  if (response === null || response === undefined || typeof response.status_code !== 'number') {
    const code = typeof parsed.error?.code === 'string' ? parsed.error.code : 'no_response';
    const message = typeof parsed.error?.message === 'string' ? parsed.error.message : 'the batch gave no response';
    return { ok: false, error: new ModelError(code === 'batch_expired' ? 'timeout' : 'server', `${where}: batch request ${code}: ${message.slice(0, 200)}`) };
  }
  const body = response.body as CompletionShape | undefined;
  const status = response.status_code;
  if (status !== 200) {
    const detail = typeof body?.error?.message === 'string' ? body.error.message.slice(0, 200) : 'no detail';
    return { ok: false, error: new ModelError(kindOf(status), `${where}: batch request failed (${status}): ${detail}`, { status }) };
  }
  const billed = usageOf(body);
  const content = body?.choices?.[0]?.message?.content;
  if (typeof content !== 'string') return { ok: false, error: new ModelError('malformed', `${where}: batch response has no choices[0].message.content`, billed === undefined ? {} : { usage: billed }) };
  const finish = body?.choices?.[0]?.finish_reason;
  return { ok: true, response: { content, usage: billed ?? { input: 0, output: 0 }, ...(typeof finish === 'string' ? { finishReason: finish } : {}) } };
}

/** The line written for a request the provider left without any line (an expired batch, a batch that failed as a whole). */
export const missingLine = (customId: string, code: 'batch_expired' | 'batch_failed' | 'batch_cancelled', message: string): string => JSON.stringify({ custom_id: customId, response: null, error: { code, message } });
