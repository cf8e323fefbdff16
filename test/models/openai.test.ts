import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { createOpenAIModel, parseDuration, retryAfterMs, toModelError } from '../../src/models/openai.js';
import { redact } from '../../src/redact.js';
import { endsRun } from '../../src/errors.js';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { startOpenAIServer } from '../helpers/openai-server.js';

const headers = (init: Record<string, string>) => new Headers(init);

describe('retryAfterMs', () => {
  it.each([
    [{ 'retry-after': '2' }, 2000],
    [{ 'retry-after': '0' }, 0],
    [{ 'retry-after-ms': '150' }, 150],
    [{ 'retry-after-ms': '150', 'retry-after': '9' }, 150],
    [{ 'retry-after': 'soon' }, undefined],
    [{}, undefined],
  ])('reads %j', (init, expected) => {
    expect(retryAfterMs(headers(init))).toBe(expected);
  });

  it('reads an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }), now)).toBe(3000);
  });
});

describe('toModelError', () => {
  const api = (status: number, init: Record<string, string> = {}) => APIError.generate(status, { message: 'nope' }, 'nope', headers(init));

  it.each([
    [401, 'auth'],
    [403, 'auth'],
    [429, 'rate_limit'],
    [500, 'server'],
    [503, 'server'],
    [400, 'bad_request'],
    [404, 'endpoint'],
    [301, 'endpoint'],
    [307, 'endpoint'],
  ])('maps HTTP %i to %s', (status, kind) => {
    expect(toModelError(api(status), 'openai/m', ['sk-secret'], false).kind).toBe(kind);
  });

  it('regression: a wrong endpoint or model ends the run with one message naming the URL, not one failure per task', () => {
    const notFound = toModelError(api(404), 'openai/m', ['k'], false, 'http://127.0.0.1:9/v1/chat/completions');
    expect(notFound).toMatchObject({ kind: 'endpoint', transient: false, message: 'openai/m: http://127.0.0.1:9/v1/chat/completions answered 404 (nope): check the base URL and the model name' });
    expect(endsRun(notFound)).toBe(true);
    const moved = toModelError(api(301, { location: '/v2/chat/completions' }), 'openai/m', ['k'], false, 'http://127.0.0.1:9/v1/chat/completions');
    expect(moved.message).toBe('openai/m: http://127.0.0.1:9/v1/chat/completions answered 301 (a redirect to http://127.0.0.1:9/v2/chat/completions, not followed): set the base URL to where it points');
    const missingModel = APIError.generate(400, { message: 'The model `gpt-9` does not exist', code: 'model_not_found' }, 'The model `gpt-9` does not exist', headers({}));
    expect(toModelError(missingModel, 'openai/gpt-9', ['k'], false).kind).toBe('endpoint');
    expect(toModelError(api(400), 'openai/m', ['k'], false).kind).toBe('bad_request');
  });

  it('an authentication failure names the URL and where the key came from (issue 23: the line says what to do)', () => {
    const denied = toModelError(api(401), 'openai/m', ['k'], false, 'http://127.0.0.1:9/v1/chat/completions', 'OPENAI_API_KEY');
    expect(denied.message).toBe('openai/m: authentication failed (401) at http://127.0.0.1:9/v1/chat/completions: nope; check OPENAI_API_KEY');
    expect(toModelError(api(403), 'openai/m', ['k'], false, 'http://h/v1/chat/completions', 'api.api_key').message).toBe('openai/m: authentication failed (403) at http://h/v1/chat/completions: nope; check api.api_key and its access to this model');
    expect(toModelError(api(401), 'openai/m', ['k'], false).message).toMatch(/check the API key$/);
  });

  it('keeps Retry-After and marks transient kinds', () => {
    const error = toModelError(api(429, { 'retry-after': '3' }), 'openai/m', ['k'], false);
    expect(error).toMatchObject({ retryAfterMs: 3000, transient: true, status: 429 });
    expect(toModelError(api(401), 'openai/m', ['k'], false).transient).toBe(false);
  });

  it('maps timeouts, connection failures, bad JSON and our own aborts', () => {
    expect(toModelError(new APIConnectionTimeoutError(), 'w', ['k'], false).kind).toBe('timeout');
    const refused = new Error('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') });
    expect(toModelError(new APIConnectionError({ cause: refused }), 'w', ['k'], false)).toMatchObject({ kind: 'unreachable', message: 'w: connection failed (connect ECONNREFUSED 127.0.0.1:9)' });
    expect(toModelError(new APIConnectionError({ cause: new Error('read ECONNRESET') }), 'w', ['k'], false).kind).toBe('network');
    expect(toModelError(new RangeError('bug'), 'w', ['k'], false)).toMatchObject({ kind: 'unknown', transient: false });
    expect(toModelError(new SyntaxError('Unexpected token'), 'w', ['k'], false).kind).toBe('malformed');
    expect(toModelError(new Error('whatever'), 'w', ['k'], true).kind).toBe('aborted');
  });

  it('never repeats the key, even when the server echoes it', () => {
    const echoed = APIError.generate(401, { message: 'Incorrect API key provided: sk-live-123456' }, 'Incorrect API key provided: sk-live-123456', headers({}));
    const error = toModelError(echoed, 'openai/m', ['sk-live-123456'], false);
    expect(error.message).not.toContain('sk-live-123456');
    expect(redact('a sk-live-123456 b', ['sk-live-123456'])).toBe('a *** b');
  });
});

