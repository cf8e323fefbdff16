// Scripted judges for the judge's tests: well-formed reviews on demand, and a chat model answering from a list.
import type { ChatModel, ChatRequest, ChatResponse, TokenUsage } from '../../src/chat.js';
import { ModelError } from '../../src/errors.js';
import { RUBRIC } from '../../src/prompts/judge.js';

/** A judge's answer: every criterion at `score` (or as `scores` says), with `tags` and a verdict. */
export function review(options: { score?: number; scores?: Record<string, number>; tags?: string[]; verdict?: 'accept' | 'reject' } = {}): string {
  const side = (criteria: readonly { name: string }[], prefix: string) =>
    Object.fromEntries(criteria.map(({ name }) => [name, { reason: `${name} reason`, score: options.scores?.[`${prefix}.${name}`] ?? options.score ?? 3 }]));
  return JSON.stringify({ user: side(RUBRIC.user, 'user'), assistant: side(RUBRIC.assistant, 'assistant'), tags: options.tags ?? [], verdict: options.verdict ?? 'accept', verdict_reason: 'as scored' });
}

/** One scripted step: an answer, an error to fail with, or an answer that comes when a promise settles. */
export type Step = string | Error | (() => Promise<string>);

/**
 * A chat model answering from a list (the last step repeats), each answer with its own usage; records
 * what it was asked, honours the abort signal as providers must, and counts aborts.
 */
export class ListModel implements ChatModel {
  readonly provider = 'scripted';
  readonly requests: ChatRequest[] = [];
  aborts = 0;
  /** Calls under way, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;

  constructor(
    private readonly steps: readonly Step[] | ((request: ChatRequest, n: number) => Step),
    readonly model = 'judge-1',
  ) {}

  /** The usage of answer n (1-based): distinct per answer, so every token can be traced. */
  static usageOf(n: number): TokenUsage {
    return { input: 1000 + n, output: 100 + n };
  }

  complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatResponse> {
    this.requests.push(request);
    const n = this.requests.length;
    const step = typeof this.steps === 'function' ? this.steps(request, n) : this.steps[Math.min(n, this.steps.length) - 1];
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<ChatResponse>((resolve, reject) => {
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        this.inFlight -= 1;
        return true;
      };
      signal?.addEventListener('abort', () => {
        if (!settle()) return;
        this.aborts += 1;
        reject(new ModelError('aborted', 'aborted'));
      });
      const content = step instanceof Error ? Promise.reject(step) : typeof step === 'function' ? step() : Promise.resolve(step ?? '');
      content.then(
        (text) => settle() && resolve({ content: text, usage: ListModel.usageOf(n), finishReason: 'stop' }),
        (error: unknown) => settle() && reject(error instanceof Error ? error : new Error(String(error))),
      );
    });
  }
}

/** A promise to settle by hand: an answer that comes when the test says so. */
export function gate<T = string>(): { promise: Promise<T>; open: (value: T) => void } {
  let open: (value: T) => void = () => undefined;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}
