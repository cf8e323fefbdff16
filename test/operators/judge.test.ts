// judge: every finished conversation judged in the stream, its verdict and the judge's tokens in its metadata, or a failure record; never passed unjudged.
import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { NEVER, Observable, Subject, concat, from, lastValueFrom, of, take, tap, toArray } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import type { ModelOperation, ModelRef, TokenUsage } from '../../src/chat.js';
import { FatalError, ModelError } from '../../src/errors.js';
import { NearDuplicates } from '../../src/judge/duplicates.js';
import { createJudge, type Quality } from '../../src/judge/judge.js';
import { judge, type JudgeOperatorOptions } from '../../src/operators/judge.js';
import { DEFAULT_JUDGE_TEMPLATE } from '../../src/prompts/judge.js';
import type { Failure, Interaction, Outcome, Task } from '../../src/types.js';
import { JUDGED } from '../fixtures/judged-conversations.js';
import { task } from '../helpers/fixtures.js';
import { ListModel, gate, review, type Step } from '../judge/scripted.js';

const TEMPLATE = readFileSync(DEFAULT_JUDGE_TEMPLATE, 'utf8');
const NOW = new Date('2025-06-01T12:00:00.000Z');

const conversation = (id: string): Interaction => {
  const found = JUDGED.find((entry) => entry.id === id)?.conversation;
  if (found === undefined) throw new Error(`no ${id} in the fixture`);
  return found;
};
const CLEAN = JUDGED.filter((entry) => entry.label === 'clean').map((entry) => entry.conversation);
const ok = (interaction: Interaction, extra: { task?: Task } = {}): Outcome => ({ ok: true, interaction, ...extra });

function options(model: ListModel, overrides: Partial<JudgeOperatorOptions> & { validationRetries?: number } = {}): JudgeOperatorOptions {
  const { validationRetries = 2, ...rest } = overrides;
  return { judge: createJudge({ reviewer: { model, validationRetries }, template: TEMPLATE }), concurrency: 4, maxRetries: 2, retryDelayMs: 0, now: () => NOW, ...rest };
}

const run = (outcomes: Observable<Outcome> | Outcome[], opts: JudgeOperatorOptions): Promise<Outcome[]> => lastValueFrom((Array.isArray(outcomes) ? from(outcomes) : outcomes).pipe(judge(opts), toArray()));

const qualityOf = (outcome: Outcome | undefined): Quality | undefined => (outcome?.ok === true ? (outcome.interaction.metadata.quality as Quality) : undefined);
const failureOf = (outcome: Outcome | undefined): Failure | undefined => (outcome?.ok === false ? outcome.failure : undefined);

