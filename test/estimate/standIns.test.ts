// The estimate's stand-in models: sim answers, and each call is counted as the real model would bill it, at the end of the range asked for.
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import type { ChatMessage, ChatModel, ChatRequest } from '../../src/chat.js';
import { StandIns, UNCAPPED_TOKENS } from '../../src/estimate/standIns.js';
import { ModelError } from '../../src/errors.js';
import { createSimModel } from '../../src/models/sim.js';
import { parseJudgeAnswer } from '../../src/prompts/judge.js';

const signal = new AbortController().signal;
const ask = (model: ChatModel, request: ChatRequest) => model.complete(request, signal);
const spec = (model: string, maxCompletionTokens?: number, provider = 'openai') => ({ provider, model, maxCompletionTokens });

/** What OpenAI's chat format bills for these messages with o200k_base: 3 per message and 3 to prime the reply. */
const billed = (messages: readonly ChatMessage[]): number => 3 + messages.reduce((sum, m) => sum + 3 + o200k(m.content), 0);

async function standInsFor(...models: Parameters<StandIns['model']>[0][]): Promise<{ standIns: StandIns; models: ChatModel[] }> {
  const standIns = new StandIns({ replyTokens: 250, judgeRetries: 2 });
  const made = models.map((m) => standIns.model(m));
  await standIns.ready();
  return { standIns, models: made };
}

