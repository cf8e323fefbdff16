// resultOf and prices: a line of an output or error file as the call's answer or error; batch prices.
import { describe, expect, it } from 'vitest';
import { resultOf, missingLine } from '../../src/batch/lines.js';
import { batchPrices } from '../../src/batch/prices.js';

const output = (status: number, body: unknown): string => JSON.stringify({ custom_id: 'c', response: { status_code: status, body }, error: null });
const describeResult = (text: string): string => {
  const result = resultOf(text, 'openai/m');
  return result.ok ? `answer ${result.response.content} (${result.response.usage.input}+${result.response.usage.output}, ${result.response.finishReason ?? '-'})` : `${result.error.kind}${result.error.usage === undefined ? '' : ' billed'}: ${result.error.message}`;
};

describe('resultOf', () => {
  const cases: readonly [string, string][] = [
    ['an answer', output(200, { choices: [{ message: { content: 'hi' }, finish_reason: 'length' }], usage: { prompt_tokens: 5, completion_tokens: 2 } })],
    ['a 200 without an answer (billed)', output(200, { usage: { prompt_tokens: 5, completion_tokens: 0 } })],
    ['a 500', output(500, { error: { message: 'oops' } })],
    ['a 429', output(429, { error: { message: 'slow down' } })],
    ['a 401', output(401, { error: { message: 'bad key' } })],
    ['a 400', output(400, { error: { message: 'bad request' } })],
    ['an expired request', missingLine('c', 'batch_expired', 'window passed')],
    ['a request of a batch that failed whole', missingLine('c', 'batch_failed', 'validation')],
    ['not JSON', '{"custom_id":'],
  ];
  it('maps each kind of line as an online call of that outcome would fail or answer', () => {
    expect(Object.fromEntries(cases.map(([name, text]) => [name, describeResult(text)]))).toMatchInlineSnapshot(`
      {
        "a 200 without an answer (billed)": "malformed billed: openai/m: batch response has no choices[0].message.content",
        "a 400": "bad_request: openai/m: batch request failed (400): bad request",
        "a 401": "auth: openai/m: batch request failed (401): bad key",
        "a 429": "rate_limit: openai/m: batch request failed (429): slow down",
        "a 500": "server: openai/m: batch request failed (500): oops",
        "a request of a batch that failed whole": "server: openai/m: batch request batch_failed: validation",
        "an answer": "answer hi (5+2, length)",
        "an expired request": "timeout: openai/m: batch request batch_expired: window passed",
        "not JSON": "malformed: openai/m: batch output line is not JSON",
      }
    `);
  });
});

describe('batchPrices', () => {
  it('takes an entry\'s batch price, else half for OpenAI models, else the online price', () => {
    expect(batchPrices({ 'gpt-4o-mini': { input: 0.15, output: 0.6 }, 'openai/o3-mini': { input: 1.1, output: 4.4 }, 'claude-x': { input: 3, output: 15 }, 'gpt-4o': { input: 2.5, output: 10, batch: { input: 1, output: 4 } } })).toEqual({
      'gpt-4o-mini': { input: 0.075, output: 0.3 },
      'openai/o3-mini': { input: 0.55, output: 2.2 },
      'claude-x': { input: 3, output: 15 },
      'gpt-4o': { input: 1, output: 4 },
    });
  });
});
