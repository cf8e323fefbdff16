import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { createSimModel } from '../../src/models/sim.js';
import type { ChatRequest } from '../../src/chat.js';

const signal = () => new AbortController().signal;
const ask = (content: string, module: ChatRequest['module'] = 'assistant'): ChatRequest => ({ module, messages: [{ role: 'user', content }] });

describe('sim provider', () => {
  test.prop([fc.string(), fc.string({ minLength: 1 })])('answers the same request the same way, whatever its seed', async (content, model) => {
    const a = await createSimModel({ provider: 'sim', model }, { seed: 1 }).complete(ask(content), signal());
    const b = await createSimModel({ provider: 'sim', model }, { seed: 2 }).complete(ask(content), signal());
    expect(a).toEqual(b);
    expect(a.content.length).toBeGreaterThan(0);
    expect(a.usage.output).toBeGreaterThan(0);
  });

  it('names the model in assistant replies, so pool locking is visible', async () => {
    const reply = await createSimModel({ provider: 'sim', model: 'gpt-4o-mini' }).complete(ask('explain rust lifetimes'), signal());
    expect(reply.content).toContain('(gpt-4o-mini)');
  });

  it('plays a user that follows up in the persona style, never stops before min_turns, and ends with the stop signal on its last line', async () => {
    const model = createSimModel({ provider: 'sim', model: 'u' });
    const hints = { persona: { communication_style: 'casual' }, turn: 1, minTurns: 5, stopToken: '###STOP###', originalQuery: 'dedupe a csv by email' };
    const followUp = await model.complete({ ...ask('answer', 'user_simulator'), hints }, signal());
    expect(followUp.content).not.toContain('###STOP###');
    expect(followUp.content).toBe(followUp.content.toLowerCase());
    // Its request needs at most four answers: by min_turns 5 it is done.
    const done = await model.complete({ ...ask('answer', 'user_simulator'), hints: { ...hints, turn: 5 } }, signal());
    expect(done.content).toMatch(/(^|\n)###STOP###$/);
  });

  it('injects the configured faults as ModelErrors', async () => {
    const model = createSimModel({ provider: 'sim', model: 'm' }, { faults: { rate_limit: 1 }, retryAfterMs: 7 });
    const error = await model.complete(ask('x'), signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelError);
    expect(error).toMatchObject({ kind: 'rate_limit', status: 429, retryAfterMs: 7 });
  });

  it('aborts a delayed call', async () => {
    const controller = new AbortController();
    const pending = createSimModel({ provider: 'sim', model: 'm' }, { latencyMs: 10_000 }).complete(ask('x'), controller.signal);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ kind: 'aborted' });
  });
});