describe('StandIns', () => {
  it('counts each model with its tokenizer: o200k_base, cl100k_base, characters / 4, or sim\'s own count', async () => {
    const { standIns } = await standInsFor(spec('gpt-4o-mini'), spec('gpt-4'), spec('anthropic/claude-haiku-4.5', undefined, 'openrouter'), spec('gpt-4o-mini', undefined, 'sim'));
    expect(Object.fromEntries(standIns.counting)).toEqual({ 'openai/gpt-4o-mini': 'o200k_base', 'openai/gpt-4': 'cl100k_base', 'openrouter/anthropic/claude-haiku-4.5': 'chars/4', 'sim/gpt-4o-mini': 'sim' });
  });

  it('keeps the configured provider and model, so usage is counted under them', async () => {
    const { models } = await standInsFor(spec('gpt-4.1-mini'));
    expect({ provider: models[0]!.provider, model: models[0]!.model }).toEqual({ provider: 'openai', model: 'gpt-4.1-mini' });
  });

  it('bills the assistant its typical reply (low) or its cap (high), and every later prompt carries the reply at that length', async () => {
    const { standIns, models } = await standInsFor(spec('gpt-4o-mini', 1024), spec('gpt-4o-mini', undefined));
    const [capped, uncapped] = models as [ChatModel, ChatModel];
    const opening: ChatMessage[] = [{ role: 'system', content: 'You are a helpful AI assistant.' }, { role: 'user', content: 'how do i dedupe a csv by email' }];
    const first = await ask(capped, { module: 'assistant', messages: opening, maxCompletionTokens: 1024 });
    expect(first.usage).toEqual({ input: billed(opening), output: 250 });
    // The transcript holds sim's short reply; the next prompt is billed as if it held 250 tokens there.
    const next: ChatMessage[] = [...opening, { role: 'assistant', content: first.content }, { role: 'user', content: 'ok but what about duplicates with different case' }];
    const second = await ask(capped, { module: 'assistant', messages: next, maxCompletionTokens: 1024 });
    expect(second.usage.input).toBe(billed(opening) + 3 + 250 + 3 + o200k('ok but what about duplicates with different case'));
    // Inside a longer message (the simulator's closing reminder, the judge's transcript) as well.
    const inside: ChatMessage[] = [{ role: 'user', content: `${first.content}\n\n(Reminder: you are the user.)` }];
    const around = o200k(`${first.content}\n\n(Reminder: you are the user.)`) - o200k(first.content);
    expect(Math.abs((await ask(capped, { module: 'assistant', messages: inside })).usage.input - (3 + 3 + 250 + around))).toBeLessThanOrEqual(2);
    standIns.scenario = 'high';
    expect((await ask(capped, { module: 'assistant', messages: opening, maxCompletionTokens: 1024 })).usage.output).toBe(1024);
    expect((await ask(uncapped, { module: 'assistant', messages: opening })).usage.output).toBe(UNCAPPED_TOKENS);
    standIns.scenario = 'low';
    // A cap below the typical reply wins.
    expect((await ask(capped, { module: 'assistant', messages: opening, maxCompletionTokens: 60 })).usage.output).toBe(60);
  });

  it('the simulated user stops as soon as it may at the low end, and never stops first at the high end', async () => {
    const { standIns, models } = await standInsFor(spec('gpt-4.1-nano', 256));
    const user = models[0]!;
    const at = (turn: number): ChatRequest => ({ module: 'user_simulator', messages: [{ role: 'system', content: 'You are role-playing a human user.' }, { role: 'user', content: 'Sure. On email: start small.' }], maxCompletionTokens: 256, hints: { turn, minTurns: 2, stopToken: '###STOP###', originalQuery: 'dedupe a csv by email', persona: { communication_style: 'casual' } } });
    expect((await ask(user, at(1))).content).not.toContain('###STOP###');
    const stop = await ask(user, at(2));
    expect(stop.content).toBe('###STOP###');
    expect(stop.usage.output).toBe(o200k('###STOP###'));
    standIns.scenario = 'high';
    for (const turn of [2, 3, 7]) {
      const reply = await ask(user, at(turn));
      expect(reply.content).not.toContain('###STOP###');
      expect(reply.usage.output).toBe(256);
    }
  });

  it('has the judge asked again as often as it may at the high end, and answered at once at the low end', async () => {
    const { standIns, models } = await standInsFor(spec('gpt-4.1-mini', 1024));
    const judge = models[0]!;
    const request = (prompt: string): ChatRequest => ({ module: 'judge', messages: [{ role: 'user', content: prompt }], maxCompletionTokens: 1024, hints: { judge: { checks: [], key: prompt } } });
    expect(parseJudgeAnswer((await ask(judge, request('You review one conversation: A'))).content).ok).toBe(true);
    standIns.scenario = 'high';
    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(parseJudgeAnswer((await ask(judge, request('You review one conversation: B'))).content).ok);
    expect(answers).toEqual([false, false, true]);
    // Another conversation's review starts again.
    expect(parseJudgeAnswer((await ask(judge, request('You review one conversation: C'))).content).ok).toBe(false);
    // reset() forgets the asks of the last rendering.
    standIns.reset();
    expect(parseJudgeAnswer((await ask(judge, request('You review one conversation: B'))).content).ok).toBe(false);
  });

  it('bills a helper what sim writes (low) or its cap (high)', async () => {
    const { standIns, models } = await standInsFor(spec('gpt-4o-mini', 1024));
    const request: ChatRequest = { module: 'style_transfer', messages: [{ role: 'user', content: 'You rewrite a request from a dataset.' }], maxCompletionTokens: 1024, hints: { styleTransfer: { query: 'How do I dedupe a CSV?', targetLength: 'short' }, persona: {} } };
    const low = await ask(models[0]!, request);
    expect(low.usage.output).toBe(o200k(low.content));
    standIns.scenario = 'high';
    expect((await ask(models[0]!, request)).usage.output).toBe(1024);
  });

  it('a sim model answers and counts as sim does: the run will call it', async () => {
    const { standIns, models } = await standInsFor(spec('gpt-4o-mini', 1024, 'sim'));
    const sim = createSimModel({ provider: 'sim', model: 'gpt-4o-mini' });
    const request: ChatRequest = { module: 'assistant', messages: [{ role: 'system', content: 'You are a helpful AI assistant.' }, { role: 'user', content: 'how do i dedupe a csv by email' }] };
    for (const scenario of ['low', 'high'] as const) {
      standIns.scenario = scenario;
      const [got, want] = await Promise.all([ask(models[0]!, request), ask(sim, request)]);
      expect(got).toEqual(want);
    }
  });

  it('rejects an aborted call, and options that make no sense', async () => {
    const { models } = await standInsFor(spec('gpt-4o-mini'));
    const controller = new AbortController();
    controller.abort();
    await expect(models[0]!.complete({ module: 'assistant', messages: [] }, controller.signal)).rejects.toBeInstanceOf(ModelError);
    expect(() => new StandIns({ replyTokens: 0, judgeRetries: 2 })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`replyTokens\` to be a positive integer, got \`0\`]`);
    expect(() => new StandIns({ replyTokens: 10, judgeRetries: -1 })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`judgeRetries\` to be a non-negative integer, got \`-1\`]`);
  });

  it('says so when a tokenizer is asked for before ready()', async () => {
    const standIns = new StandIns({ replyTokens: 10, judgeRetries: 0 });
    const model = standIns.model(spec('gpt-4o-mini'));
    await expect(ask(model, { module: 'assistant', messages: [{ role: 'user', content: 'hi' }] })).rejects.toThrow(/o200k_base tokenizer is not loaded/);
  });
});