describe('createOpenAIModel against a local server', () => {
  const request = { module: 'assistant' as const, messages: [{ role: 'user' as const, content: 'hello' }] };

  it('answers, counts tokens, and sends the key as a bearer token', async () => {
    const server = await startOpenAIServer({ apiKey: 'sk-local' });
    try {
      const model = createOpenAIModel({ provider: 'openai', model: 'm', apiKey: 'sk-local', baseURL: server.baseURL, timeoutMs: 5000 });
      const reply = await model.complete(request, new AbortController().signal);
      expect(reply.content.length).toBeGreaterThan(0);
      expect(reply.usage.input).toBeGreaterThan(0);
      expect(server.requests[0]?.authorization).toBe('Bearer sk-local');
    } finally {
      await server.close();
    }
  });

  it('regression: counts tokens itself when the server reports no usage, marks them estimated, and says so once', async () => {
    const server = await startOpenAIServer({ usage: () => null });
    const said: string[] = [];
    try {
      const model = createOpenAIModel({ provider: 'openai', model: 'gpt-4o-mini', apiKey: 'k', baseURL: server.baseURL, timeoutMs: 5000, onWarning: (m) => said.push(m) });
      const first = await model.complete(request, new AbortController().signal);
      await model.complete(request, new AbortController().signal);
      // `hello` is one o200k token, plus 3 for the message and 3 to prime the reply.
      expect(first.usage).toEqual({ input: 7, output: countTokens(first.content), estimated: true });
      expect(said).toEqual(['openai/gpt-4o-mini: the server reports no token usage; counting tokens with the o200k_base tokenizer, marked as estimated in usage.json']);
    } finally {
      await server.close();
    }
  });

  it('regression: an implausible usage (10^15 tokens) is not billed: tokens are counted instead', async () => {
    const server = await startOpenAIServer({ usage: () => ({ prompt: 1e15, completion: 5 }) });
    const said: string[] = [];
    try {
      const model = createOpenAIModel({ provider: 'openai', model: 'llama3.1:8b', apiKey: 'k', baseURL: server.baseURL, timeoutMs: 5000, onWarning: (m) => said.push(m) });
      const reply = await model.complete(request, new AbortController().signal);
      expect(reply.usage).toEqual({ input: 3 + 3 + Math.ceil('hello'.length / 4), output: Math.ceil(reply.content.length / 4), estimated: true });
      expect(said).toEqual(['openai/llama3.1:8b: the server reported an implausible usage (1000000000000000 prompt and 5 completion tokens); counting tokens as characters / 4 (no tokenizer known for this model) instead, marked as estimated in usage.json']);
    } finally {
      await server.close();
    }
  });

  it("reads the provider's x-ratelimit-* headers", async () => {
    const server = await startOpenAIServer({
      answerHeaders: { 'x-ratelimit-limit-requests': '500', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1m2.5s', 'x-ratelimit-limit-tokens': '200000', 'x-ratelimit-reset-tokens': '20ms' },
    });
    try {
      const model = createOpenAIModel({ provider: 'openai', model: 'm', apiKey: 'k', baseURL: server.baseURL, timeoutMs: 5000 });
      const reply = await model.complete(request, new AbortController().signal);
      expect(reply.rateLimit).toEqual({ limitRequests: 500, remainingRequests: 0, resetRequestsMs: 62_500, limitTokens: 200_000, remainingTokens: undefined, resetTokensMs: 20 });
    } finally {
      await server.close();
    }
  });

  it.each([
    ['1s', 1000],
    ['6m0s', 360_000],
    ['59.77s', 59_770],
    ['20ms', 20],
    ['1h2m3s', 3_723_000],
    ['3', 3000],
    ['soon', undefined],
    ['', undefined],
  ])('parses the reset duration %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['malformed', 'malformed'],
    ['no_choices', 'malformed'],
    ['hang', 'timeout'],
    ['stall', 'timeout'],
    ['server_error', 'server'],
    ['rate_limit', 'rate_limit'],
  ] as const)('maps a %s answer to %s', async (fault, kind) => {
    const server = await startOpenAIServer({ faults: [fault] });
    try {
      const model = createOpenAIModel({ provider: 'openai', model: 'm', apiKey: 'k', baseURL: server.baseURL, timeoutMs: 300 });
      await expect(model.complete(request, new AbortController().signal)).rejects.toMatchObject({ kind });
    } finally {
      await server.close();
    }
  });

  it('aborts the HTTP request when the caller aborts', async () => {
    const server = await startOpenAIServer({ faults: ['hang'] });
    try {
      const model = createOpenAIModel({ provider: 'openai', model: 'm', apiKey: 'k', baseURL: server.baseURL, timeoutMs: 10_000 });
      const controller = new AbortController();
      const pending = model.complete(request, controller.signal);
      while (server.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      controller.abort();
      await expect(pending).rejects.toMatchObject({ kind: 'aborted' });
    } finally {
      await server.close();
    }
  });
});
