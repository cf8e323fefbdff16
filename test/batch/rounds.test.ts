// BatchRounds: calls gathered into rounds, cut into files per model, answered by custom id, retried next round, reused on resume.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchJournal, JOURNAL_FILE } from '../../src/batch/journal.js';
import { batchModel } from '../../src/batch/model.js';
import { BatchRounds } from '../../src/batch/rounds.js';
import { createSimBatchProvider } from '../../src/batch/simProvider.js';
import type { ChatModel, ChatRequest } from '../../src/chat.js';
import { ModelError } from '../../src/errors.js';
import { createSimModel } from '../../src/models/sim.js';
import { retryingCall } from '../../src/operators/retryingCall.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-rounds-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const request = (text: string, attempt = 1): ChatRequest => ({ module: 'assistant', messages: [{ role: 'user', content: text }], hints: { turn: 0 }, attempt });

async function roundsIn(resume: boolean, maxRequests = 50): Promise<{ rounds: BatchRounds; journal: BatchJournal; events: string[] }> {
  const journal = await BatchJournal.open(dir, resume);
  const events: string[] = [];
  const rounds = new BatchRounds({ limits: { maxRequests, maxBytes: 1e6 }, poll: { initialMs: 1, maxMs: 1, factor: 1, sleep: () => Promise.resolve() }, gatherMs: 1, onEvent: (line) => events.push(line) });
  rounds.start(journal);
  return { rounds, journal, events };
}

const journalEvents = async (): Promise<string[]> =>
  (await readFile(join(dir, JOURNAL_FILE), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { event: string }).event);

