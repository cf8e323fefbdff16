// readTexts: the source of `personaflow noise`: plain lines or JSON lines, with file:LINE reports for bad lines.
/* eslint-disable @typescript-eslint/require-await -- test sources are async generators over in-memory data: no await, like a stream whose data is ready */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { readTexts, type TextOptions } from '../../src/streams/texts.js';
import type { TextItem } from '../../src/types.js';

async function* chunks(...parts: (string | Buffer)[]): AsyncGenerator<string | Buffer> {
  for (const part of parts) yield part;
}

async function read(input: string | (string | Buffer)[], options: Partial<TextOptions> = {}): Promise<{ items: TextItem[]; warnings: string[] }> {
  const warnings: string[] = [];
  const items: TextItem[] = [];
  const parts = typeof input === 'string' ? [input] : input;
  for await (const item of readTexts(chunks(...parts), { name: 'texts.ndjson', onWarning: (message) => warnings.push(message), ...options })) items.push(item);
  return { items, warnings };
}

describe('readTexts', () => {
  it('reads plain lines as texts, keyed by the text itself', async () => {
    const { items, warnings } = await read('How do I sort a list?\nPlan a trip to Rome\r\n');
    expect(warnings).toEqual([]);
    expect(items).toEqual<TextItem[]>([
      { text: 'How do I sort a list?', persona: {}, key: 'How do I sort a list?', source: 'texts.ndjson:1' },
      { text: 'Plan a trip to Rome', persona: {}, key: 'Plan a trip to Rome', source: 'texts.ndjson:2' },
    ]);
  });

  it('reads JSON lines with text, persona_features and id', async () => {
    const lines = [
      JSON.stringify({ id: 'q-7', text: 'Explain recursion', persona_features: { communication_style: 'formal', age: 60 } }),
      JSON.stringify({ id: 12, text: 'Write a haiku' }),
      JSON.stringify({ text: 'No id here', features: { role: 'student' }, extra: true }),
      '  ' + JSON.stringify({ text: 'indented JSON' }),
    ];
    const { items, warnings } = await read(lines.join('\n'));
    expect(warnings).toEqual([]);
    expect(items).toEqual<TextItem[]>([
      { text: 'Explain recursion', persona: { communication_style: 'formal', age: 60 }, key: 'id:q-7', source: 'texts.ndjson:1' },
      { text: 'Write a haiku', persona: {}, key: 'id:12', source: 'texts.ndjson:2' },
      { text: 'No id here', persona: { role: 'student' }, key: 'No id here', source: 'texts.ndjson:3' },
      { text: 'indented JSON', persona: {}, key: 'indented JSON', source: 'texts.ndjson:4' },
    ]);
  });

  it('takes original_query as the text when there is no text', async () => {
    const { items } = await read(`${JSON.stringify({ original_query: 'Help me write Python code', persona_features: { role: 'engineer' } })}\n${JSON.stringify({ text: 'text wins', original_query: 'not this' })}\n`);
    expect(items.map((item) => [item.text, item.persona])).toEqual([
      ['Help me write Python code', { role: 'engineer' }],
      ['text wins', {}],
    ]);
  });

  it('skips blank lines, keeping the line numbers of the others', async () => {
    const { items, warnings } = await read('\n   \nfirst\n\n\t\n{"text": "second"}\n\n');
    expect(warnings).toEqual([]);
    expect(items.map((item) => [item.text, item.source])).toEqual([
      ['first', 'texts.ndjson:3'],
      ['second', 'texts.ndjson:6'],
    ]);
  });

  it('reports invalid JSON and a JSON line without text as name:LINE and skips them', async () => {
    const input = ['ok one', '{"text": "broken', JSON.stringify({ id: 3, persona_features: {} }), JSON.stringify({ text: '' }), JSON.stringify({ text: 'x', persona_features: 'casual' }), 'ok two'].join('\n');
    const { items, warnings } = await read(input);
    expect(items.map((item) => item.text)).toEqual(['ok one', 'ok two']);
    expect(items.map((item) => item.source)).toEqual(['texts.ndjson:1', 'texts.ndjson:6']);
    expect(warnings).toHaveLength(4);
    expect(warnings[0]).toMatch(/^texts\.ndjson:2: invalid JSON: /);
    expect(warnings[1]).toMatch(/^texts\.ndjson:3: text: needs "text" \(or "original_query"\)/);
    expect(warnings[2]).toMatch(/^texts\.ndjson:4: text: /);
    expect(warnings[3]).toMatch(/^texts\.ndjson:5: persona_features: /);
  });

  it('reports invalid UTF-8 with its line and goes on', async () => {
    const { items, warnings } = await read([Buffer.from('good\n'), Buffer.from([0x62, 0x61, 0x64, 0xff, 0x0a]), Buffer.from('also good\n')]);
    expect(items.map((item) => item.text)).toEqual(['good', 'also good']);
    expect(warnings).toEqual(['texts.ndjson:2: invalid UTF-8']);
  });

  it('stops with a ConfigError at the first bad line when strict', async () => {
    const seen: string[] = [];
    const consume = async () => {
      for await (const item of readTexts(chunks('fine\n{"nope": 1}\nnever read\n'), { name: 'in.txt', strict: true })) seen.push(item.text);
    };
    const error = await consume().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^in\.txt:2: text: needs "text"/);
    expect((error as Error).message).toContain('--strict');
    expect(seen).toEqual(['fine']);
    await expect(read('{bad json', { strict: true })).rejects.toThrow(/^texts\.ndjson:1: invalid JSON/);
  });

  test.prop([fc.array(fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes('\n') && !s.includes('\r') && s.trim() !== '' && !s.trim().startsWith('{')), { maxLength: 20 }), fc.integer({ min: 1, max: 7 })])(
    'reads any plain lines back as they were, however the input is chunked',
    async (lines, size) => {
      const text = lines.map((line) => `${line}\n`).join('');
      const bytes = Buffer.from(text);
      const parts: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += size) parts.push(bytes.subarray(at, at + size));
      const { items, warnings } = await read(parts);
      expect(warnings).toEqual([]);
      expect(items.map((item) => item.text)).toEqual(lines);
      expect(items.map((item) => item.source)).toEqual(lines.map((_, i) => `texts.ndjson:${i + 1}`));
    },
  );
});