describe('judge', () => {
  it('emits nothing for an empty source', async () => {
    const model = new ListModel([review()]);
    expect(await run([], options(model))).toEqual([]);
    expect(model.requests).toHaveLength(0);
  });

  it('puts the verdict in metadata.quality and the judge’s tokens in metadata.usage.judge, and tells onUsage exactly what the model returned', async () => {
    const model = new ListModel(['I accept this one.', review()]);
    const told: [string, ModelRef, TokenUsage, { operation: ModelOperation; failed: boolean }][] = [];
    const interaction = conversation('clean/tomato-blight');
    const [outcome] = await run([ok(interaction)], options(model, { onUsage: (...args) => told.push(args) }));
    expect(qualityOf(outcome)).toMatchObject({ verdict: 'accept', reasons: [], review: { judge_model: { provider: 'scripted', model: 'judge-1' } } });
    const usage = outcome?.ok === true ? outcome.interaction.metadata.usage : undefined;
    // The conversation's own usage is kept; the judge's is added under its module.
    expect(usage).toEqual({
      ...interaction.metadata.usage,
      judge: { calls: 2, input_tokens: ListModel.usageOf(1).input + ListModel.usageOf(2).input, output_tokens: ListModel.usageOf(1).output + ListModel.usageOf(2).output },
    });
    expect(told).toEqual([
      ['judge', { provider: 'scripted', model: 'judge-1' }, ListModel.usageOf(1), { operation: 'review', failed: false }],
      ['judge', { provider: 'scripted', model: 'judge-1' }, ListModel.usageOf(2), { operation: 'validation_retry', failed: false }],
    ]);
    // Nothing else of the interaction changes, and the input is not mutated.
    expect(outcome?.ok === true && { ...outcome.interaction, metadata: { ...outcome.interaction.metadata, quality: undefined, usage: undefined } }).toEqual({ ...interaction, metadata: { ...interaction.metadata, quality: undefined, usage: undefined } });
    expect(interaction.metadata).not.toHaveProperty('quality');
    expect(interaction.metadata.usage).not.toHaveProperty('judge');
  });

  it('shows the judge the facts recorded with the interaction', async () => {
    const model = new ListModel([review()]);
    await run([ok(conversation('hallucination/tap-bag-and-date'))], options(model));
    expect(model.requests[0]?.messages[0]?.content).toContain('- Flying Madrid to Lisbon with TAP on 14 June\n- Has one carry-on bag only');
  });

  it.each([0, 1, 3])('turns a conversation whose judge answers are rejected every time (validationRetries %i) into a failure record, never an accepted interaction', async (validationRetries) => {
    const model = new ListModel(['The conversation is fine.']);
    const interaction = conversation('clean/knitting-gauge');
    const t = task({ personaId: interaction.persona_id, queryId: interaction.metadata.query_id });
    const rejections = [{ interaction_id: interaction.interaction_id, persona_id: interaction.persona_id, query_id: interaction.metadata.query_id, turn: 1, attempt: 0, reason: 'echo', text: 'x', time: NOW.toISOString() }];
    const outcomes = await run([{ ok: true, interaction, task: t, rejections }], options(model, { validationRetries }));
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toEqual({
      ok: false,
      failure: {
        persona_id: interaction.persona_id,
        query_id: interaction.metadata.query_id,
        interaction_id: interaction.interaction_id,
        attempts: validationRetries + 1,
        error: { kind: 'judge', message: `judge answer rejected ${validationRetries + 1} time(s), last: no JSON object` },
        assistant_model: interaction.metadata.assistant_model,
        user_model: interaction.metadata.user_model,
        time: NOW.toISOString(),
        usage: { ...interaction.metadata.usage, judge: expect.objectContaining({ calls: validationRetries + 1 }) },
      },
      task: t,
      rejections,
    });
    expect(model.requests).toHaveLength(validationRetries + 1);
  });

  it('retries a transient model error at that call, then judges', async () => {
    const model = new ListModel([new ModelError('server', 'server error (503)', { status: 503 }), review()]);
    const retried: unknown[] = [];
    const [outcome] = await run([ok(CLEAN[0] as Interaction)], options(model, { onRetry: (module, error) => retried.push([module, (error as Error).message]) }));
    expect(qualityOf(outcome)?.verdict).toBe('accept');
    expect(retried).toEqual([['judge', 'server error (503)']]);
    expect(model.requests.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('records a failure with kind judge and the attempts of the failing call when retries run out, and judges the rest', async () => {
    const model = new ListModel((request) => (request.messages[0]?.content.includes('tomato') === true ? new ModelError('server', 'server error (503)', { status: 503 }) : review()));
    const outcomes = await run([ok(conversation('clean/tomato-blight')), ok(conversation('clean/knitting-gauge'))], options(model, { maxRetries: 2, concurrency: 1 }));
    expect(failureOf(outcomes[0])).toMatchObject({ attempts: 3, error: { kind: 'judge', message: 'server error (503)' } });
    expect(qualityOf(outcomes[1])?.verdict).toBe('accept');
  });

  it('counts the attempts of the call that failed, not those of the calls before it', async () => {
    const down = new ModelError('server', 'server error (503)', { status: 503 });
    // The review: a 503, then prose (rejected); the re-ask: three 503s.
    const model = new ListModel([down, 'Fine by me.', down, down, down]);
    const [outcome] = await run([ok(CLEAN[0] as Interaction)], options(model, { maxRetries: 2 }));
    expect(model.requests).toHaveLength(5);
    expect(failureOf(outcome)).toMatchObject({ attempts: 3, error: { kind: 'judge', message: 'server error (503)' } });
  });

  it('ends the run on a bad key: the stream errors with a FatalError', async () => {
    const model = new ListModel([new ModelError('auth', 'authentication failed (401)', { status: 401 })]);
    const error: unknown = await run([ok(CLEAN[0] as Interaction), ok(CLEAN[1] as Interaction)], options(model, { concurrency: 1 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toMatchInlineSnapshot(`"authentication failed (401)"`);
  });

  it('ends the run on an endpoint still unreachable after its retries, saying how many attempts it took', async () => {
    const model = new ListModel([new ModelError('unreachable', 'connection refused (127.0.0.1:9)')]);
    const error: unknown = await run([ok(CLEAN[0] as Interaction)], options(model, { maxRetries: 2 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toMatchInlineSnapshot(`"connection refused (127.0.0.1:9); still unreachable after 3 attempt(s)"`);
  });

  it('passes failures on untouched, without asking the model', async () => {
    const model = new ListModel([review()]);
    const failed: Outcome = { ok: false, failure: { persona_id: 'p', query_id: 'q', interaction_id: 'i', attempts: 3, error: { kind: 'server', message: 'down' }, assistant_model: { provider: 'a', model: 'b' }, user_model: { provider: 'a', model: 'c' }, time: NOW.toISOString(), usage: {} } };
    const outcomes = await run([failed, ok(CLEAN[0] as Interaction)], options(model, { concurrency: 1 }));
    expect(outcomes[0]).toBe(failed);
    expect(model.requests).toHaveLength(1);
  });

  it('judges many, no more than `concurrency` at once', async () => {
    const model = new ListModel(() => () => new Promise<string>((resolve) => setTimeout(() => resolve(review()), 5)));
    const outcomes = await run(CLEAN.slice(0, 10).map((interaction) => ok(interaction)), options(model, { concurrency: 3 }));
    expect(outcomes.map((o) => o.ok && o.interaction.interaction_id).sort()).toEqual(CLEAN.slice(0, 10).map((i) => i.interaction_id).sort());
    expect(model.maxInFlight).toBe(3);
  });

  it('passes a source error through after the outcomes before it', async () => {
    const boom = new Error('reader failed');
    const reader = new Subject<Outcome>();
    const seen: Outcome[] = [];
    const source = concat(of(ok(CLEAN[0] as Interaction)), reader);
    const model = new ListModel([review()]);
    await expect(lastValueFrom(source.pipe(judge(options(model, { concurrency: 1 })), tap((o) => (seen.push(o), reader.error(boom)))))).rejects.toBe(boom);
    expect(seen).toHaveLength(1);
  });

  it('works on a never-ending source', async () => {
    const outcomes = new Subject<Outcome>();
    const result = lastValueFrom(concat(outcomes, NEVER).pipe(judge(options(new ListModel([review()]))), take(2), toArray()));
    outcomes.next(ok(CLEAN[0] as Interaction));
    outcomes.next(ok(CLEAN[1] as Interaction));
    expect((await result).map(qualityOf).map((q) => q?.verdict)).toEqual(['accept', 'accept']);
  });

  it('aborts the calls in flight on unsubscribe', async () => {
    const model = new ListModel(() => () => new Promise<string>(() => undefined));
    const subscription = from(CLEAN.slice(0, 2).map((interaction) => ok(interaction))).pipe(judge(options(model))).subscribe();
    await vi.waitFor(() => expect(model.requests).toHaveLength(2));
    subscription.unsubscribe();
    expect(model.aborts).toBe(2);
  });

  it('stops a synchronous source on early unsubscribe', async () => {
    let emitted = 0;
    const endless = new Observable<Outcome>((subscriber) => {
      while (!subscriber.closed) {
        emitted += 1;
        subscriber.next(ok(CLEAN[emitted % CLEAN.length] as Interaction));
      }
    });
    const outcomes = await lastValueFrom(endless.pipe(judge({ judge: createJudge({ template: TEMPLATE }), concurrency: 2, maxRetries: 0, retryDelayMs: 0 }), take(3), toArray()));
    expect(outcomes).toHaveLength(3);
    expect(emitted).toBe(3);
  });

  test.prop([fc.scheduler(), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 4 })])(
    'rejects as near-duplicates exactly the conversations that repeat an earlier arrival, whatever order the reviews complete in',
    async (s, picks, concurrency) => {
      const arrivals = picks.map((pick, i): Interaction => {
        const base = CLEAN[pick] as Interaction;
        return { ...base, persona_id: 'one', interaction_id: `arrival_${i}`, metadata: { ...base.metadata, query_id: `q${i}` } };
      });
      const model = new ListModel(() => () => s.schedule(Promise.resolve(review()), 'review'));
      const outcomes = await s.waitFor(run(arrivals.map((interaction) => ok(interaction)), options(model, { concurrency, duplicates: new NearDuplicates() })));
      const rejected = new Map(outcomes.map((o) => [o.ok ? o.interaction.interaction_id : '', qualityOf(o)?.reasons.includes('near_duplicate')]));
      expect(arrivals.map((a) => rejected.get(a.interaction_id))).toEqual(picks.map((pick, i) => picks.slice(0, i).includes(pick)));
    },
  );

  it('isolates a throwing callback to its conversation: a failure record, and the others judged', async () => {
    const model = new ListModel([review()]);
    let calls = 0;
    const onUsage = () => {
      calls += 1;
      if (calls === 1) throw new Error('stats callback broke');
    };
    const outcomes = await run(CLEAN.slice(0, 2).map((interaction) => ok(interaction)), options(model, { concurrency: 1, onUsage }));
    expect(failureOf(outcomes[0])).toMatchObject({ error: { kind: 'judge', message: 'stats callback broke' } });
    expect(qualityOf(outcomes[1])?.verdict).toBe('accept');
  });

  it('rejects the later of two near-duplicates of a persona, in arrival order even when the earlier is judged last', async () => {
    const first = conversation('clean/flat-sourdough-summer');
    const copy: Interaction = { ...first, interaction_id: `${first.interaction_id}_copy`, metadata: { ...first.metadata, query_id: 'q_copy' } };
    const slow = gate();
    const steps: Step[] = [() => slow.promise, review()];
    const model = new ListModel(steps);
    const done: string[] = [];
    const result = lastValueFrom(from([ok(first), ok(copy)]).pipe(judge(options(model, { duplicates: new NearDuplicates() })), tap((o) => done.push(o.ok ? o.interaction.interaction_id : 'failure')), toArray()));
    await vi.waitFor(() => expect(done).toEqual([copy.interaction_id]));
    slow.open(review());
    const outcomes = await result;
    const byId = new Map(outcomes.map((o) => [o.ok ? o.interaction.interaction_id : '', o]));
    expect(qualityOf(byId.get(first.interaction_id))).toMatchObject({ verdict: 'accept', checks: [] });
    expect(qualityOf(byId.get(copy.interaction_id))).toMatchObject({ verdict: 'reject', reasons: ['near_duplicate'], checks: [{ tag: 'near_duplicate', turn: 0, detail: `nearly repeats ${first.interaction_id} (similarity 1.00)` }] });
  });

  it('signs the user turns after the opening for near-duplicates, a system message first or not', async () => {
    const opening = 'I run a small bakery and want a simple way to track which breads sell out each day and how much flour we use each week, with a sheet we can start on Monday';
    const line = (id: string, followUp: string): Interaction =>
      ({
        interaction_id: id,
        persona_id: 'baker',
        persona_features: {},
        messages: [
          { role: 'system', content: 'You are a helpful assistant.', metadata: {} },
          { role: 'user', content: opening, metadata: {} },
          { role: 'assistant', content: 'One sheet per week: date, bread, baked, sold, left over.', metadata: {} },
          { role: 'user', content: followUp, metadata: {} },
          { role: 'assistant', content: 'Add a column for it.', metadata: {} },
        ],
        num_turns: 2,
        metadata: { query_id: id, usage: {} },
      }) as unknown as Interaction;
    const checksOnly = { judge: createJudge({ template: TEMPLATE }), concurrency: 1, maxRetries: 0, retryDelayMs: 0, duplicates: new NearDuplicates() };
    const outcomes = await run([ok(line('a', 'ok and the flour')), ok(line('b', 'what about the rye loaves')), ok(line('c', 'ok and the flour'))], checksOnly);
    expect(outcomes.map((o) => qualityOf(o)?.reasons)).toEqual([[], [], ['near_duplicate']]);
  });

  it('runs the checks alone with a judge that has no reviewer: no call, no judge usage', async () => {
    const interaction = conversation('truncated_answer/ww1-causes-cut');
    const [outcome] = await run([ok(interaction)], { judge: createJudge({ template: TEMPLATE }), concurrency: 1, maxRetries: 0, retryDelayMs: 0 });
    expect(qualityOf(outcome)).toMatchObject({ verdict: 'reject', reasons: ['truncated_answer'], review: null });
    expect(outcome?.ok === true && outcome.interaction.metadata.usage).toEqual(interaction.metadata.usage);
  });

  it('checks its options up front', () => {
    const model = new ListModel([]);
    expect(() => judge(options(model, { concurrency: 0 }))).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`concurrency\` to be a positive integer, got \`0\`]`);
    expect(() => judge(options(model, { concurrency: 1.5 }))).toThrow(TypeError);
  });
});