describe('BatchRounds', () => {
  it('gathers the calls of one moment into one round, one file per model within the limit, each answered as the model answers it', async () => {
    const { rounds, journal } = await roundsIn(false, 2);
    const provider = createSimBatchProvider();
    const a = createSimModel({ provider: 'sim', model: 'a' });
    const b = createSimModel({ provider: 'sim', model: 'b' });
    const create = vi.spyOn(provider, 'create');
    const models = { a: batchModel(rounds, provider, { provider: 'sim', model: 'a', lengthParam: 'max_tokens' }, a), b: batchModel(rounds, provider, { provider: 'sim', model: 'b', lengthParam: 'max_tokens' }, b) };
    const calls = [...['1', '2', '3', '4', '5'].map((t) => ['a', t] as const), ...['6', '7'].map((t) => ['b', t] as const)];
    const signal = new AbortController().signal;
    const answers = await Promise.all(calls.map(([m, t]) => models[m].complete(request(`question ${t}`), signal)));
    const direct = await Promise.all(calls.map(([m, t]) => (m === 'a' ? a : b).complete(request(`question ${t}`), signal)));
    expect(answers).toEqual(direct);
    expect(rounds.figures).toMatchObject({ round: 1, submitted: 7, done: 7 });
    // a: 5 requests in files of 2 → 3 batches; b: 2 → 1.
    expect(create).toHaveBeenCalledTimes(4);
    await journal.close();
    expect((await journalEvents()).filter((event) => event === 'downloaded')).toHaveLength(4);
  });

  it('sends a failed request again in the next round, under the call\'s retry rules (a new attempt, a new custom id)', async () => {
    const { rounds, journal } = await roundsIn(false);
    const attempts: number[] = [];
    const flaky: ChatModel = {
      provider: 'sim',
      model: 'flaky',
      complete: (req) => {
        attempts.push(req.attempt ?? 1);
        return (req.attempt ?? 1) < 3 ? Promise.reject(new ModelError('server', 'upstream 502', { status: 502 })) : Promise.resolve({ content: 'fine', usage: { input: 3, output: 1 } });
      },
    };
    const model = batchModel(rounds, createSimBatchProvider(), { provider: 'sim', model: 'flaky', lengthParam: 'max_tokens' }, flaky);
    const usage = vi.fn();
    const response = await firstValueFrom(retryingCall({ maxRetries: 3, retryDelayMs: 0, onUsage: usage })(model, request('hello')));
    expect(response.content).toBe('fine');
    expect(attempts).toEqual([1, 2, 3]);
    expect(rounds.figures).toMatchObject({ round: 3, submitted: 3 });
    expect(usage).toHaveBeenCalledTimes(1);
    await journal.close();
  });

  it('does not retry a permanent failure: the call fails after its one round', async () => {
    const { rounds, journal } = await roundsIn(false);
    const refusing: ChatModel = { provider: 'sim', model: 'no', complete: () => Promise.reject(new ModelError('bad_request', 'bad', { status: 400 })) };
    const model = batchModel(rounds, createSimBatchProvider(), { provider: 'sim', model: 'no', lengthParam: 'max_tokens' }, refusing);
    await expect(firstValueFrom(retryingCall({ maxRetries: 3, retryDelayMs: 0 })(model, request('hello')))).rejects.toMatchObject({ kind: 'bad_request', status: 400 });
    expect(rounds.figures.round).toBe(1);
    await journal.close();
  });

  it('on resume, answers a call from the results an earlier run downloaded, with no new batch', async () => {
    const sim = createSimModel({ provider: 'sim', model: 'a' });
    const first = await roundsIn(false);
    const signal = new AbortController().signal;
    const paid = await batchModel(first.rounds, createSimBatchProvider(), { provider: 'sim', model: 'a', lengthParam: 'max_tokens' }, sim).complete(request('once'), signal);
    first.rounds.close();
    await first.journal.close();
    const again = await roundsIn(true);
    const provider = createSimBatchProvider();
    const create = vi.spyOn(provider, 'create');
    const replayed = await batchModel(again.rounds, provider, { provider: 'sim', model: 'a', lengthParam: 'max_tokens' }, sim).complete(request('once'), signal);
    expect(replayed).toEqual(paid);
    expect(create).not.toHaveBeenCalled();
    expect(again.rounds.figures).toMatchObject({ reused: 1, submitted: 0, round: 1 });
    await again.journal.close();
  });

  it('on resume, submits again the requests of a batch the provider does not know, and records it settled', async () => {
    const first = await BatchJournal.open(dir, false);
    await first.record({ event: 'created', provider: 'sim', file_id: 'file-sim-1', batch_id: 'batch_sim_gone', at: new Date().toISOString() });
    await first.close();
    const { rounds, journal, events } = await roundsIn(true);
    const provider = createSimBatchProvider();
    const create = vi.spyOn(provider, 'create');
    const sim = createSimModel({ provider: 'sim', model: 'a' });
    const answer = await batchModel(rounds, provider, { provider: 'sim', model: 'a', lengthParam: 'max_tokens' }, sim).complete(request('again'), new AbortController().signal);
    expect(answer).toEqual(await sim.complete(request('again'), new AbortController().signal));
    expect(create).toHaveBeenCalledTimes(1);
    expect(events.filter((line) => line.startsWith('batch: '))).toEqual(['batch: reattaching to 1 batch(es) an earlier run left in flight', 'batch: cannot reattach to batch_sim_gone: sim batch API: no batch batch_sim_gone; its requests are submitted again']);
    await journal.close();
    const again = await BatchJournal.open(dir, true);
    expect(again.unsettled).toEqual([]);
    await again.close();
  });

  it('drops a call aborted while it gathers: it is rejected as aborted and never submitted', async () => {
    const { rounds, journal } = await roundsIn(false);
    const provider = createSimBatchProvider();
    const upload = vi.spyOn(provider, 'upload');
    const model = batchModel(rounds, provider, { provider: 'sim', model: 'a', lengthParam: 'max_tokens' }, createSimModel({ provider: 'sim', model: 'a' }));
    const controller = new AbortController();
    const call = model.complete(request('never'), controller.signal);
    controller.abort();
    await expect(call).rejects.toMatchObject({ kind: 'aborted' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(upload).not.toHaveBeenCalled();
    await journal.close();
  });
});
