// Whole runs in virtual time: many conversations through the limiter and per-call retries against a simulated
// provider, on vitest's fake clock. Rates, shares of refusals and durations are asserted here, never end to end.
import { catchError, concatMap, last, lastValueFrom, map, of, range, throwError, toArray, type Observable } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FatalError, ModelError } from '../../src/errors.js';
import { limited } from '../../src/limits/limited.js';
import { ModelLimiter, type LimiterOptions } from '../../src/limits/limiter.js';
import type { ChatRequest } from '../../src/chat.js';
import { mergeMapLending, type Lend } from '../../src/operators/mergeMapLending.js';
import { retryingCall } from '../../src/operators/retryingCall.js';
import { virtualProvider, type VirtualProviderOptions, type VirtualRequest } from '../helpers/virtual-provider.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

interface Workload {
  /** Virtual milliseconds the run lasts: conversations that end by then count. */
  readonly forMs?: number;
  /** Conversations to run (default: as many as fit in `forMs`). */
  readonly conversations?: number;
  readonly callsPerConversation: number;
  readonly concurrency: number;
  readonly provider: VirtualProviderOptions;
}

interface Outcome {
  readonly completed: number;
  readonly failed: number;
  readonly requests: readonly VirtualRequest[];
  /** The error that ended the run (a FatalError from the breaker), if one did. */
  readonly fatal?: unknown;
}

type Ending = 'completed' | 'failed' | 'late';

/** Call `call` of conversation `conversation`: the provider decides its refusals from this text. */
const request = (conversation: number, call: number, attempt?: number): ChatRequest => ({ module: 'assistant', messages: [{ role: 'user', content: `conversation ${conversation}, call ${call}` }], maxCompletionTokens: 16, ...(attempt === undefined ? {} : { attempt }) });

/** Runs the fake clock, timer by timer, until `done` settles. */
async function settle<T>(done: Promise<T>): Promise<T> {
  let finished = false;
  const mark = (): void => void (finished = true);
  done.then(mark, mark);
  while (!finished) await vi.advanceTimersToNextTimerAsync();
  return done;
}

/** personaflow's way, as `converse` runs it: one limiter for the model, each call retried on its own (retryingCall), conversations in a mergeMapLending. */
async function ours(work: Workload, options: { readonly limits?: Partial<LimiterOptions>; readonly maxRetries?: number; readonly retryDelayMs?: number } = {}): Promise<Outcome> {
  const provider = virtualProvider(work.provider);
  const model = limited(provider.model, new ModelLimiter('openai/virtual', { maxConcurrency: work.concurrency, ...options.limits }));
  const forMs = work.forMs ?? Number.POSITIVE_INFINITY;
  const conversation = (i: number, lend: Lend): Observable<Ending> => {
    if (Date.now() >= forMs) return of<Ending>('late');
    const call = retryingCall({ maxRetries: options.maxRetries ?? 3, retryDelayMs: options.retryDelayMs ?? 2000, lend });
    return range(0, work.callsPerConversation).pipe(
      concatMap((j) => call(model, request(i, j))),
      last(),
      map((): Ending => (Date.now() <= forMs ? 'completed' : 'late')),
      catchError((error: unknown) => (error instanceof FatalError ? throwError(() => error) : of<Ending>('failed'))),
    );
  };
  // Enough conversations to outlast `forMs`; those that would start after it end at once as 'late'.
  const conversations = work.conversations ?? work.concurrency * 40;
  try {
    const ok = await settle(lastValueFrom(range(0, conversations).pipe(mergeMapLending(conversation, work.concurrency), toArray())));
    return { completed: ok.filter((e) => e === 'completed').length, failed: ok.filter((e) => e === 'failed').length, requests: provider.requests };
  } catch (fatal) {
    return { completed: 0, failed: 0, requests: provider.requests, fatal };
  }
}

/**
 * The plain script a user would write (bench/plain-script.js): the openai SDK's own retries (2 after the
 * first attempt; a Retry-After taken as is, else 0.5 s · 2^n up to 8 s less up to 25%) under a p-limit.
 */
async function plain(work: Workload): Promise<Outcome> {
  const provider = virtualProvider(work.provider);
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  const create = async (conversation: number, call: number): Promise<void> => {
    for (let retry = 0; ; retry += 1) {
      try {
        await provider.model.complete(request(conversation, call, retry + 1), new AbortController().signal);
        return;
      } catch (error) {
        if (retry >= 2 || !(error instanceof ModelError) || !error.transient) throw error;
        await sleep(error.retryAfterMs ?? Math.min(0.5 * 2 ** retry, 8) * (1 - Math.random() * 0.25) * 1000);
      }
    }
  };
  let completed = 0;
  let failed = 0;
  let next = 0;
  const forMs = work.forMs ?? Number.POSITIVE_INFINITY;
  const worker = async (): Promise<void> => {
    while (Date.now() < forMs && next < (work.conversations ?? Number.POSITIVE_INFINITY)) {
      const conversation = next;
      next += 1;
      try {
        for (let call = 0; call < work.callsPerConversation; call += 1) await create(conversation, call);
        if (Date.now() <= forMs) completed += 1;
      } catch {
        failed += 1;
      }
    }
  };
  await settle(Promise.all(Array.from({ length: work.concurrency }, worker)));
  return { completed, failed, requests: provider.requests };
}

