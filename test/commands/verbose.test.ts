// --verbose lines: one per call attempt and per retry, with what a misbehaving run needs, and nothing secret.
import { fc, test } from '@fast-check/vitest';
import { APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { callLine, retryLine } from '../../src/commands/verbose.js';
import { ModelError } from '../../src/errors.js';
import { toModelError } from '../../src/models/openai.js';

const model = { provider: 'openai', model: 'gpt-4o-mini' };

describe('verbose lines', () => {
  it('say the role, the model, the attempt, the limiter wait, the latency and the tokens of an answered call', () => {
    expect(callLine({ model, module: 'assistant', operation: 'reply', attempt: 1, waitedMs: 0.2, latencyMs: 812.4, usage: { input: 340, output: 42 } })).toBe('call assistant openai/gpt-4o-mini (reply, attempt 1): ok in 812 ms, 340+42 tokens');
    expect(callLine({ model, module: 'user_simulator', operation: undefined, attempt: 2, waitedMs: 1200, latencyMs: 12_345, usage: { input: 1, output: 2, estimated: true } })).toBe('call user openai/gpt-4o-mini (follow_up, attempt 2): waited 1.20 s for the limiter; ok in 12.3 s, 1+2 tokens (estimated)');
  });

  it('say the status and kind of a failed call, and of the error a retry follows, with its delay', () => {
    const error = new ModelError('server', 'openai/gpt-4o-mini: server error (503): busy', { status: 503 });
    expect(callLine({ model, module: 'judge', operation: 'review', attempt: 1, waitedMs: 0, latencyMs: 35, error })).toBe('call judge openai/gpt-4o-mini (review, attempt 1): failed in 35 ms: 503 server: openai/gpt-4o-mini: server error (503): busy');
    expect(retryLine('assistant', error, { model, retry: 1, delayMs: 2100 }, 3)).toBe('retry 1 of 3 of an assistant call to openai/gpt-4o-mini in 2.10 s, after 503 server: openai/gpt-4o-mini: server error (503): busy');
  });

  test.prop([fc.stringMatching(/^sk-[A-Za-z0-9]{8,24}$/), fc.constantFrom(401, 403, 429, 500)])('never show a key a server echoes back', (key, status) => {
    const echoed = APIError.generate(status, { message: `Incorrect API key provided: ${key}` }, `Incorrect API key provided: ${key}`, new Headers());
    const error = toModelError(echoed, 'openai/m', [key], false, 'http://127.0.0.1:9/v1/chat/completions', 'OPENAI_API_KEY');
    const lines = [callLine({ model, module: 'assistant', operation: 'reply', attempt: 1, waitedMs: 0, latencyMs: 1, error }), retryLine('assistant', error, { model, retry: 1, delayMs: 1 }, 3)];
    for (const line of lines) expect(line).not.toContain(key);
  });

  it('escape control characters a server sends, so a line cannot forge another', () => {
    const line = callLine({ model, module: 'assistant', operation: 'reply', attempt: 1, waitedMs: 0, latencyMs: 1, error: new ModelError('bad_request', 'x\npersonaflow: error: forged') });
    expect(line).not.toContain('\n');
  });
});
