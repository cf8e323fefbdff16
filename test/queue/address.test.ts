// queueAddress / redact: a --queue URL checked, and any password in it never shown.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { queueAddress, redact } from '../../src/queue/address.js';

describe('queueAddress', () => {
  it('keeps the URL to connect to and shows it without user or password', () => {
    expect(queueAddress('redis://:s3cret@10.0.0.5:6379/2')).toEqual({ url: 'redis://:s3cret@10.0.0.5:6379/2', shown: 'redis://:***@10.0.0.5:6379/2' });
    expect(queueAddress('rediss://admin:p@ss@host:6380').shown).toBe('rediss://***:***@host:6380');
    expect(queueAddress('redis://127.0.0.1:6379').shown).toBe('redis://127.0.0.1:6379');
  });

  it('says what is wrong, without the password', () => {
    expect(() => queueAddress('http://user:pw@host')).toThrowErrorMatchingInlineSnapshot(`[ConfigError: --queue: expected a redis:// or rediss:// URL, got \`http://***:***@host\`]`);
    expect(() => queueAddress('localhost:6379')).toThrow(/redis:\/\//);
    expect(() => queueAddress('not a url')).toThrow(/expected a URL like redis:\/\/HOST:6379/);
  });

  test.prop([fc.stringMatching(/^[A-Za-z0-9!$%&*+=?^_~.-]{1,20}$/), fc.stringMatching(/^[A-Za-z0-9!$%&*+=?^_~@.-]{4,30}$/)])('no password appears in what is shown, whatever it holds', (user, password) => {
    const shown = redact(`redis://${user}:${password}@host:6379/0`);
    expect(shown).toBe('redis://***:***@host:6379/0');
    expect(shown).not.toContain(password);
  });
});
