// What failures have in common: the reason two failures share, the most common one, and the early stop on the first ones failing alike.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { EarlyStop, FailureTally, earlyStopAfter, reasonOf } from '../../src/commands/failures.js';
import type { Failure, Outcome } from '../../src/types.js';

const failed = (kind: string, message: string, id = 'x'): Outcome => ({
  ok: false,
  failure: { persona_id: 'p', query_id: id, interaction_id: `interaction_p_${id}`, attempts: 1, error: { kind, message }, assistant_model: { provider: 'openai', model: 'm' }, user_model: { provider: 'openai', model: 'm' }, time: '2025-01-01T00:00:00Z', usage: {} },
});
const succeeded = { ok: true } as unknown as Outcome;
const failureOf = (outcome: Outcome): Failure => (outcome as Extract<Outcome, { ok: false }>).failure;

describe('reasonOf', () => {
  it('compares failures of one cause equal across models, request ids and numbers, and keeps kinds apart', () => {
    const a = reasonOf({ kind: 'server', message: 'openai/gpt-4o: server error (500): overloaded (request req_8f2a9c1d77aa)' });
    const b = reasonOf({ kind: 'server', message: 'openrouter/anthropic/claude: server error (502): overloaded (request req_00b1c2d3e4f5)' });
    expect(a.key).toBe(b.key);
    expect(reasonOf({ kind: 'timeout', message: 'openai/gpt-4o: server error (500): overloaded' }).key).not.toBe(a.key);
    expect(reasonOf({ kind: 'bad_request', message: "openai/m: request rejected (400): 'temperature' is not supported" }).key).not.toBe(reasonOf({ kind: 'bad_request', message: "openai/m: request rejected (400): 'max_tokens' is too large" }).key);
  });

  test.prop([fc.string(), fc.string()])('shows at most 120 printable characters', (kind, message) => {
    const { shown } = reasonOf({ kind, message });
    expect(shown.length).toBeLessThanOrEqual(120);
    // eslint-disable-next-line no-control-regex -- the point
    expect(shown).not.toMatch(/[\u0000-\u001f\u007f]/);
  });
});

describe('FailureTally', () => {
  it('names the most common reason and its count', () => {
    const tally = new FailureTally();
    expect(tally.top()).toBeUndefined();
    tally.add(failureOf(failed('timeout', 'openai/m: request timed out')));
    for (let i = 0; i < 3; i += 1) tally.add(failureOf(failed('server', `openai/m: server error (50${i}): down`)));
    expect(tally.top()).toEqual({ reason: 'openai/m: server error (500): down', count: 3 });
  });
});

describe('EarlyStop', () => {
  it('waits for max(8, min(concurrency, 32)) conversations', () => {
    expect([1, 8, 16, 32, 100].map(earlyStopAfter)).toEqual([8, 8, 16, 32, 32]);
  });

  it('stops once, when every one of the first N failed the same way, naming the reason and what to do', () => {
    const stop = new EarlyStop(8);
    const lines = Array.from({ length: 12 }, (_, i) => stop.observe(failed('bad_request', `openai/m: request rejected (400): max_tokens is too large: 4096 > ${2048 + i}`, `q${i}`)));
    expect(lines.slice(0, 7)).toEqual(Array(7).fill(undefined));
    expect(lines[7]).toBe(
      "every one of the first 8 conversations failed the same way (bad_request): openai/m: request rejected (400): max_tokens is too large: 4096 > 2048; stopped before spending on the rest. The server rejects the requests: check the model's settings in the config (temperature, max_completion_tokens, headers) and the model name",
    );
    expect(lines.slice(8)).toEqual(Array(4).fill(undefined));
  });

  test.prop([fc.array(fc.constantFrom('ok', 'a', 'b', 'cut'), { minLength: 1, maxLength: 30 })])('stops only when the first N settled are all failures of one reason', (kinds) => {
    const stop = new EarlyStop(8);
    const outcomes = kinds.map((kind, i): Outcome => (kind === 'ok' ? succeeded : kind === 'cut' ? failed('aborted', 'request aborted', `c${i}`) : failed('server', `openai/m: server error: ${kind}`, `q${i}`)));
    const said = outcomes.map((outcome) => stop.observe(outcome));
    const settled = kinds.filter((k) => k !== 'cut').slice(0, 8);
    const expected = settled.length === 8 && (settled.every((k) => k === 'a') || settled.every((k) => k === 'b'));
    expect(said.filter((line) => line !== undefined)).toHaveLength(expected ? 1 : 0);
  });
});
