// Chat models as every caller sees them: messages, requests, responses, usage; the one interface each provider implements.

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

/** Which part of the pipeline makes a call; PersonaGym's token_usage is grouped by it. */
export type ModelModule = 'assistant' | 'user_simulator' | 'distractor' | 'style_transfer' | 'query_generation' | 'judge';

/**
 * Structured facts about the call. Real providers ignore them; the `sim` provider uses them to answer
 * plausibly without parsing prompts.
 */
export interface CallHints {
  readonly persona?: Readonly<Record<string, unknown>>;
  readonly turn?: number;
  readonly targetTurns?: number;
  readonly minTurns?: number;
  readonly stopToken?: string;
  readonly originalQuery?: string;
  /** A distractor call: the text to noise, the layer and the strategies the prompt asks for. */
  readonly distractor?: { readonly text: string; readonly layer: string; readonly strategies: readonly string[] };
  /** A style-transfer call: the query and the length asked for. */
  readonly styleTransfer?: { readonly query: string; readonly targetLength: string };
  /** A query-generation call: how many queries, and those already used. */
  readonly queryGeneration?: { readonly count: number; readonly avoid: readonly string[] };
  /** A judge call: what the deterministic checks found, and a key to draw sim's review from. */
  readonly judge?: { readonly checks: readonly string[]; readonly key: string };
}

/** What a call is for within its module; usage.json breaks tokens down by it (`by_operation`). */
export type ModelOperation = 'reply' | 'follow_up' | 'guard_retry' | 'noise' | 'rewrite' | 'generate' | 'review' | 'validation_retry';

export interface ChatRequest {
  readonly module: ModelModule;
  /** Default: the module's first operation (assistant `reply`, user_simulator `follow_up`, ...). */
  readonly operation?: ModelOperation;
  readonly messages: readonly ChatMessage[];
  readonly temperature?: number;
  readonly maxCompletionTokens?: number;
  readonly hints?: CallHints;
  /** 1 for the first attempt of this call, 2 for its first retry, and so on. */
  readonly attempt?: number;
}

export interface TokenUsage {
  readonly input: number;
  readonly output: number;
  /** Counted by us, not reported by the provider (it sent none, or an implausible one). */
  readonly estimated?: boolean;
}

/** What a provider's x-ratelimit-* headers said (OpenAI's names), when it sent them. */
export interface RateLimitInfo {
  readonly limitRequests?: number | undefined;
  readonly remainingRequests?: number | undefined;
  readonly resetRequestsMs?: number | undefined;
  readonly limitTokens?: number | undefined;
  readonly remainingTokens?: number | undefined;
  readonly resetTokensMs?: number | undefined;
}

/**
 * Told about every call the provider billed: answered calls, and failed attempts whose response still
 * carried usage (`failed`: an empty or unusable answer that was retried).
 */
/** A retried call, as --verbose tells it: which model, which retry (1 for the first), and the wait before it. */
export interface RetryNote {
  readonly model: ModelRef;
  readonly retry: number;
  readonly delayMs: number;
}

/** Told about every retried call: the module, the error it retries after, and (from retryingCall) the note. */
export type RetryListener = (module: ModelModule, error: unknown, note?: RetryNote) => void;

/** One attempt of a model call, as `limited` saw it (--verbose prints one line of it). */
export interface CallReport {
  readonly model: ModelRef;
  readonly module: ModelModule;
  readonly operation: ModelOperation | undefined;
  /** 1 for the first attempt, 2 for its first retry, ... */
  readonly attempt: number;
  /** Milliseconds waited for the model's limiter (rate limits, the adaptive limit, pauses, the breaker, shared limits). */
  readonly waitedMs: number;
  /** Milliseconds of the call itself, from the request to the whole answer. */
  readonly latencyMs: number;
  /** The answer's tokens, when it came. */
  readonly usage?: TokenUsage | undefined;
  /** What failed, when it did. */
  readonly error?: unknown;
}

export type CallListener = (call: CallReport) => void;

export type UsageListener = (module: ModelModule, model: ModelRef, usage: TokenUsage, call: { readonly operation: ModelOperation; readonly failed: boolean }) => void;

export interface ChatResponse {
  readonly content: string;
  readonly usage: TokenUsage;
  /**
   * Why generation stopped, as OpenAI names it: `stop` (the model finished), `length` (cut at the token
   * limit: the text is truncated), `content_filter`, ...; undefined when the provider did not say.
   */
  readonly finishReason?: string | undefined;
  readonly rateLimit?: RateLimitInfo | undefined;
}

/** Where a model lives: what `metadata.assistant_model` records. */
export interface ModelRef {
  readonly provider: string;
  readonly model: string;
}

/**
 * A chat model. `complete` must honour `signal` (abort the request, reject with an aborted ModelError)
 * and reject with a `ModelError` for anything the provider got wrong.
 */
export interface ChatModel extends ModelRef {
  complete(request: ChatRequest, signal: AbortSignal): Promise<ChatResponse>;
}
