import { fc, test } from '@fast-check/vitest';
import { NEVER, Subject, concat, from, lastValueFrom, of, take, tap, toArray, type Observable } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { FatalError, ModelError } from '../../src/errors.js';
import { lockModel } from '../../src/operators/lockModel.js';
import { converse, type ConverseOptions } from '../../src/operators/converse.js';
import { createPool } from '../../src/models/pool.js';
import { createSimModel } from '../../src/models/sim.js';
import type { ChatModel } from '../../src/chat.js';
import { strategyFileSchema } from '../../src/config/schema.js';
import { createDistractor, type DistractorOptions } from '../../src/distractor/distractor.js';
import type { Interaction, LockedTask, Outcome, Task } from '../../src/types.js';
import { USER_TEMPLATE, hanging, locked, scripted, simPool, task } from '../helpers/fixtures.js';

const STOP = '###STOP###';

function options(overrides: Partial<ConverseOptions> & { userModel?: ChatModel } = {}): ConverseOptions {
  const { userModel, ...rest } = overrides;
  return {
    pool: simPool(['sim-a', 'sim-b', 'sim-c']),
    user: { model: userModel ?? createSimModel({ provider: 'sim', model: 'user-sim' }), template: USER_TEMPLATE, feedbackProbability: 0.85 },
    seed: 1,
    minTurns: 2,
    maxTurns: 5,
    concurrency: 4,
    maxRetries: 2,
    retryDelayMs: 0,
    ...rest,
  };
}

const run = (tasks: Observable<LockedTask> | LockedTask[], opts: ConverseOptions): Promise<Outcome[]> =>
  lastValueFrom((Array.isArray(tasks) ? from(tasks) : tasks).pipe(converse(opts), toArray()));

const interactions = (outcomes: Outcome[]): Interaction[] => outcomes.flatMap((o) => (o.ok ? [o.interaction] : []));

/** The interaction without wall-clock fields, for comparisons across runs. */
function timeless(interaction: Interaction): unknown {
  const { created_at: _created, ...metadata } = interaction.metadata;
  return { ...interaction, metadata, messages: interaction.messages.map(({ timestamp: _t, ...m }) => m) };
}

/** Requests as people write them: a few words from a small vocabulary (an arbitrary string is no request, and the guards reject what sim makes of one). */
const arbQuery = fc.array(fc.constantFrom('how', 'do', 'i', 'plan', 'a', 'trip', 'to', 'rome', 'fix', 'my', 'python', 'script', 'budget', 'for', 'the', 'week', 'write', 'cover', 'letter', 'csv', 'export'), { minLength: 1, maxLength: 9 }).map((words) => words.join(' '));

const arbTasks = fc
  .uniqueArray(fc.tuple(fc.stringMatching(/^[a-z0-9_]{1,8}$/), fc.integer({ min: 1, max: 8 }), arbQuery), {
    minLength: 0,
    maxLength: 12,
    selector: ([id]) => id,
  })
  .map((rows) => rows.map(([id, target, query]): Task => task({ personaId: id, queryId: 'q', key: `${id}/q`, targetTurns: target, originalQuery: query, initialQuery: query })));

