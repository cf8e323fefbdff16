// retryingCall: one model call with retries, attempt numbers, billed-usage reporting and run-ending errors.
import { fc, test } from '@fast-check/vitest';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { FatalError, ModelError } from '../../src/errors.js';
import type { ChatModel, ChatRequest, ChatResponse, ModelOperation, TokenUsage } from '../../src/chat.js';
import { operationOf, retryingCall } from '../../src/operators/retryingCall.js';
import { scripted } from '../helpers/fixtures.js';

/** A model answering from a script of outcomes: text (answered, usage 10/5), `''` (empty, still billed), or an error. */
function billing(script: readonly (string | ModelError)[]) {
  const requests: ChatRequest[] = [];
  const model: ChatModel = {
    provider: 'openai',
    model: 'billed',
    complete(request: ChatRequest): Promise<ChatResponse> {
      requests.push(request);
      const step = script[Math.min(requests.length, script.length) - 1]!;
      return step instanceof ModelError ? Promise.reject(step) : Promise.resolve({ content: step, usage: { input: 10, output: step === '' ? 0 : 5 } });
    },
  };
  return { model, requests };
}

describe('retryingCall', () => {
  it('retries a server error, numbering the attempts, and reports usage once', async () => {
    const fake = scripted((_request, call) => {
      if (call < 3) throw new ModelError('server', `500 #${call}`, { status: 500 });
      return 'fine';
    });
    const usage: unknown[] = [];
    const retried: unknown[] = [];
    const call = retryingCall({ maxRetries: 3, retryDelayMs: 0, onUsage: (...args) => usage.push(args), onRetry: (...args) => retried.push(args) });
    const response = await lastValueFrom(call(fake.model, { module: 'distractor', messages: [{ role: 'user', content: 'hi' }] }));
    expect(response).toEqual({ content: 'fine', usage: { input: 10, output: 5 } });
    expect(fake.requests.map((request) => request.attempt)).toEqual([1, 2, 3]);
    // With the model, which retry and its delay (for --verbose).
    expect(retried).toEqual([
      ['distractor', expect.objectContaining({ message: '500 #1' }), { model: { provider: 'sim', model: 'scripted' }, retry: 1, delayMs: 0 }],
      ['distractor', expect.objectContaining({ message: '500 #2' }), { model: { provider: 'sim', model: 'scripted' }, retry: 2, delayMs: 0 }],
    ]);
    expect(usage).toEqual([['distractor', { provider: 'sim', model: 'scripted' }, { input: 10, output: 5 }, { operation: 'noise', failed: false }]]);
  });

  it('gives up after maxRetries and does not retry a permanent error', async () => {
    const always = scripted(() => {
      throw new ModelError('server', 'still down');
    });
    const usage: unknown[] = [];
    const call = retryingCall({ maxRetries: 2, retryDelayMs: 0, onUsage: (...args) => usage.push(args) });
    await expect(lastValueFrom(call(always.model, { module: 'distractor', messages: [] }))).rejects.toMatchObject({ kind: 'server', message: 'still down' });
    expect(always.requests).toHaveLength(3);
    const permanent = scripted(() => {
      throw new ModelError('bad_request', '400');
    });
    await expect(lastValueFrom(call(permanent.model, { module: 'distractor', messages: [] }))).rejects.toMatchObject({ kind: 'bad_request' });
    expect(permanent.requests).toHaveLength(1);
    expect(usage).toEqual([]);
  });

  // Regression (fixed): `attempt` lives in the closure of the call, not of the subscription, so subscribing to the
  // returned observable a second time starts at the attempt number the first subscription ended with
  // (here 2, not 1). The observable is meant to be cold (each subscription a fresh call); the sim model
  // seeds its faults by attempt, so such a re-subscription would see other faults. No caller in src
  // re-subscribes today.
  it('makes a fresh request per subscription, starting again at attempt 1', async () => {
    let fail = true;
    const fake = scripted(() => {
      if (fail) {
        fail = false;
        throw new ModelError('rate_limit', '429', { status: 429, retryAfterMs: 0 });
      }
      return 'ok';
    });
    const call = retryingCall({ maxRetries: 1, retryDelayMs: 0 });
    const observable = call(fake.model, { module: 'distractor', messages: [] });
    await lastValueFrom(observable);
    await lastValueFrom(observable);
    expect(fake.requests.map((request) => request.attempt)).toEqual([1, 2, 1]);
  });
});


