import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { KeySet } from '../../src/streams/seen.js';

describe('KeySet', () => {
  test.prop([fc.array(fc.string({ maxLength: 30 }), { maxLength: 3000 })])('behaves like a Set of strings', (keys) => {
    const compact = new KeySet();
    const oracle = new Set<string>();
    for (const key of keys) {
      expect(compact.add(key)).toBe(!oracle.has(key));
      oracle.add(key);
    }
    expect(compact.size).toBe(oracle.size);
  });

  it('keeps every key across many growths', () => {
    const set = new KeySet();
    for (let i = 0; i < 50_000; i += 1) expect(set.add(`persona_${i}/q1`)).toBe(true);
    for (let i = 0; i < 50_000; i += 7) expect(set.add(`persona_${i}/q1`)).toBe(false);
    expect(set.size).toBe(50_000);
  });

  it('takes at most 16 bytes a key once past its first table, at every size', () => {
    const set = new KeySet();
    for (let i = 0; i < 300_000; i += 1) {
      set.add(`persona_${i}/q1`);
      if (set.bytes > 8 * 1024 && i % 997 === 0) expect(set.bytes / set.size).toBeLessThanOrEqual(16.1);
    }
    expect(set.bytes / set.size).toBeGreaterThan(10);
  });
});
