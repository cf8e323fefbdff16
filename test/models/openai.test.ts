import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { redact, retryAfterMs, toModelError } from '../../src/models/openai.js';

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
    [404, 'bad_request'],
  ])('maps HTTP %i to %s', (status, kind) => {
    expect(toModelError(api(status), 'openai/m', 'sk-secret', false).kind).toBe(kind);
  });

  it('keeps Retry-After and marks transient kinds', () => {
    const error = toModelError(api(429, { 'retry-after': '3' }), 'openai/m', 'k', false);
    expect(error).toMatchObject({ retryAfterMs: 3000, transient: true, status: 429 });
    expect(toModelError(api(401), 'openai/m', 'k', false).transient).toBe(false);
  });

  it('maps timeouts, connection failures, bad JSON and our own aborts', () => {
    expect(toModelError(new APIConnectionTimeoutError(), 'w', 'k', false).kind).toBe('timeout');
    expect(toModelError(new APIConnectionError({ cause: new Error('ECONNREFUSED') }), 'w', 'k', false).kind).toBe('network');
    expect(toModelError(new SyntaxError('Unexpected token'), 'w', 'k', false).kind).toBe('malformed');
    expect(toModelError(new Error('whatever'), 'w', 'k', true).kind).toBe('aborted');
  });

  it('never repeats the key, even when the server echoes it', () => {
    const echoed = APIError.generate(401, { message: 'Incorrect API key provided: sk-live-123456' }, 'Incorrect API key provided: sk-live-123456', headers({}));
    const error = toModelError(echoed, 'openai/m', 'sk-live-123456', false);
    expect(error.message).not.toContain('sk-live-123456');
    expect(redact('a sk-live-123456 b', 'sk-live-123456')).toBe('a *** b');
  });
});
