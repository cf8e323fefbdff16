// Token counting for servers that report no usage: which tokenizer a model gets, the chat overhead, and what usage is plausible.
import { fc, test } from '@fast-check/vitest';
import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { countUsage, methodFor, plausibleUsage } from '../../src/models/tokens.js';

describe('methodFor', () => {
  it.each([
    ['gpt-4o-mini', 'o200k_base'],
    ['openai/gpt-4.1-nano', 'o200k_base'],
    ['gpt-5', 'o200k_base'],
    ['o3-mini', 'o200k_base'],
    ['gpt-4-turbo', 'cl100k_base'],
    ['gpt-3.5-turbo', 'cl100k_base'],
    ['llama3.1:8b', 'chars/4'],
    ['anthropic/claude-haiku-4.5', 'chars/4'],
  ])('%s → %s', (model, method) => {
    expect(methodFor(model)).toBe(method);
  });
});

describe('countUsage', () => {
  it('counts each message with the chat overhead, and the reply, with the model family\'s tokenizer', async () => {
    const messages = [
      { role: 'system' as const, content: 'You are helpful.' },
      { role: 'user' as const, content: 'Write a haiku about rivers, please.' },
    ];
    expect(await countUsage('gpt-4o', messages, 'Water finds its way')).toEqual({ input: 3 + 3 + o200k(messages[0]!.content) + 3 + o200k(messages[1]!.content), output: o200k('Water finds its way'), estimated: true, method: 'o200k_base' });
    expect((await countUsage('gpt-4', messages, 'x')).input).toBe(3 + 3 + cl100k(messages[0]!.content) + 3 + cl100k(messages[1]!.content));
    expect(await countUsage('mistral-7b', [{ role: 'user', content: 'x'.repeat(10) }], 'y'.repeat(9))).toEqual({ input: 3 + 3 + 3, output: 3, estimated: true, method: 'chars/4' });
  });
});

describe('plausibleUsage', () => {
  const messages = [{ role: 'user' as const, content: 'hello there' }];
  test.prop([fc.string({ maxLength: 200 })])('what a byte-level tokenizer can produce is plausible', (text) => {
    const prompt = [{ role: 'user' as const, content: text }];
    expect(plausibleUsage({ input: Buffer.byteLength(text) + 3 + 3, output: 100 }, prompt, 100)).toBe(true);
  });

  it('regression: 10^15 prompt tokens, or far more completion tokens than asked for, are not', () => {
    expect(plausibleUsage({ input: 1e15, output: 1 }, messages, 100)).toBe(false);
    expect(plausibleUsage({ input: 10, output: 1e9 }, messages, 1024)).toBe(false);
    expect(plausibleUsage({ input: 10, output: 5000 }, messages, undefined)).toBe(true);
  });
});