const refusedShare = (requests: readonly VirtualRequest[]): number => requests.filter((r) => r.outcome !== 'ok').length / Math.max(1, requests.length);

describe('random 429s with a Retry-After of a second (an OpenAI-compatible server refusing 10% of calls)', () => {
  for (const form of ['seconds', 'date'] as const) {
    for (const concurrency of [64, 256]) {
      // Both wait out each Retry-After exactly. The plain script's worker sits idle meanwhile; personaflow's
      // conversation lends its slot to the next one, so -j calls stay in flight (1.8-1.9× here), and it makes
      // a fourth attempt where the SDK gives up after three. Before, a lone `Retry-After: 1` paused every
      // call to the model: 0.16-0.17×.
      it(`at -j ${concurrency}, Retry-After as ${form === 'seconds' ? '`1`' : 'an HTTP date'}: well above the plain script's throughput, and fewer failed conversations`, async () => {
        const work: Workload = { forMs: 10_000, callsPerConversation: 5, concurrency, provider: { latencyMs: 100, refuse: { rate: 0.1, retryAfterS: 1, form, seed: concurrency } } };
        const a = await ours(work);
        vi.setSystemTime(0);
        const b = await plain(work);
        expect(refusedShare(a.requests)).toBeGreaterThan(0.08);
        expect(a.completed / b.completed).toBeGreaterThanOrEqual(1.5);
        expect(a.failed).toBeLessThan(b.failed);
      }, 120_000); // CPU time, not a rate: a busy machine runs the same virtual run more slowly.
    }
  }
});

describe('a hard limit of 25 requests a second (the provider counts arrivals in any 1 s window)', () => {
  const provider = (latencyMs: number): VirtualProviderOptions => ({ latencyMs, rps: 25 });

  it('with the limit configured, stays under it: no request is refused, and every conversation completes', async () => {
    // Instant answers: nothing but the bucket holds the rate.
    const run = await ours({ conversations: 40, callsPerConversation: 3, concurrency: 16, provider: provider(0) }, { limits: { rpm: 1500 }, maxRetries: 6, retryDelayMs: 50 });
    expect(run).toMatchObject({ completed: 40, failed: 0 });
    expect(run.requests.filter((r) => r.outcome === 'limited')).toEqual([]);
    // And the rate used is close to the limit: 120 calls at 95% of 25 a second.
    expect(Date.now()).toBeLessThan((120 / (25 * 0.95)) * 1000 + 100);
  });

  it('with the limit unknown, adapts: every conversation completes, and refusals become rarer as the run goes on', async () => {
    // Answers take 40 ms, as a model's do: 25 requests a second need about one call in flight, and -j 32 starts far above that.
    const run = await ours({ conversations: 40, callsPerConversation: 3, concurrency: 32, provider: provider(40) }, { limits: { breakerThreshold: 1000 }, maxRetries: 10, retryDelayMs: 50 });
    expect(run).toMatchObject({ completed: 40, failed: 0 });
    const half = Math.floor(run.requests.length / 2);
    const first = refusedShare(run.requests.slice(0, half));
    expect(first).toBeGreaterThan(0.2);
    expect(refusedShare(run.requests.slice(half))).toBeLessThan(first);
  });
});

describe('a dead upstream (every call a 500 after 20 ms)', () => {
  it('opens the breaker and ends the run with a FatalError after probes, not after every task\'s retries', async () => {
    const run = await ours(
      { conversations: 40, callsPerConversation: 3, concurrency: 8, provider: { latencyMs: 20, dead: true } },
      { limits: { breakerThreshold: 5, breakerCooldownMs: 200, breakerGiveUpMs: 2000 }, maxRetries: 2, retryDelayMs: 10 },
    );
    expect(run.fatal).toBeInstanceOf(FatalError);
    expect(String((run.fatal as Error).message)).toMatch(/^openai\/virtual: every call failed for \d+ s/);
    // Calls go until five have failed in a row and a cool-down has passed with no success (200 ms at -j 8,
    // with conversations that sit out a backoff lending their slots: a few dozen, fewer than the 120 that
    // 40 conversations × 3 attempts would send), then only probes, one at a time, each after a cool-down
    // twice the last.
    const opened = 200 + 20;
    const before = run.requests.filter((r) => r.at <= opened);
    const probes = run.requests.filter((r) => r.at > opened).map((r) => r.at);
    expect(before.length).toBeLessThan(100);
    expect(probes.length).toBeGreaterThanOrEqual(2);
    expect(probes.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < probes.length; i += 1) expect((probes[i] as number) - (probes[i - 1] as number)).toBeGreaterThanOrEqual(400 * 2 ** (i - 1));
    // It gave up once the breaker had been open for give_up (2 s), not before.
    expect(Date.now() - opened).toBeGreaterThanOrEqual(2000);
  });
});