describe('converse', () => {
  it('emits nothing for an empty source', async () => {
    expect(await run([], options())).toEqual([]);
  });

  it('turns one task into one interaction in PersonaGym format', async () => {
    const [outcome] = await run([locked(task())], options({ pool: simPool(['sim-a']) }));
    expect(outcome?.ok).toBe(true);
    const interaction = (outcome as { interaction: Interaction }).interaction;
    expect(interaction.interaction_id).toBe('interaction_p1_q1');
    expect(interaction.messages[0]).toMatchObject({ role: 'user', content: 'how do i dedupe a csv by email', metadata: { turn: 0, is_initial: true } });
    expect(interaction.metadata).toMatchObject({ query_id: 'q1', assistant_model: { provider: 'sim', model: 'sim-a' }, distractor_applied: false, total_messages: interaction.messages.length });
    expect(interaction.metadata.usage.assistant?.calls).toBe(interaction.num_turns);
  });

  test.prop([arbTasks, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer()], { numRuns: 40 })(
    'keeps turns within bounds, alternates roles and locks the model',
    async (tasks, minTurns, extra, feedbackProbability, seed) => {
      const opts = options({ minTurns, maxTurns: minTurns + extra, seed, user: { ...options().user, feedbackProbability } });
      const outcomes = await lastValueFrom(from(tasks).pipe(lockModel(opts.pool, seed), converse(opts), toArray()));
      expect(outcomes).toHaveLength(tasks.length);
      expect(outcomes.filter((o) => !o.ok)).toEqual([]);
      for (const interaction of interactions(outcomes)) {
        const { messages, num_turns: turns } = interaction;
        expect(turns).toBeGreaterThanOrEqual(minTurns);
        expect(turns).toBeLessThanOrEqual(minTurns + extra);
        // Alternating from the user, ending with the assistant, or with the user's closing words after its last answer.
        const closing = messages.at(-1)?.metadata.is_closing === true;
        expect(messages).toHaveLength(2 * turns + (closing ? 1 : 0));
        if (closing) expect(interaction.metadata.end_reason).toBe('user_stop');
        messages.forEach((m, i) => expect(m.role).toBe(i % 2 === 0 ? 'user' : 'assistant'));
        for (const m of messages.filter((m) => m.role === 'assistant')) expect(m.metadata.model).toBe(interaction.metadata.assistant_model.model);
      }
    },
  );

  test.prop([arbTasks, fc.integer({ min: 2, max: 16 }), fc.integer()], { numRuns: 15 })(
    'gives the same outcomes at concurrency 1 and N, with latency jitter and injected faults',
    async (tasks, concurrency, seed) => {
      // Jitter reorders completions; faults (seeded per request and attempt) make some tasks fail.
      const chaos = { latencyMs: 1, jitterMs: 1, faults: { server: 0.15 }, seed };
      const pool = createPool(['sim-a', 'sim-b'].map((model) => ({ model: createSimModel({ provider: 'sim', model }, chaos), weight: 1 })));
      const userModel = createSimModel({ provider: 'sim', model: 'user-sim' }, chaos);
      const at = async (c: number) => {
        const opts = options({ concurrency: c, seed, pool, maxRetries: 1, user: { ...options().user, model: userModel } });
        const outcomes = await lastValueFrom(from(tasks).pipe(lockModel(opts.pool, seed), converse(opts), toArray()));
        expect(outcomes).toHaveLength(tasks.length);
        const normal = outcomes.map((o) => (o.ok ? timeless(o.interaction) : { failed: o.failure.interaction_id, kind: o.failure.error.kind, attempts: o.failure.attempts }));
        return normal.map((o) => JSON.stringify(o)).sort();
      };
      expect(await at(concurrency)).toEqual(await at(1));
    },
  );

  it('with stop_policy personagym, ends at min_turns when the draw says no feedback and at the target when it always says yes, recording why', async () => {
    const t = locked(task({ targetTurns: 4 }));
    const never = await run([t], options({ user: { ...options().user, stopPolicy: 'personagym', feedbackProbability: 0 } }));
    expect(interactions(never)[0]).toMatchObject({ num_turns: 2, metadata: { end_reason: 'feedback_draw', conversation_ended: false, stop_policy: 'personagym', target_turns: 4 } });
    const always = scripted((request) => (request.module === 'user_simulator' ? `and what about step ${request.messages.length}` : 'x'));
    const full = await run([t], options({ userModel: always.model, user: { ...options().user, model: always.model, stopPolicy: 'personagym', feedbackProbability: 1 } }));
    expect(interactions(full)[0]).toMatchObject({ num_turns: 4, metadata: { end_reason: 'target_turns', conversation_ended: false } });
  });

  it('with the default stop_policy user, neither a target nor a draw ends it: the user stops, or max_turns does', async () => {
    const t = locked(task({ targetTurns: 2 }));
    const talker = scripted((request) => (request.module === 'user_simulator' ? `and what about step ${request.messages.length}` : 'x'));
    const long = await run([t], options({ minTurns: 1, maxTurns: 5, userModel: talker.model, user: { ...options().user, model: talker.model, feedbackProbability: 0 } }));
    expect(interactions(long)[0]).toMatchObject({ num_turns: 5, metadata: { end_reason: 'max_turns', conversation_ended: false, stop_policy: 'user' } });
    expect(interactions(long)[0]?.metadata).not.toHaveProperty('target_turns');
    // It stops after the third answer, on its own.
    const quitter = scripted((request) => (request.module === 'user_simulator' ? (request.messages.filter((m) => m.role === 'user').length >= 4 ? '###STOP###' : `and step ${request.messages.length}?`) : 'x'));
    const short = await run([t], options({ minTurns: 1, maxTurns: 5, userModel: quitter.model, user: { ...options().user, model: quitter.model } }));
    expect(interactions(short)[0]).toMatchObject({ num_turns: 3, metadata: { end_reason: 'user_stop', conversation_ended: true } });
  });

  it('passes a source error through after the outcomes before it', async () => {
    const boom = new Error('reader failed');
    const seen: Outcome[] = [];
    // The reader fails once the first outcome is out (an event, not a delay that a slow machine might outlast).
    const reader = new Subject<LockedTask>();
    const source = concat(of(locked(task())), reader);
    await expect(lastValueFrom(source.pipe(converse(options({ concurrency: 1 })), tap((o) => (seen.push(o), reader.error(boom)))))).rejects.toBe(boom);
    expect(seen).toHaveLength(1);
  });

  it('works on a never-ending source', async () => {
    const tasks = new Subject<LockedTask>();
    const result = lastValueFrom(concat(tasks, NEVER).pipe(converse(options()), take(2), toArray()));
    tasks.next(locked(task({ key: 'a/q', personaId: 'a' })));
    tasks.next(locked(task({ key: 'b/q', personaId: 'b' })));
    expect(await result).toHaveLength(2);
  });

  it('aborts in-flight calls on unsubscribe', async () => {
    const stuck = hanging();
    const pool = createPool([{ model: stuck.model, weight: 1 }]);
    const subscription = from([locked(task({ key: 'a' }), 'scripted'), locked(task({ key: 'b' }), 'scripted')]).pipe(converse(options({ pool }))).subscribe();
    await vi.waitFor(() => expect(stuck.requests).toHaveLength(2));
    subscription.unsubscribe();
    expect(stuck.aborts()).toBe(2);
  });

  it('retries a transient failure at the failed call only', async () => {
    const flaky = scripted((_request, call) => {
      if (call === 2) throw new ModelError('server', '500', { status: 500 });
      return 'an answer';
    });
    const pool = createPool([{ model: flaky.model, weight: 1 }]);
    const userSim = scripted((_r, call) => (call === 1 ? 'ok and then?' : STOP));
    const [outcome] = await run([locked(task({ targetTurns: 5 }), 'scripted')], options({ pool, minTurns: 1, user: { ...options().user, model: userSim.model, feedbackProbability: 1 } }));
    expect(outcome?.ok).toBe(true);
    const interaction = (outcome as { interaction: Interaction }).interaction;
    expect(interaction.num_turns).toBe(2);
    // Call 1 answered turn 1; call 2 failed; call 3 retried turn 2. Turn 1 was not replayed.
    expect(flaky.requests).toHaveLength(3);
    expect(interaction.metadata.usage.assistant?.calls).toBe(2);
  });

  it('records a failure with kind and attempts when retries run out, and keeps going', async () => {
    const down = scripted(() => {
      throw new ModelError('server', 'server error (503)', { status: 503 });
    });
    const pool = createPool([{ model: down.model, weight: 1 }]);
    const outcomes = await run([locked(task({ key: 'a', queryId: 'qa' }), 'scripted'), locked(task({ key: 'b', queryId: 'qb' }), 'scripted')], options({ pool, maxRetries: 2 }));
    expect(outcomes).toHaveLength(2);
    for (const outcome of outcomes) {
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(outcome.failure).toMatchObject({ persona_id: 'p1', attempts: 3, error: { kind: 'server', message: 'server error (503)' } });
    }
  });

  it('does not retry a permanent error', async () => {
    const rejecting = scripted(() => {
      throw new ModelError('bad_request', 'request rejected (400)', { status: 400 });
    });
    const [outcome] = await run([locked(task(), 'scripted')], options({ pool: createPool([{ model: rejecting.model, weight: 1 }]) }));
    expect(rejecting.requests).toHaveLength(1);
    expect(outcome).toMatchObject({ ok: false, failure: { attempts: 1, error: { kind: 'bad_request' } } });
  });

  it('ends the whole stream on an authentication error', async () => {
    const denied = scripted(() => {
      throw new ModelError('auth', 'authentication failed (401)', { status: 401 });
    });
    const pool = createPool([{ model: denied.model, weight: 1 }]);
    await expect(run([locked(task({ key: 'a' }), 'scripted'), locked(task({ key: 'b' }), 'scripted')], options({ pool }))).rejects.toBeInstanceOf(FatalError);
  });

  it('isolates a throwing callback to its task', async () => {
    const flaky = scripted((_r, call) => {
      if (call === 1) throw new ModelError('server', '500');
      return 'fine';
    });
    const pool = createPool([{ model: flaky.model, weight: 1 }]);
    const outcomes = await run([locked(task({ key: 'a' }), 'scripted')], options({
      pool,
      concurrency: 1,
      onRetry: () => {
        throw new Error('stats callback broke');
      },
    }));
    expect(outcomes).toMatchObject([{ ok: false, failure: { error: { kind: 'internal', message: 'stats callback broke' } } }]);
  });

  describe('user simulator guards', () => {
    const guarded = async (replies: string[], minTurns = 2) => {
      const sim = scripted((_r, call) => replies[Math.min(call, replies.length) - 1] ?? STOP);
      const outcomes = await run([locked(task({ targetTurns: 3 }))], options({ pool: simPool(['sim-a']), minTurns, user: { ...options().user, model: sim.model, feedbackProbability: 1 } }));
      return { outcome: outcomes[0] as Outcome, sim };
    };

    it('regenerates an empty reply with a nudge that stays out of the transcript', async () => {
      const { outcome, sim } = await guarded(['', 'ok but csv?', STOP]);
      expect(outcome.ok && outcome.interaction.metadata.guard).toEqual({ empty: 1 });
      const retry = sim.requests[1]?.messages.at(-1)?.content ?? '';
      expect(retry).toContain('Your last reply was empty');
      expect(outcome.ok && outcome.interaction.messages.some((m) => m.content.includes('empty'))).toBe(false);
      expect(sim.requests[1]?.temperature).toBeGreaterThan(sim.requests[0]?.temperature ?? 0.8);
    });

    it('regenerates a stop before min_turns', async () => {
      const { outcome } = await guarded([STOP, 'wait, what about duplicates in other columns', STOP]);
      expect(outcome.ok && outcome.interaction.num_turns).toBeGreaterThanOrEqual(2);
      expect(outcome.ok && outcome.interaction.metadata.guard).toEqual({ early_stop: 1 });
    });

    it('rejects a reply that echoes the assistant or repeats the first message', async () => {
      const { outcome } = await guarded(['how do i dedupe a csv by email', 'As an AI language model, I think so.', 'fine, and for excel?', STOP]);
      expect(outcome.ok && outcome.interaction.metadata.guard).toEqual({ repeat: 1, role_break: 1 });
    });

    it('fails the task when the simulator keeps returning nothing, counting every reply it asked for', async () => {
      const { outcome } = await guarded(['', '', '', '', '']);
      expect(outcome).toMatchObject({ ok: false, failure: { error: { kind: 'guard' }, attempts: 4 } });
      expect(outcome.rejections).toHaveLength(4);
    });

    it("keeps the closing words before the stop signal as the user's last message, without the signal", async () => {
      const { outcome } = await guarded(['and for excel files?', `thanks, that's all ${STOP}`], 1);
      expect(outcome.ok && outcome.interaction.messages.at(-1)).toMatchObject({ role: 'user', content: "thanks, that's all", metadata: { is_closing: true } });
      expect(outcome.ok && outcome.interaction.metadata).toMatchObject({ end_reason: 'user_stop', conversation_ended: true });
      expect(outcome.ok && outcome.interaction.messages.some((m) => m.content.includes(STOP))).toBe(false);
    });

    it('rejects a stop signal with a question glued to it, keeps the text with its reason, and asks again; nothing is edited in', async () => {
      const glued = `What about the encoding? ${STOP} Also, how do I handle 2 million rows?`;
      const { outcome } = await guarded(['and for excel files?', glued, 'and 2 million rows?', STOP], 1);
      expect(outcome.ok && outcome.interaction.metadata.guard).toEqual({ misplaced_stop: 1 });
      expect(outcome.rejections).toEqual([expect.objectContaining({ reason: 'misplaced_stop', text: glued, turn: 2, attempt: 0, interaction_id: 'interaction_p1_q1' })]);
      const users = outcome.ok ? outcome.interaction.messages.filter((m) => m.role === 'user').map((m) => m.content) : [];
      expect(users).toEqual(['how do i dedupe a csv by email', 'and for excel files?', 'and 2 million rows?']);
    });

    it('fails a task whose early stops persist instead of editing the closing text into a user turn', async () => {
      const { outcome } = await guarded([`thanks, that's all I needed! ${STOP}`, `thanks ${STOP}`, `bye ${STOP}`, `ok ${STOP}`], 3);
      expect(outcome).toMatchObject({ ok: false, failure: { error: { kind: 'guard' }, attempts: 4 } });
      expect(outcome.rejections?.map((r) => r.reason)).toEqual(['early_stop', 'early_stop', 'early_stop', 'early_stop']);
    });

    it("reads PersonaGym's JSON replies with a PersonaGym template", async () => {
      const template = 'Persona:\n{persona}\nConversation:\n{conversation_history}\nTurn {current_turn}/{target_turns}. Reply JSON {"satisfied": bool, "feedback": str}';
      const sim = scripted((_r, call) => (call === 1 ? '```json\n{"satisfied": false, "feedback": "and how about excel files?"}\n```' : '{"satisfied": true, "feedback": null}'));
      const [outcome] = await run([locked(task({ targetTurns: 4 }))], options({ pool: simPool(['sim-a']), minTurns: 1, user: { model: sim.model, template, feedbackProbability: 1 } }));
      expect(outcome?.ok && outcome.interaction.messages[2]?.content).toBe('and how about excel files?');
      expect(outcome?.ok && outcome.interaction.num_turns).toBe(2);
      expect(sim.requests[0]?.messages).toHaveLength(1);
      expect(sim.requests[0]?.messages[0]?.content).toContain('User: how do i dedupe a csv by email');
    });
  });

  it('sends the user simulator a role-inverted history that keeps its first message', async () => {
    const sim = scripted(() => STOP);
    await run([locked(task({ targetTurns: 3 }))], options({ pool: simPool(['sim-a']), minTurns: 1, user: { ...options().user, model: sim.model, feedbackProbability: 1 } }));
    const messages = sim.requests[0]?.messages ?? [];
    expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(messages[2]?.content).toBe('how do i dedupe a csv by email');
    expect(messages[3]?.content).toMatch(/\(Reminder: you are the user described above/);
    expect(messages[0]?.content).toContain('- Communication Style (casual): casual: lowercase is fine');
    expect(messages[0]?.content).not.toMatch(/\{[a-z_]+\}/);
  });

  it('checks its options up front', () => {
    expect(() => converse(options({ concurrency: 0 }))).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`concurrency\` to be a positive integer, got \`0\`]`);
    expect(() => converse(options({ minTurns: 3, maxTurns: 2 }))).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`maxTurns\` to be an integer ≥ minTurns (3), got \`2\`]`);
  });
});

