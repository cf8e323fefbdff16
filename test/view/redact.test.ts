// Secrets never reach the page: by field name anywhere in a JSON value, and by look (sk- keys, Bearer tokens, URL credentials).
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { REDACTED, redact, redactText } from '../../src/view/redact.js';

describe('redact', () => {
  it('replaces fields named like secrets and keeps token counts', () => {
    const out = redact({
      api_key: 'sk-live-abcdefghijklmnop',
      apiKey: 'x',
      headers: { Authorization: 'Bearer abc', 'x-api-key': 'k' },
      openrouter: { password: 'p', secret: 's' },
      usage: { input_tokens: 12, output_tokens: 3, max_completion_tokens: 100, total_tokens: 15 },
      token: 'tok',
      stop_token: '###STOP###',
    });
    expect(out).toEqual({
      api_key: REDACTED,
      apiKey: REDACTED,
      headers: { Authorization: REDACTED, 'x-api-key': REDACTED },
      openrouter: { password: REDACTED, secret: REDACTED },
      usage: { input_tokens: 12, output_tokens: 3, max_completion_tokens: 100, total_tokens: 15 },
      token: REDACTED,
      stop_token: '###STOP###',
    });
  });

  it.each([
    ['key sk-proj-ABCDEFGHIJKLMNOP12 in text', `key ${REDACTED} in text`],
    ['Authorization: Bearer abcdefgh.ijk', `Authorization: Bearer ${REDACTED}`],
    ['https://user:hunter2@api.example/v1', `https://${REDACTED}@api.example/v1`],
    ['http://127.0.0.1:8080/v1', 'http://127.0.0.1:8080/v1'],
    ['a short sk-123 stays', 'a short sk-123 stays'],
  ])('masks what looks like a key in %j', (input, expected) => {
    expect(redactText(input)).toBe(expected);
  });

  it('keeps __proto__ an ordinary field and cuts hostile depth', () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown;
    const out = redact(parsed) as Record<string, unknown>;
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100; i += 1) deep = [deep];
    expect(JSON.stringify(redact(deep))).toContain('[too deep]');
  });

  test.prop([fc.jsonValue({ maxDepth: 4 }), fc.constantFrom('api_key', 'API_KEY', 'authorization', 'password', 'client_secret'), fc.string({ minLength: 1 })])(
    'a secret filed under a secret name anywhere in any JSON is gone',
    (value, name, secret) => {
      const marker = `SECRET${secret}MARK`;
      const planted = { outer: [value, { [name]: marker }], nested: { deeper: { [name]: marker } } };
      expect(JSON.stringify(redact(planted))).not.toContain(marker);
    },
  );
});
