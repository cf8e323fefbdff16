// The `openai` and `openrouter` providers: any OpenAI-compatible endpoint through the official SDK.
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { ModelError } from '../errors.js';
import { redact, safeUrl, urlSecrets } from '../redact.js';
import { countUsage, plausibleUsage } from './tokens.js';
import { createFetch } from './transport.js';
import type { ChatMessage, ChatModel, ChatRequest, ChatResponse, ModelRef, RateLimitInfo, TokenUsage } from '../chat.js';

export interface OpenAIModelOptions extends ModelRef {
  readonly apiKey: string;
  readonly baseURL?: string | undefined;
  /** Whole-call deadline in milliseconds, body included (default 120 000). */
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** PersonaGym's `api.inference.top_p`, sent with every request when set. */
  readonly topP?: number | undefined;
  /** Told once per model when the server's usage is missing or implausible and tokens are counted here instead. */
  readonly onWarning?: ((message: string) => void) | undefined;
  /** Where the key came from (`OPENAI_API_KEY`, `api.api_key`), named by an authentication failure. */
  readonly keyFrom?: string | undefined;
}

/** `1s`, `6m0s`, `59.77s`, `20ms`, `1h2m3s` (OpenAI's x-ratelimit-reset-* values) in milliseconds. */
export function parseDuration(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined) return undefined;
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  let ms = 0;
  let matched = '';
  for (const part of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    const value = Number(part[1]);
    ms += part[2] === 'ms' ? value : part[2] === 's' ? value * 1000 : part[2] === 'm' ? value * 60_000 : value * 3_600_000;
    matched += part[0];
  }
  return matched === trimmed && matched !== '' ? ms : undefined;
}

/** The x-ratelimit-* headers of a response, or undefined when it has none. */
export function rateLimitOf(headers: Headers | undefined): RateLimitInfo | undefined {
  if (headers === undefined) return undefined;
  const number = (name: string): number | undefined => {
    const value = headers.get(name);
    if (value === null || value.trim() === '') return undefined;
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  };
  const info: RateLimitInfo = {
    limitRequests: number('x-ratelimit-limit-requests'),
    remainingRequests: number('x-ratelimit-remaining-requests'),
    resetRequestsMs: parseDuration(headers.get('x-ratelimit-reset-requests')),
    limitTokens: number('x-ratelimit-limit-tokens'),
    remainingTokens: number('x-ratelimit-remaining-tokens'),
    resetTokensMs: parseDuration(headers.get('x-ratelimit-reset-tokens')),
  };
  return Object.values(info).some((value) => value !== undefined) ? info : undefined;
}