describe('converse with a distractor', () => {
  const legacy = (overrides: Partial<DistractorOptions> = {}) =>
    createDistractor({ activationProbability: 1, rules: [{ name: 'emotional_attitude', probability: 1 }], strategies: strategyFile, ...overrides });
  const semantic = () =>
    createDistractor({
      activationProbability: 1,
      rules: [],
      strategies: strategyFile,
      semantic: { model: createSimModel({ provider: 'sim', model: 'noise-sim' }), templates: { surface_noise: 'S {text} {strategies}', incomplete_info: 'I {text} {strategies}', semantic_ambiguity: 'A {text} {strategies}' }, validationRetries: 1 },
    });
  const strategyFile = strategyFileSchema.parse({ layer_weights: { surface_noise: 1 }, strategies: { surface_noise: { emotional_attitude: { probability: 1 } }, incomplete_info: { unclear_priority: { probability: 1 } } } });

  it('sends the noisy initial query and follow-ups on and keeps the clean ones, as PersonaGym records them', async () => {
    const user = scripted((_request, call) => (call >= 2 ? STOP : 'and what about duplicates in other columns'));
    const assistant = scripted(() => 'an answer');
    const outcomes = await run([locked(task({ targetTurns: 5 }), 'scripted')], options({ pool: createPool([{ model: assistant.model, weight: 1 }]), userModel: user.model, distractor: legacy(), maxTurns: 5 }));
    const interaction = interactions(outcomes)[0]!;
    const users = interaction.messages.filter((m) => m.role === 'user');
    expect(users[0]?.metadata).toMatchObject({ clean_version: 'how do i dedupe a csv by email', was_noised: true });
    expect(users[0]?.content).toContain('how do i dedupe a csv by email');
    expect(users[0]?.content).not.toBe('how do i dedupe a csv by email');
    // The assistant saw the noisy text, not the clean one.
    expect(assistant.requests[0]?.messages.at(-1)?.content).toBe(users[0]?.content);
    expect(interaction.initial_query).toBe('how do i dedupe a csv by email');
    expect(interaction.metadata).toMatchObject({
      distractor_applied: true,
      distractor_type: 'legacy',
      noisy_versions: {
        initial_query: { clean_query: 'how do i dedupe a csv by email', noisy_versions: [{ noisy_text: users[0]?.content, noise_type: 'emotional_attitude', noise_intensity: 1 }] },
        followups: [{ clean_feedback: 'and what about duplicates in other columns', used_version: users[1]?.content, turn: 1 }],
      },
    });
    expect(users[1]?.metadata).toMatchObject({ turn: 1, is_followup: true, clean_version: 'and what about duplicates in other columns', was_noised: true });
  });

  it('honours apply_to and leaves noisy_versions null when nothing was noised', async () => {
    const outcomes = await run([locked(task())], options({ pool: simPool(['sim-a']), distractor: legacy({ applyTo: { initial_query: false, follow_up_feedback: false } }) }));
    const interaction = interactions(outcomes)[0]!;
    expect(interaction.messages.filter((m) => m.role === 'user').every((m) => m.metadata.was_noised === false)).toBe(true);
    // Nothing was noised: the distractor was there, but it did not apply to any turn.
    expect(interaction.metadata).toMatchObject({ distractor_applied: false, distractor_type: 'legacy', noisy_versions: null, noised_turns: 0 });
  });

  test.prop([arbTasks], { numRuns: 15 })('semantic noise on sim is the same at any concurrency', async (tasks) => {
    const lockedTasks = (pool: ReturnType<typeof simPool>) => from(tasks).pipe(lockModel(pool, 3));
    const pool = simPool(['sim-a', 'sim-b']);
    // A task may fail (the guards reject what sim makes of an arbitrary query): compared without its time too.
    const normal = (o: Outcome) => (o.ok ? timeless(o.interaction) : { ...o.failure, time: undefined });
    const one = (await lastValueFrom(lockedTasks(pool).pipe(converse(options({ pool, concurrency: 1, distractor: semantic() })), toArray()))).map(normal);
    const many = (await lastValueFrom(lockedTasks(pool).pipe(converse(options({ pool, concurrency: 8, distractor: semantic() })), toArray()))).map(normal);
    const byId = (list: unknown[]) => [...list].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(byId(many)).toEqual(byId(one));
    for (const outcome of one.filter((o): o is ReturnType<typeof timeless> => typeof o === 'object' && o !== null && 'metadata' in o)) {
      const metadata = (outcome as { metadata: Record<string, unknown> }).metadata;
      expect(metadata).toMatchObject({ distractor_type: 'semantic' });
      expect((metadata.semantic_noise as { initial_query: { layer: string } }).initial_query.layer).toBe('surface_noise');
    }
  });

  describe('a noised first turn that dropped a detail', () => {
    const query = 'How do I deduplicate a CSV file by email in Python?';
    /** A distractor model that leaves "in Python" out of the first message, reports it, and says what the message now asks. */
    const dropping = () =>
      scripted((request) => {
        const ask = request.hints?.distractor;
        if (ask === undefined) throw new Error('no distractor hints');
        if (ask.layer !== 'surface_noise') return JSON.stringify({ slots: { language: 'Python' }, slots_dropped: ['language'], noisy_text: 'how do i deduplicate a CSV file by email', means: 'how to deduplicate a CSV file by email (language not said)' });
        return JSON.stringify({ noisy_text: `${ask.text} pls` });
      });
    const distractorWith = (model: ChatModel) =>
      createDistractor({
        activationProbability: 1,
        rules: [],
        strategies: strategyFileSchema.parse({ layer_weights: { surface_noise: 1, incomplete_info: 1 }, strategies: { surface_noise: { emotional_attitude: { probability: 1 } }, incomplete_info: { missing_slots: { probability: 1 } } } }),
        semantic: { model, templates: { surface_noise: 'S {text}', incomplete_info: 'I {text}', semantic_ambiguity: 'A {text}' }, validationRetries: 1 },
      });

    it('records what the noise dropped, and noises the follow-ups with surface noise only', async () => {
      const noiser = dropping();
      // Seeds and keys for which the first message draws incomplete_info (weights 1:1): several, so the check is not about one draw.
      let checked = 0;
      for (let i = 0; i < 12; i += 1) {
        const user = scripted((_request, call) => ['ok and for the other columns', 'and the header row?'][call - 1] ?? STOP);
        const t = locked(task({ personaId: `p${i}`, key: `p${i}/q1`, originalQuery: query, initialQuery: query, targetTurns: 4 }), 'scripted');
        const [outcome] = await run([t], options({ pool: createPool([{ model: scripted(() => 'an answer').model, weight: 1 }]), userModel: user.model, distractor: distractorWith(noiser.model), minTurns: 3, maxTurns: 4 }));
        const interaction = interactions([outcome!])[0]!;
        const semanticNoise = interaction.metadata.semantic_noise as { initial_query: { layer: string } };
        if (semanticNoise.initial_query.layer !== 'incomplete_info') continue;
        checked += 1;
        expect(interaction.messages[0]).toMatchObject({ content: 'how do i deduplicate a CSV file by email', metadata: { clean_version: query, was_noised: true } });
        expect(interaction.metadata).toMatchObject({ distractor_applied: true, noise_dropped: ['Python'] });
        expect(semanticNoise.initial_query).toMatchObject({ metadata: { dropped: ['Python'], means: 'how to deduplicate a CSV file by email (language not said)' } });
      }
      expect(checked).toBeGreaterThan(2);
      // Every follow-up the distractor was asked about was asked as surface noise.
      const layers = noiser.requests.filter((r) => r.hints?.distractor?.text !== query).map((r) => r.hints?.distractor?.layer);
      expect(layers.length).toBeGreaterThan(0);
      expect(new Set(layers)).toEqual(new Set(['surface_noise']));
    });

    it('counts noised turns honestly', async () => {
      const user = scripted((_request, call) => ['ok and for the other columns', 'and the header row?'][call - 1] ?? STOP);
      const [outcome] = await run([locked(task({ initialQuery: query, targetTurns: 4 }), 'scripted')], options({ pool: createPool([{ model: scripted(() => 'an answer').model, weight: 1 }]), userModel: user.model, distractor: distractorWith(dropping().model), minTurns: 3, maxTurns: 4 }));
      const interaction = interactions([outcome!])[0]!;
      const noised = interaction.messages.filter((m) => m.role === 'user' && m.metadata.was_noised === true).length;
      expect(noised).toBeGreaterThan(0);
      expect(interaction.metadata).toMatchObject({ distractor_applied: true, noised_turns: noised });
    });

    it('the simulated user knows what the noised first turn dropped and what it now asks, and gives the detail when asked', async () => {
      const noiser = dropping();
      let checked = 0;
      for (let i = 0; i < 12; i += 1) {
        // The user answers from its "what you know" list: the detail the noise dropped, in its own words.
        const user = scripted((request, call) => {
          if (call > 1) return STOP;
          const known = /^- (.+) \(you have not said this yet/m.exec(request.messages[0]?.content ?? '')?.[1];
          return known === undefined ? 'not sure what you mean' : `oh sorry, ${known.toLowerCase()}`;
        });
        const assistant = scripted(() => 'Which language are you using?');
        const t = locked(task({ personaId: `p${i}`, key: `p${i}/q1`, originalQuery: query, initialQuery: query, targetTurns: 2 }), 'scripted');
        const [outcome] = await run([t], options({ pool: createPool([{ model: assistant.model, weight: 1 }]), userModel: user.model, distractor: distractorWith(noiser.model), minTurns: 2, maxTurns: 3 }));
        const interaction = interactions([outcome!])[0]!;
        if ((interaction.metadata.semantic_noise as { initial_query: { layer: string } }).initial_query.layer !== 'incomplete_info') continue;
        checked += 1;
        const prompt = user.requests[0]!.messages[0]!.content;
        expect(prompt).toContain('- Python (you have not said this yet');
        expect(prompt).toContain('What your message actually asked, as you sent it: "how to deduplicate a CSV file by email (language not said)"');
        // The user's own first message, in its history, is what was sent: the noisy one, not the clean query.
        expect(user.requests[0]!.messages.slice(1).map((m) => m.content)).not.toContain(query);
        const users = interaction.messages.filter((m) => m.role === 'user');
        expect(users[0]?.content).toBe('how do i deduplicate a CSV file by email');
        expect(users[1]?.metadata.clean_version ?? users[1]?.content).toBe('oh sorry, python');
      }
      expect(checked).toBeGreaterThan(2);
    });
  });

  it('ends the run when the distractor model rejects the key', async () => {
    const broken = scripted(() => {
      throw new ModelError('auth', '401 bad key');
    });
    const distractor = createDistractor({ activationProbability: 1, rules: [], strategies: strategyFile, semantic: { model: broken.model, templates: { surface_noise: '{text}', incomplete_info: '{text}', semantic_ambiguity: '{text}' }, validationRetries: 0 } });
    await expect(run([locked(task())], options({ pool: simPool(['sim-a']), distractor }))).rejects.toBeInstanceOf(FatalError);
  });
});