describe('retryingCall: what the provider billed', () => {
  type Reported = [string, TokenUsage, { operation: ModelOperation; failed: boolean }];
  const listen = () => {
    const reported: Reported[] = [];
    return { reported, onUsage: (module: string, _model: unknown, usage: TokenUsage, call: { operation: ModelOperation; failed: boolean }) => reported.push([module, usage, call]) };
  };

  it('counts an empty assistant reply as a failed attempt that was billed, then the retry that answered', async () => {
    const fake = billing(['', '  ', 'a real answer']);
    const { reported, onUsage } = listen();
    const response = await lastValueFrom(retryingCall({ maxRetries: 3, retryDelayMs: 0, onUsage })(fake.model, { module: 'assistant', messages: [] }));
    expect(response.content).toBe('a real answer');
    expect(fake.requests.map((request) => request.attempt)).toEqual([1, 2, 3]);
    expect(reported).toEqual([
      ['assistant', { input: 10, output: 0 }, { operation: 'reply', failed: true }],
      ['assistant', { input: 10, output: 5 }, { operation: 'reply', failed: true }],
      ['assistant', { input: 10, output: 5 }, { operation: 'reply', failed: false }],
    ]);
  });

  it('reports the usage a ModelError carries, and nothing for errors without usage', async () => {
    const fake = billing([
      new ModelError('malformed', 'no choices', { usage: { input: 7, output: 3 } }),
      new ModelError('server', '500', { status: 500 }),
      'fine',
    ]);
    const { reported, onUsage } = listen();
    await lastValueFrom(retryingCall({ maxRetries: 2, retryDelayMs: 0, onUsage })(fake.model, { module: 'user_simulator', operation: 'guard_retry', messages: [] }));
    expect(reported).toEqual([
      ['user_simulator', { input: 7, output: 3 }, { operation: 'guard_retry', failed: true }],
      ['user_simulator', { input: 10, output: 5 }, { operation: 'guard_retry', failed: false }],
    ]);
  });

  it('counts the billed failures of a call that finally fails', async () => {
    const fake = billing(['']);
    const { reported, onUsage } = listen();
    await expect(lastValueFrom(retryingCall({ maxRetries: 2, retryDelayMs: 0, onUsage })(fake.model, { module: 'assistant', messages: [] }))).rejects.toMatchObject({ kind: 'malformed' });
    expect(reported.map(([, usage, call]) => [usage.input, call.failed])).toEqual([[10, true], [10, true], [10, true]]);
  });

  it('an empty reply is an answer for other modules (their callers validate it)', async () => {
    const fake = billing(['']);
    const { reported, onUsage } = listen();
    const response = await lastValueFrom(retryingCall({ maxRetries: 2, retryDelayMs: 0, onUsage })(fake.model, { module: 'distractor', messages: [] }));
    expect(response.content).toBe('');
    expect(reported).toEqual([['distractor', { input: 10, output: 0 }, { operation: 'noise', failed: false }]]);
  });

  it('turns a bad key into the run-ending FatalError, without retrying', async () => {
    const fake = billing([new ModelError('auth', '401 Incorrect API key', { status: 401 })]);
    const error: unknown = await lastValueFrom(retryingCall({ maxRetries: 3, retryDelayMs: 0 })(fake.model, { module: 'assistant', messages: [] })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalError);
    expect(fake.requests).toHaveLength(1);
  });

  test.prop([fc.array(fc.oneof(fc.constant(''), fc.constant('ok'), fc.constant('500')), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 6 })])(
    'tokens reported = tokens of every attempt made that came back with usage',
    async (outcomes, maxRetries) => {
      const script = outcomes.map((o) => (o === '500' ? new ModelError('server', '500', { status: 500 }) : o));
      const fake = billing(script);
      const { reported, onUsage } = listen();
      await lastValueFrom(retryingCall({ maxRetries, retryDelayMs: 0, onUsage })(fake.model, { module: 'assistant', messages: [] })).catch(() => undefined);
      // The script repeats its last outcome; attempts go on until the first answer or until the retries run out.
      const firstOk = outcomes.indexOf('ok');
      const attempts = firstOk === -1 ? maxRetries + 1 : Math.min(maxRetries + 1, firstOk + 1);
      expect(fake.requests).toHaveLength(attempts);
      const made = Array.from({ length: attempts }, (_, i) => outcomes[Math.min(i, outcomes.length - 1)]);
      expect(reported.reduce((sum, [, usage]) => sum + usage.input, 0)).toBe(made.filter((o) => o !== '500').length * 10);
      expect(reported.filter(([, , call]) => !call.failed).length).toBe(made.includes('ok') ? 1 : 0);
    },
  );
});

describe('operationOf', () => {
  it('names the first operation of each module when the request does not say', () => {
    expect(operationOf({ module: 'assistant', messages: [] })).toBe('reply');
    expect(operationOf({ module: 'user_simulator', messages: [] })).toBe('follow_up');
    expect(operationOf({ module: 'style_transfer', messages: [] })).toBe('rewrite');
    expect(operationOf({ module: 'query_generation', messages: [] })).toBe('generate');
    expect(operationOf({ module: 'distractor', operation: 'validation_retry', messages: [] })).toBe('validation_retry');
  });
});