/** Parses Retry-After (seconds or HTTP date) and retry-after-ms into milliseconds. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (headers === undefined) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}


/** The innermost cause's message (fetch hides `connect ECONNREFUSED 127.0.0.1:8000` two levels down). */
function rootCause(error: Error): string {
  let current: unknown = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

/** Where a redirect points, resolved against the URL that answered and shown without credentials. */
function redirectTarget(location: string | null | undefined, from: string): string | undefined {
  if (location === null || location === undefined || location === '') return undefined;
  try {
    return safeUrl(new URL(location, from).href);
  } catch {
    return undefined;
  }
}

/** Maps anything the SDK or fetch throws to a ModelError with the right kind. */
export function toModelError(error: unknown, where: string, secrets: readonly string[], callerAborted: boolean, url = 'the endpoint', keyFrom?: string): ModelError {
  // A key, a header value or a URL's credentials must never reach a log or an error line, even when the server echoes them.
  const say = (message: string): string => redact(`${where}: ${message}`, secrets);
  if (error instanceof ModelError) return error;
  if (callerAborted || error instanceof APIUserAbortError) return new ModelError('aborted', say('request aborted'), { cause: error });
  if (error instanceof APIConnectionTimeoutError) return new ModelError('timeout', say('request timed out'), { cause: error });
  if (error instanceof APIConnectionError) {
    const root = rootCause(error);
    const kind = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/.test(root) ? 'unreachable' : 'network';
    return new ModelError(kind, say(`connection failed (${root})`), { cause: error });
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    const apiError = error as APIError<number, Headers | undefined>;
    const status = apiError.status;
    const detail = apiError.message.replace(/^\d{3}\s*/, '').slice(0, 200);
    const options = { status, retryAfterMs: retryAfterMs(apiError.headers), rateLimit: rateLimitOf(apiError.headers) };
    if (status === 401 || status === 403) return new ModelError('auth', say(`authentication failed (${status}) at ${url}: ${detail}; check ${keyFrom ?? 'the API key'}${status === 403 ? ' and its access to this model' : ''}`), options);
    // A wrong base URL or model name fails every call alike: the run stops at the first, naming the URL.
    if (status >= 300 && status < 400) {
      const target = redirectTarget(apiError.headers?.get('location'), url);
      return new ModelError('endpoint', say(`${url} answered ${status} (a redirect${target === undefined ? '' : ` to ${target}`}, not followed): set the base URL to where it points`), options);
    }
    if (status === 404 || (status === 400 && (apiError.code === 'model_not_found' || /\bmodel\b.*\b(does not exist|not found)/i.test(detail)))) {
      return new ModelError('endpoint', say(`${url} answered ${status} (${detail}): check the base URL and the model name`), options);
    }
    if (status === 429) return new ModelError('rate_limit', say(`rate limited (429): ${detail}`), options);
    if (status === 408) return new ModelError('timeout', say(`request timeout (408)`), options);
    if (status >= 500) return new ModelError('server', say(`server error (${status}): ${detail}`), options);
    return new ModelError('bad_request', say(`request rejected (${status}): ${detail}`), options);
  }
  if (error instanceof SyntaxError) return new ModelError('malformed', say(`response body is not valid JSON (${error.message})`), { cause: error });
  if (error instanceof Error && error.name === 'TimeoutError') return new ModelError('timeout', say('request timed out'), { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new ModelError('unknown', say(`request failed (${message})`), { cause: error });
}

/** The usage a completion reports, when it reports any. */
function usageOf(body: CompletionShape | undefined): TokenUsage | undefined {
  const usage = body?.usage;
  if (typeof usage !== 'object' || usage === null) return undefined;
  const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);
  return { input: count(usage.prompt_tokens), output: count(usage.completion_tokens) };
}

interface CompletionShape {
  choices?: { message?: { content?: unknown }; finish_reason?: unknown }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
}

/**
 * Creates a chat model on an OpenAI-compatible endpoint. The SDK's own retries are off (retries are the
 * pipeline's `retryWithDelay`, so they are counted and honour Retry-After), and the deadline covers the
 * whole call including the body, so a server that hangs mid-body cannot stall a task forever. The length
 * cap goes out as `max_completion_tokens` to OpenAI itself and as `max_tokens` everywhere else: OpenRouter
 * documents `max_tokens`, and Ollama and LM Studio ignore the newer name.
 *
 * @example
 * createOpenAIModel({ provider: 'openai', model: 'gpt-4o-mini', apiKey: process.env.OPENAI_API_KEY })
 */
export function createOpenAIModel(options: OpenAIModelOptions): ChatModel {
  // The SDK's timeout runs until our fetch returns, and our fetch returns only once the body is read,
  // so it is a whole-call deadline: a server that stalls mid-body times out like one that never answers.
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    fetch: createFetch(),
    maxRetries: 0,
    timeout: options.timeoutMs ?? 120_000,
    defaultHeaders: options.headers,
  });
  const where = `${options.provider}/${options.model}`;
  const said = new Set<string>();
  const sayOnce = (key: string, message: string): void => {
    if (said.has(key)) return;
    said.add(key);
    options.onWarning?.(message);
  };
  /**
   * The usage to bill: the server's, unless it sent none (some OpenAI-compatible servers and proxies
   * leave it out) or one that cannot be true of this call; then our own count, marked estimated.
   */
  const checkedUsage = async (billed: TokenUsage | undefined, request: ChatRequest, content: string): Promise<TokenUsage> => {
    if (billed !== undefined && plausibleUsage(billed, request.messages, request.maxCompletionTokens)) return billed;
    const counted = await countUsage(options.model, request.messages, content);
    const how = counted.method === 'chars/4' ? 'as characters / 4 (no tokenizer known for this model)' : `with the ${counted.method} tokenizer`;
    if (billed === undefined) sayOnce('missing', `${where}: the server reports no token usage; counting tokens ${how}, marked as estimated in usage.json`);
    else sayOnce('implausible', `${where}: the server reported an implausible usage (${billed.input} prompt and ${billed.output} completion tokens); counting tokens ${how} instead, marked as estimated in usage.json`);
    return { input: counted.input, output: counted.output, estimated: true };
  };
  const secrets = [options.apiKey, ...Object.values(options.headers ?? {}), ...urlSecrets(options.baseURL)];
  // Named in messages about a wrong endpoint, without credentials.
  const url = safeUrl(`${(options.baseURL ?? 'https://api.openai.com/v1').replace(/\/+$/, '')}/chat/completions`);
  const lengthParam = options.baseURL === undefined || /^https:\/\/api\.openai\.com\b/.test(options.baseURL) ? 'max_completion_tokens' : 'max_tokens';
  return {
    provider: options.provider,
    model: options.model,
    async complete(request: ChatRequest, signal: AbortSignal): Promise<ChatResponse> {
      let body: CompletionShape;
      let headers: Headers | undefined;
      try {
        const { temperature, maxCompletionTokens: maxTokens } = request;
        const answer = await client.chat.completions
          .create(
          {
            model: options.model,
            // Already plain {role, content} objects built for this call: no second copy per request.
            messages: request.messages as ChatMessage[],
            ...(temperature === undefined ? {} : { temperature }),
            ...(maxTokens === undefined ? {} : { [lengthParam]: maxTokens }),
            ...(options.topP === undefined ? {} : { top_p: options.topP }),
          },
          { signal },
          )
          .withResponse();
        body = answer.data;
        headers = answer.response.headers;
      } catch (error) {
        throw toModelError(error, where, secrets, signal.aborted, url, options.keyFrom);
      }
      const content = body?.choices?.[0]?.message?.content;
      const billed = usageOf(body);
      // A 200 without an answer (a filtered completion, a provider bug) is retried, but it may still be billed.
      if (typeof content !== 'string') throw new ModelError('malformed', `${where}: response has no choices[0].message.content`, billed === undefined || !plausibleUsage(billed, request.messages, request.maxCompletionTokens) ? {} : { usage: billed });
      const finish = body?.choices?.[0]?.finish_reason;
      return { content, usage: await checkedUsage(billed, request, content), rateLimit: rateLimitOf(headers), ...(typeof finish === 'string' ? { finishReason: finish } : {}) };
    },
  };
}
