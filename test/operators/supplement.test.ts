// supplement (through `generate` and directly), plus style transfer in converse's opening.
import { fc, test } from '@fast-check/vitest';
import { defer, from, lastValueFrom, map, of, throwError, toArray, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { FatalError, ModelError } from '../../src/errors.js';
import { callModel } from '../../src/models/call.js';
import { createPool } from '../../src/models/pool.js';
import { RejectedAnswerError } from '../../src/prompts/ask.js';
import { createSimModel } from '../../src/models/sim.js';
import type { ChatModel, ChatRequest, ChatResponse } from '../../src/chat.js';
import { converse, type ConverseOptions } from '../../src/operators/converse.js';
import { supplement, type RoundReport, type SupplementOptions } from '../../src/operators/supplement.js';
import { generate, type GenerateOptions } from '../../src/pipeline.js';
import type { GeneratedQuery } from '../../src/prompts/queryGeneration.js';
import { createQueryGenerator, type QueryGenerator } from '../../src/queries/queryGenerator.js';
import { LENGTHS, createStyleTransfer, type StyleTransfer, type StyleTransferResult } from '../../src/queries/styleTransfer.js';
import { interactionId, type Failure, type Features, type Interaction, type Outcome, type Task } from '../../src/types.js';
import { USER_TEMPLATE, locked, simPool, task } from '../helpers/fixtures.js';

// ---------------------------------------------------------------------------------------------------
// Helpers

/** Queries containing this are rejected by the assistant (400: permanent, never retried). */
const MARK = 'FAIL';
const marked = (query: string): boolean => query.includes(MARK);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An assistant that answers like sim, except that it rejects with a permanent 400 every conversation
 * whose first user message `fails` (optionally after a delay, to reorder completions).
 */
function assistant(fails: (query: string) => boolean = marked, delayFor: (query: string) => number = () => 0) {
  const sim = createSimModel({ provider: 'sim', model: 'sim-a' });
  const rejected: string[] = [];
  const model: ChatModel = {
    provider: 'sim',
    model: 'sim-a',
    async complete(request: ChatRequest, signal: AbortSignal): Promise<ChatResponse> {
      const first = request.messages.find((message) => message.role === 'user')?.content ?? '';
      const wait = delayFor(first);
      if (wait > 0) await sleep(wait);
      if (fails(first)) {
        rejected.push(first);
        throw new ModelError('bad_request', `rejected (400): ${first}`, { status: 400 });
      }
      return sim.complete(request, signal);
    },
  };
  return { model, rejected };
}

/** A model that records its requests and passes them to `inner`. */
function recording(inner: ChatModel) {
  const requests: ChatRequest[] = [];
  const model: ChatModel = {
    provider: inner.provider,
    model: inner.model,
    complete: (request, signal) => {
      // A copy: the caller may change what the request refers to (the avoid list grows after the call).
      requests.push(structuredClone(request));
      return inner.complete(request, signal);
    },
  };
  return { model, requests };
}

/** Tasks of one persona, one per query; the persona's `name` feature is its id (the generator only sees features). */
const persona = (id: string, queries: readonly string[], features: Features = {}): Task[] =>
  queries.map((query, i) =>
    task({ personaId: id, queryId: `q${i}`, key: `${id}/q${i}`, personaFeatures: { name: id, communication_style: 'casual', ...features }, originalQuery: query, initialQuery: query, source: `test:${id}`, targetTurns: 2 }),
  );

async function* each<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) {
    await Promise.resolve();
    yield item;
  }
}

interface GeneratorCall {
  readonly persona: string;
  readonly count: number;
  readonly avoid: readonly string[];
}

type Answer = (name: string, count: number, nth: number, avoid: readonly string[]) => Observable<GeneratedQuery[]>;

/** Default answer: `count` new queries; those of a persona whose name starts with 'doomed' are rejected by the assistant. */
const freshQueries = (name: string, count: number, nth: number): Observable<GeneratedQuery[]> =>
  of(
    Array.from({ length: count }, (_, i): GeneratedQuery => ({
      query: `${name.startsWith('doomed') ? `${MARK} ` : ''}new request ${nth}.${i} from ${name}`,
      domain: 'productivity',
      scenario: 'planning',
    })),
  );

/** A fake query generator: records each call (with a copy of the avoid list) and answers with `answer`. */
function fakeGenerator(answer: Answer = freshQueries) {
  const calls: GeneratorCall[] = [];
  const generator: QueryGenerator = {
    generate: (features, count, avoid) =>
      defer(() => {
        const name = String(features.name);
        const nth = calls.filter((call) => call.persona === name).length + 1;
        calls.push({ persona: name, count, avoid: [...avoid] });
        return answer(name, count, nth, avoid);
      }),
  };
  return { generator, calls };
}

const directCall = (model: ChatModel, request: ChatRequest): Observable<ChatResponse> => callModel(model, request);

interface Setup {
  readonly rounds?: number;
  readonly generator?: QueryGenerator;
  readonly fails?: (query: string) => boolean;
  readonly delayFor?: (query: string) => number;
  readonly stopped?: () => boolean;
  readonly seed?: number;
  readonly concurrency?: number;
  readonly styleTransfer?: StyleTransfer;
  readonly supplement?: boolean;
}

interface Run {
  readonly emitted: Outcome[];
  readonly written: Outcome[];
  /** Each report with the number of outcomes written when it came. */
  readonly reports: Array<RoundReport & { readonly written: number }>;
  readonly generatorErrors: Array<{ readonly personaId: string; readonly error: unknown }>;
}

/** Options for `generate`: a one-model pool that rejects `fails`, the sim user, and supplement rounds. */
function options(setup: Setup, run: Omit<Run, 'emitted'>): GenerateOptions {
  const generator = setup.generator ?? fakeGenerator().generator;
  return {
    pool: createPool([{ model: assistant(setup.fails, setup.delayFor).model, weight: 1 }]),
    user: { model: createSimModel({ provider: 'sim', model: 'user-sim' }), template: USER_TEMPLATE, feedbackProbability: 0.85 },
    seed: setup.seed ?? 7,
    minTurns: 1,
    maxTurns: 3,
    concurrency: setup.concurrency ?? 4,
    maxRetries: 2,
    retryDelayMs: 0,
    styleTransfer: setup.styleTransfer,
    supplement:
      setup.supplement === false
        ? undefined
        : {
            rounds: setup.rounds ?? 3,
            generator,
            call: directCall,
            concurrency: 2,
            stopped: setup.stopped,
            onRound: (report) => run.reports.push({ ...report, written: run.written.length }),
            onGeneratorError: (personaId, error) => run.generatorErrors.push({ personaId, error }),
          },
  };
}

async function runGenerate(tasks: readonly Task[], setup: Setup = {}): Promise<Run> {
  const run = { written: [] as Outcome[], reports: [] as Run['reports'], generatorErrors: [] as Run['generatorErrors'] };
  const emitted = await lastValueFrom(
    generate(each(tasks), options(setup, run), (outcome) => {
      run.written.push(outcome);
      return Promise.resolve();
    }).pipe(toArray()),
    { defaultValue: [] as Outcome[] },
  );
  return { ...run, emitted };
}

const interactions = (outcomes: readonly Outcome[]): Interaction[] => outcomes.flatMap((o) => (o.ok ? [o.interaction] : []));
const failures = (outcomes: readonly Outcome[]): Failure[] => outcomes.flatMap((o) => (o.ok ? [] : [o.failure]));
const roundOf = (outcome: Outcome): number => (outcome.ok ? ((outcome.interaction.metadata.supplement_round as number | undefined) ?? 0) : (outcome.failure.supplement_round ?? 0));

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

const report = (round: number, personasShort: number, missing: number, tasks: number) => ({ round, personasShort, missing, tasks });
const reportsOf = (run: Run) => run.reports.map(({ written: _written, short: _short, ...r }) => r);

// ---------------------------------------------------------------------------------------------------
// Supplement through generate

describe('supplement through generate', () => {
  // A: 3 tasks, 2 fail, topped up in round 1.  B: all succeed, never topped up.
  // doomedC: 1 of 2 fails, and every generated query fails too: short after every round.
  // D: all 4 fail, all 4 topped up in round 1.
  const tasks = [
    ...persona('A', ['how do I plan a trip', `${MARK} one`, `${MARK} two`]),
    ...persona('B', ['how do I bake bread', 'how do I sort a list']),
    ...persona('doomedC', ['how do I learn chess', `${MARK} three`]),
    ...persona('D', [`${MARK} four`, `${MARK} five`, `${MARK} six`, `${MARK} seven`]),
  ];
  const targets: Record<string, number> = countBy(tasks, (t) => t.personaId);

  it('tops up each short persona by exactly its failures, round after round, never past its target', async () => {
    const { generator, calls } = fakeGenerator();
    const run = await runGenerate(tasks, { generator, rounds: 3 });

    // 11 main-pass outcomes, 7 supplement tasks in round 1, 1 in round 2, 1 in round 3.
    expect(run.emitted).toHaveLength(20);
    expect(run.written).toHaveLength(20);
    expect(new Set(run.written)).toEqual(new Set(run.emitted));
    expect(countBy(run.emitted, (o) => String(roundOf(o)))).toEqual({ 0: 11, 1: 7, 2: 1, 3: 1 });
    // Rounds come strictly after one another.
    const rounds = run.written.map(roundOf);
    expect(rounds).toEqual([...rounds].sort((a, b) => a - b));

    // The generator was asked for exactly the missing count, only for short personas.
    expect(calls.map(({ persona: p, count }) => `${p}:${count}`).sort()).toEqual(['A:2', 'D:4', 'doomedC:1', 'doomedC:1', 'doomedC:1']);
    expect(calls.some((call) => call.persona === 'B')).toBe(false);

    // Supplement tasks per persona and round.
    const supplementTasks = run.emitted.filter((o) => roundOf(o) > 0);
    expect(countBy(supplementTasks, (o) => `${o.ok ? o.interaction.persona_id : o.failure.persona_id}@${roundOf(o)}`)).toEqual({ 'A@1': 2, 'D@1': 4, 'doomedC@1': 1, 'doomedC@2': 1, 'doomedC@3': 1 });

    // Successes per persona: never past the target; A, B and D reach it, doomedC stays short by one.
    const done = countBy(interactions(run.emitted), (i) => i.persona_id);
    expect(done).toEqual({ A: 3, B: 2, doomedC: 1, D: 4 });
    for (const [id, count] of Object.entries(done)) expect(count).toBeLessThanOrEqual(targets[id] as number);

    // Failures stay in the outcomes, with their reason and round.
    const failed = failures(run.emitted);
    expect(failed).toHaveLength(10);
    for (const failure of failed) expect(failure.error).toMatchObject({ kind: 'bad_request', message: expect.stringContaining(MARK) as string });
    expect(failed.filter((f) => f.persona_id === 'doomedC').map((f) => [f.query_id, f.supplement_round])).toEqual([
      ['q1', undefined],
      ['supplement_r1_0', 1],
      ['supplement_r2_0', 2],
      ['supplement_r3_0', 3],
    ]);
    for (const outcome of run.emitted) if (!outcome.ok) expect(outcome.task?.queryId).toBe(outcome.failure.query_id);

    // Supplement interactions: their round, their ids, the generated query as both queries.
    const topped = interactions(run.emitted).filter((i) => i.metadata.supplement_round !== undefined);
    expect(topped.map((i) => i.interaction_id).sort()).toEqual(
      [['A', 'supplement_r1_0'], ['A', 'supplement_r1_1'], ['D', 'supplement_r1_0'], ['D', 'supplement_r1_1'], ['D', 'supplement_r1_2'], ['D', 'supplement_r1_3']].map(([p, q]) => interactionId(p!, q!)).sort(),
    );
    for (const interaction of topped) {
      expect(interaction.metadata.supplement_round).toBe(1);
      expect(interaction.metadata.query_id).toMatch(/^supplement_r1_[0-3]$/);
      expect(interaction.original_query).toMatch(new RegExp(`^new request 1\\.\\d from ${interaction.persona_id}$`));
      expect(interaction.initial_query).toBe(interaction.original_query);
      expect(interaction.messages[0]?.content).toBe(interaction.original_query);
      expect(interaction.persona_features).toEqual({ name: interaction.persona_id, communication_style: 'casual', domain: 'productivity', scenario: 'planning' });
    }
    // Main-pass interactions carry no supplement_round at all.
    for (const interaction of interactions(run.emitted).filter((i) => !i.metadata.query_id.startsWith('supplement'))) expect('supplement_round' in interaction.metadata).toBe(false);

    // Reports: after the main pass and after each round, at the moment the pass is fully written.
    expect(reportsOf(run)).toEqual([report(0, 3, 7, 0), report(1, 1, 1, 7), report(2, 1, 1, 1), report(3, 1, 1, 1)]);
    expect(run.reports.map((r) => r.written)).toEqual([11, 18, 19, 20]);
  });

  it('runs exactly `rounds` rounds for a persona that always fails', async () => {
    for (const rounds of [1, 2, 5]) {
      const { generator, calls } = fakeGenerator();
      const run = await runGenerate(persona('doomedX', [`${MARK} a`, `${MARK} b`, 'fine']), { generator, rounds });
      expect(calls.map((c) => c.count)).toEqual(Array.from({ length: rounds }, () => 2));
      expect(run.emitted).toHaveLength(3 + 2 * rounds);
      expect(interactions(run.emitted)).toHaveLength(1);
      expect(reportsOf(run)).toEqual([report(0, 1, 2, 0), ...Array.from({ length: rounds }, (_, i) => report(i + 1, 1, 2, 2))]);
    }
  });

  it('does nothing more when no task fails', async () => {
    const { generator, calls } = fakeGenerator();
    const run = await runGenerate(persona('B', ['one thing', 'another thing']), { generator, rounds: 3 });
    expect(run.emitted).toHaveLength(2);
    expect(calls).toEqual([]);
    expect(reportsOf(run)).toEqual([report(0, 0, 0, 0)]);
  });

  it('works with the real query generator on the sim model', async () => {
    const queries = recording(createSimModel({ provider: 'sim', model: 'gen-sim' }));
    const generator = createQueryGenerator({ model: queries.model, template: 'Persona:\n{persona}\nCount: {count}\nAvoid:\n{avoid}', validationRetries: 1 });
    const run = await runGenerate([...persona('P', [`${MARK} x`, `${MARK} y`, 'keep this'], { role: 'teacher' }), ...persona('Q', ['fine too'])], { generator, rounds: 2 });
    expect(queries.requests).toHaveLength(1);
    expect(queries.requests[0]?.hints?.queryGeneration).toEqual({ count: 2, avoid: [`${MARK} x`, `${MARK} y`] });
    const topped = interactions(run.emitted).filter((i) => i.metadata.supplement_round === 1);
    expect(topped.map((i) => i.metadata.query_id).sort()).toEqual(['supplement_r1_0', 'supplement_r1_1']);
    expect(new Set(topped.map((i) => i.original_query)).size).toBe(2);
    for (const interaction of topped) {
      expect(interaction.persona_id).toBe('P');
      expect(interaction.persona_features).toMatchObject({ name: 'P', role: 'teacher', domain: 'productivity', scenario: expect.stringMatching(/^(planning|learning|work_task)$/) as string });
      expect(interaction.messages[0]?.content).toBe(interaction.original_query);
    }
    expect(reportsOf(run)).toEqual([report(0, 1, 2, 0), report(1, 0, 0, 2)]);
  });

  it('does not restyle supplement tasks (they are adapted)', async () => {
    const style = recording(createSimModel({ provider: 'sim', model: 'style-sim' }));
    const styleTransfer = createStyleTransfer({ model: style.model, template: '{persona} {query} {target_length} {target_turns}', probability: 1, validationRetries: 1 });
    // The style sim keeps the marker (not first: it lower-cases the first letter), so the restyled query still fails.
    const run = await runGenerate(persona('A', [`please ${MARK} one`, 'plan my week']), { styleTransfer, rounds: 1 });
    expect(style.requests).toHaveLength(2);
    const [topped] = interactions(run.emitted).filter((i) => i.metadata.supplement_round === 1);
    expect(topped?.initial_query).toBe('new request 1.0 from A');
    expect(topped?.metadata.style_transfer).toBeUndefined();
  });
});

describe('supplement: generator shortfalls and errors', () => {
  it('leaves a persona short by what the generator did not give', async () => {
    const { generator, calls } = fakeGenerator((name, count, nth) => freshQueries(name, Math.min(1, count), nth));
    const run = await runGenerate(persona('A', [`${MARK} 1`, `${MARK} 2`, `${MARK} 3`, 'ok']), { generator, rounds: 2 });
    expect(calls.map((c) => c.count)).toEqual([3, 2]);
    expect(interactions(run.emitted)).toHaveLength(3);
    expect(reportsOf(run)).toEqual([report(0, 1, 3, 0), report(1, 1, 2, 1), report(2, 1, 1, 1)]);
  });

  it('never tops up past the target when the generator gives more than asked', async () => {
    const { generator } = fakeGenerator((name, count, nth) => freshQueries(name, count + 3, nth));
    const run = await runGenerate(persona('A', [`${MARK} 1`, 'ok']), { generator, rounds: 3 });
    expect(interactions(run.emitted).map((i) => i.metadata.query_id).sort()).toEqual(['q1', 'supplement_r1_0']);
    expect(reportsOf(run)).toEqual([report(0, 1, 1, 0), report(1, 0, 0, 1)]);
  });

  it('reports a generator error and keeps the persona short for the next round', async () => {
    const boom = new RejectedAnswerError('query_generation answer rejected 2 time(s)');
    const { generator, calls } = fakeGenerator((name, count, nth) => (name === 'A' && nth === 1 ? throwError(() => boom) : freshQueries(name, count, nth)));
    const run = await runGenerate([...persona('A', [`${MARK} 1`, `${MARK} 2`]), ...persona('B', [`${MARK} 3`])], { generator, rounds: 3 });
    expect(run.generatorErrors).toEqual([{ personaId: 'A', error: boom }]);
    expect(calls.map((c) => `${c.persona}:${c.count}`).sort()).toEqual(['A:2', 'A:2', 'B:1']);
    expect(reportsOf(run)).toEqual([report(0, 2, 3, 0), report(1, 1, 2, 1), report(2, 0, 0, 2)]);
    expect(interactions(run.emitted).filter((i) => i.persona_id === 'A').map((i) => i.metadata.query_id).sort()).toEqual(['supplement_r2_0', 'supplement_r2_1']);
  });

  it('treats a non-fatal model error of the generator like any generator error', async () => {
    const bad = new ModelError('bad_request', 'rejected (400)', { status: 400 });
    const { generator, calls } = fakeGenerator(() => throwError(() => bad));
    const run = await runGenerate(persona('A', [`${MARK} 1`]), { generator, rounds: 2 });
    expect(calls).toHaveLength(2);
    expect(run.generatorErrors).toEqual([
      { personaId: 'A', error: bad },
      { personaId: 'A', error: bad },
    ]);
    expect(run.emitted).toHaveLength(1);
    expect(reportsOf(run)).toEqual([report(0, 1, 1, 0), report(1, 1, 1, 0), report(2, 1, 1, 0)]);
  });

  it.each(['auth', 'unreachable', 'aborted'] as const)('ends the stream when the generator fails with a %s error', async (kind) => {
    const fatal = new ModelError(kind, `${kind}!`);
    const { generator } = fakeGenerator(() => throwError(() => fatal));
    const run = { written: [] as Outcome[], reports: [] as Run['reports'], generatorErrors: [] as Run['generatorErrors'] };
    const tasks = [...persona('A', [`${MARK} 1`, 'ok']), ...persona('B', ['fine'])];
    const result = lastValueFrom(generate(each(tasks), options({ generator }, run), (o) => Promise.resolve(void run.written.push(o))).pipe(toArray()));
    await expect(result).rejects.toBe(fatal);
    expect(run.written).toHaveLength(3);
    expect(run.generatorErrors).toEqual([]);
    expect(reportsOf({ ...run, emitted: [] })).toEqual([report(0, 1, 1, 0)]);
  });
});

describe('supplement: avoid list', () => {
  it("holds the persona's failed queries, then the queries generated in earlier rounds", async () => {
    // Round 1 gives one failing and one good query; round 2 one failing query; round 3 a good one.
    const script: Record<number, string[]> = { 1: [`${MARK} gen 1a`, 'gen 1b'], 2: [`${MARK} gen 2a`], 3: ['gen 3a'] };
    const { generator, calls } = fakeGenerator((name, count, nth) => of((script[nth] ?? []).slice(0, count).map((query) => ({ query, domain: 'general', scenario: 'casual' }))));
    const run = await runGenerate([...persona('A', ['fine', `${MARK} orig 1`, `${MARK} orig 2`]), ...persona('B', [`${MARK} other persona`])], { generator, rounds: 3 });
    const forA = calls.filter((c) => c.persona === 'A');
    expect(forA.map((c) => c.count)).toEqual([2, 1, 1]);
    expect([...(forA[0]?.avoid ?? [])].sort()).toEqual([`${MARK} orig 1`, `${MARK} orig 2`]);
    expect([...(forA[1]?.avoid ?? [])].sort()).toEqual([`${MARK} gen 1a`, `${MARK} orig 1`, `${MARK} orig 2`, 'gen 1b']);
    expect([...(forA[2]?.avoid ?? [])].sort()).toEqual([`${MARK} gen 1a`, `${MARK} gen 2a`, `${MARK} orig 1`, `${MARK} orig 2`, 'gen 1b']);
    // Each persona's avoid list is its own.
    expect(calls.filter((c) => c.persona === 'B')[0]?.avoid).toEqual([`${MARK} other persona`]);
    expect(countBy(interactions(run.emitted), (i) => i.persona_id)).toEqual({ A: 3, B: 1 });
  });
});

describe('supplement: stopping', () => {
  it('starts no round once stopped() is true after the main pass', async () => {
    let stopping = false;
    const { generator, calls } = fakeGenerator();
    const run = { written: [] as Outcome[], reports: [] as Run['reports'], generatorErrors: [] as Run['generatorErrors'] };
    const opts = options({ generator, stopped: () => stopping }, run);
    const emitted = await lastValueFrom(
      generate(each(persona('A', [`${MARK} 1`, 'ok'])), opts, (o) => {
        run.written.push(o);
        stopping = true;
        return Promise.resolve();
      }).pipe(toArray()),
    );
    expect(emitted).toHaveLength(2);
    expect(calls).toEqual([]);
    expect(reportsOf({ ...run, emitted })).toEqual([report(0, 1, 1, 0)]);
  });

  it('finishes the round in progress but starts no further one', async () => {
    let stopping = false;
    const { generator, calls } = fakeGenerator((name, count, nth) => {
      stopping = true;
      return freshQueries(name, count, nth);
    });
    const run = await runGenerate(persona('doomedA', [`${MARK} 1`, `${MARK} 2`]), { generator, rounds: 5, stopped: () => stopping });
    expect(calls).toHaveLength(1);
    expect(run.emitted).toHaveLength(4);
    expect(reportsOf(run)).toEqual([report(0, 1, 2, 0), report(1, 1, 2, 2)]);
  });
});

describe('supplement: rounds = 0', () => {
  it('makes generate run the main pass only, and say who is short and why', async () => {
    const { generator, calls } = fakeGenerator();
    const run = await runGenerate(persona('A', [`${MARK} 1`, `${MARK} 2`, 'ok']), { generator, rounds: 0 });
    expect(run.emitted).toHaveLength(3);
    expect(failures(run.emitted)).toHaveLength(2);
    expect(calls).toEqual([]);
    expect(run.reports.map(({ written: _written, ...r }) => r)).toEqual([{ ...report(0, 1, 2, 0), short: [{ personaId: 'A', missing: 2, why: { 'failed: bad_request': 2 } }] }]);
  });

  it('makes the operator pass outcomes through without running anything', async () => {
    const { generator, calls } = fakeGenerator();
    const reports: RoundReport[] = [];
    let runs = 0;
    const outcomes = await lastValueFrom(
      from(await failedOutcomes(persona('A', [`${MARK} 1`, 'ok']))).pipe(
        supplement({
          ...directOptions(generator),
          rounds: 0,
          run: () => {
            runs += 1;
            return of();
          },
          onRound: (r) => reports.push(r),
        }),
        toArray(),
      ),
    );
    expect(outcomes).toHaveLength(2);
    expect(runs).toBe(0);
    expect(calls).toEqual([]);
    expect(reports).toEqual([{ ...report(0, 1, 1, 0), short: [{ personaId: 'A', missing: 1, why: { 'failed: bad_request': 1 } }] }]);
  });

  it.each([-1, 1.5, Number.NaN])('refuses rounds = %s', (rounds) => {
    expect(() => supplement({ ...directOptions(fakeGenerator().generator), rounds })).toThrow(TypeError);
  });
});

// The operator directly, with a fake `run` that turns tasks into outcomes without any model.
function directOptions(generator: QueryGenerator): SupplementOptions {
  return {
    rounds: 2,
    generator,
    call: directCall,
    seed: 1,
    minTurns: 1,
    maxTurns: 4,
    concurrency: 2,
    run: (tasks) => from(tasks).pipe(map(fakeOutcome)),
  };
}

/** A success, or a failure (with its task) for a marked query: enough of an Outcome for supplement. */
function fakeOutcome(t: Task): Outcome {
  const id = interactionId(t.personaId, t.queryId);
  if (!marked(t.originalQuery)) {
    return { ok: true, interaction: { interaction_id: id, persona_id: t.personaId, original_query: t.originalQuery, metadata: { query_id: t.queryId, supplement_round: t.supplementRound } } as unknown as Interaction };
  }
  const ref = { provider: 'sim', model: 'fake' };
  const failure: Failure = { persona_id: t.personaId, query_id: t.queryId, interaction_id: id, attempts: 1, error: { kind: 'bad_request', message: 'no' }, assistant_model: ref, user_model: ref, time: '', usage: {} };
  return { ok: false, failure: t.supplementRound === undefined ? failure : { ...failure, supplement_round: t.supplementRound }, task: t };
}

const failedOutcomes = (tasks: readonly Task[]): Promise<Outcome[]> => Promise.resolve(tasks.map(fakeOutcome));

describe('supplement operator', () => {
  it('builds supplement tasks with ids, round, seeded target turns and the generated features', async () => {
    const { generator } = fakeGenerator();
    const seen: Task[] = [];
    const source = await failedOutcomes([...persona('A', [`${MARK} 1`, `${MARK} 2`, 'ok'], { style: 'x' }), ...persona('B', ['fine'])]);
    const opts: SupplementOptions = {
      ...directOptions(generator),
      run: (tasks) =>
        from(tasks).pipe(
          map((t) => {
            seen.push(t);
            return fakeOutcome(t);
          }),
        ),
    };
    const outcomes = await lastValueFrom(from(source).pipe(supplement(opts), toArray()));
    expect(outcomes).toHaveLength(6);
    expect(outcomes.slice(0, 4)).toEqual(source);
    expect(seen.map((t) => t.key)).toEqual(['A/supplement_r1_0', 'A/supplement_r1_1']);
    for (const t of seen) {
      expect(t).toMatchObject({ personaId: 'A', adapted: true, supplementRound: 1, source: 'test:A (supplement round 1)', systemPrompt: undefined });
      expect(t.initialQuery).toBe(t.originalQuery);
      expect(t.personaFeatures).toEqual({ name: 'A', communication_style: 'casual', style: 'x', domain: 'productivity', scenario: 'planning' });
      expect(t.targetTurns).toBeGreaterThanOrEqual(1);
      expect(t.targetTurns).toBeLessThanOrEqual(4);
    }
    // The same seed gives the same target turns.
    const again: Task[] = [];
    await lastValueFrom(from(source).pipe(supplement({ ...opts, generator: fakeGenerator().generator, run: (tasks) => from(tasks).pipe(map((t) => (again.push(t), fakeOutcome(t)))) }), toArray()));
    expect(again.map((t) => t.targetTurns)).toEqual(seen.map((t) => t.targetTurns));
  });

  it('never reuses a supplement id an earlier run already wrote (resume)', async () => {
    const seen: Task[] = [];
    const source = await failedOutcomes(persona('A', [`${MARK} 1`, `${MARK} 2`]));
    const written = new Set([interactionId('A', 'supplement_r1_0'), interactionId('A', 'supplement_r1_2')]);
    const opts: SupplementOptions = { ...directOptions(fakeGenerator().generator), rounds: 1, isWritten: (id) => written.has(id), run: (tasks) => from(tasks).pipe(map((t) => (seen.push(t), fakeOutcome(t)))) };
    await lastValueFrom(from(source).pipe(supplement(opts), toArray()));
    expect(seen.map((t) => t.queryId)).toEqual(['supplement_r1_1', 'supplement_r1_3']);
  });

  it('ignores failures that carry no task', async () => {
    const { generator, calls } = fakeGenerator();
    const [failed] = await failedOutcomes(persona('A', [`${MARK} 1`]));
    const bare: Outcome = { ok: false, failure: (failed as { failure: Failure }).failure };
    const reports: RoundReport[] = [];
    const outcomes = await lastValueFrom(of(bare).pipe(supplement({ ...directOptions(generator), onRound: (r) => reports.push(r) }), toArray()));
    expect(outcomes).toEqual([bare]);
    expect(calls).toEqual([]);
    expect(reports).toEqual([{ ...report(0, 0, 0, 0), short: [] }]);
  });

  test.prop(
    [
      fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 0, max: 3 }),
    ],
    { numRuns: 60 },
  )('keeps every persona within its target and reports exact shortfalls', async (spec, rounds, doomedRounds) => {
    // Persona i: `total` tasks of which `bad` fail; its generator gives `given` queries per call, and
    // the queries of its first `doomedRounds` calls fail too.
    const people = spec.map(([total, bad, given], i) => ({ id: `p${i}`, total, bad: Math.min(bad, total), given }));
    const tasks = people.flatMap(({ id, total, bad }) => persona(id, Array.from({ length: total }, (_, k) => (k < bad ? `${MARK} ${k}` : `ok ${k}`))));
    const { generator, calls } = fakeGenerator((name, count, nth) => {
      const who = people.find((p) => p.id === name)!;
      return of(Array.from({ length: who.given }, (_, k) => ({ query: `${nth <= doomedRounds ? `${MARK} ` : ''}gen ${nth}.${k}`, domain: 'general', scenario: 'casual' })));
    });
    const reports: RoundReport[] = [];
    const outcomes = await lastValueFrom(from(tasks.map(fakeOutcome)).pipe(supplement({ ...directOptions(generator), rounds, onRound: (r) => reports.push(r) }), toArray()));

    // Model the expected behaviour persona by persona.
    const expected: Omit<RoundReport, 'short'>[] = [];
    const short = new Map(people.filter((p) => p.bad > 0).map((p) => [p.id, p.bad]));
    expected.push(report(0, short.size, [...short.values()].reduce((a, b) => a + b, 0), 0));
    const done = new Map(people.map((p) => [p.id, p.total - p.bad]));
    let expectedCalls = 0;
    for (let round = 1; round <= rounds && short.size > 0; round += 1) {
      let ran = 0;
      for (const [id, missing] of [...short]) {
        const who = people.find((p) => p.id === id)!;
        expectedCalls += 1;
        const made = Math.min(missing, who.given);
        ran += made;
        const failed = round <= doomedRounds ? made : 0;
        done.set(id, (done.get(id) ?? 0) + made - failed);
        const left = missing - made + failed;
        if (left === 0) short.delete(id);
        else short.set(id, left);
      }
      expected.push(report(round, short.size, [...short.values()].reduce((a, b) => a + b, 0), ran));
    }
    expect(reports.map(({ short: _short, ...r }) => r)).toEqual(expected);
    expect(calls).toHaveLength(expectedCalls);
    const got = countBy(interactions(outcomes), (i) => i.persona_id);
    for (const p of people) {
      expect(got[p.id] ?? 0).toBe(done.get(p.id));
      expect(got[p.id] ?? 0).toBeLessThanOrEqual(p.total);
      if (p.bad === 0) expect(calls.some((c) => c.persona === p.id)).toBe(false);
    }
    // Every id is unique.
    const ids = outcomes.map((o) => (o.ok ? o.interaction.interaction_id : o.failure.interaction_id));
    expect(new Set(ids).size).toBe(ids.length);
  });
});

// ---------------------------------------------------------------------------------------------------
// Determinism with the sim provider

describe('supplement: determinism with sim', () => {
  const simGenerator = () => createQueryGenerator({ model: createSimModel({ provider: 'sim', model: 'gen-sim' }), template: '{persona}\n{count}\n{avoid}', validationRetries: 1 });
  // Generated queries about a spreadsheet fail too, so some personas need several rounds.
  const fails = (query: string): boolean => marked(query) || query.includes('spreadsheet');

  const summary = (outcomes: readonly Outcome[]) => ({
    interactions: interactions(outcomes)
      .map((i) => i.interaction_id)
      .sort(),
    failures: failures(outcomes)
      .map((f) => f.interaction_id)
      .sort(),
    queries: interactions(outcomes)
      .filter((i) => i.metadata.supplement_round !== undefined)
      .map((i) => `${i.interaction_id}=${i.original_query}`)
      .sort(),
  });

  const arbPersonas = fc
    .array(fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 })
    .map((people) => people.flatMap((bad, i) => persona(`p${i}`, bad.map((b, k) => (b ? `${MARK} request ${k}` : `how do I do thing ${k}`)), { role: `role${i}` })));

  test.prop([arbPersonas, fc.integer({ min: 0, max: 1000 })], { numRuns: 8 })('gives the same interactions and supplement queries on every run with the same seed', async (tasks, seed) => {
    const first = await runGenerate(tasks, { generator: simGenerator(), fails, seed, rounds: 2 });
    const second = await runGenerate(tasks, { generator: simGenerator(), fails, seed, rounds: 2 });
    expect(summary(second.emitted)).toEqual(summary(first.emitted));
    expect(reportsOf(second)).toEqual(reportsOf(first));
    const done = countBy(interactions(first.emitted), (i) => i.persona_id);
    const targets = countBy(tasks, (t) => t.personaId);
    for (const [id, count] of Object.entries(done)) expect(count).toBeLessThanOrEqual(targets[id] as number);
  });

  // Regression (fixed): the avoid list is built in completion order (track pushes each failed query as its outcome
  // arrives), and the query-generation prompt lists it in that order. The sim's answer depends on the
  // prompt, so the supplement queries depend on which failure finished first: a run at concurrency 1
  // and one at concurrency 4 with the same seed generate different supplement queries, although sim
  // promises "reproducible at any concurrency and in any completion order". Counterexample: persona P
  // with tasks q0 = "FAIL slow" (fails after 30 ms) and q1 = "FAIL fast" (fails at once): at
  // concurrency 1 the avoid list is [slow, fast], at concurrency 4 it is [fast, slow].
  it('gives the same supplement queries whatever the concurrency (completion order)', async () => {
    const tasks = persona('P', [`${MARK} slow`, `${MARK} fast`], { role: 'nurse' });
    const delayFor = (query: string): number => (query.includes('slow') ? 30 : 0);
    const sequential = await runGenerate(tasks, { generator: simGenerator(), delayFor, concurrency: 1, rounds: 1 });
    const parallel = await runGenerate(tasks, { generator: simGenerator(), delayFor, concurrency: 4, rounds: 1 });
    expect(summary(parallel.emitted)).toEqual(summary(sequential.emitted));
  });
});

// ---------------------------------------------------------------------------------------------------
// Style transfer in converse's opening

describe('converse with style transfer', () => {
  const TEMPLATE = '{persona} {query} {target_length} {target_turns}';

  const styled = (probability: number, styleModel: ChatModel = createSimModel({ provider: 'sim', model: 'style-sim' })): StyleTransfer =>
    createStyleTransfer({ model: styleModel, template: TEMPLATE, probability, validationRetries: 1 });

  const converseOptions = (styleTransfer: StyleTransfer | undefined, overrides: Partial<ConverseOptions> = {}): ConverseOptions => ({
    pool: simPool(['sim-a']),
    user: { model: createSimModel({ provider: 'sim', model: 'user-sim' }), template: USER_TEMPLATE, feedbackProbability: 0.85 },
    seed: 3,
    minTurns: 1,
    maxTurns: 2,
    concurrency: 16,
    maxRetries: 1,
    retryDelayMs: 0,
    styleTransfer,
    ...overrides,
  });

  const runConverse = (tasks: readonly Task[], opts: ConverseOptions): Promise<Outcome[]> => lastValueFrom(from(tasks.map((t) => locked(t))).pipe(converse(opts), toArray()));

  const styleOf = (interaction: Interaction): StyleTransferResult | undefined => interaction.metadata.style_transfer as StyleTransferResult | undefined;

  it('opens with the adapted query, keeps the dataset query and adds domain and scenario', async () => {
    const style = recording(createSimModel({ provider: 'sim', model: 'style-sim' }));
    const users = recording(createSimModel({ provider: 'sim', model: 'user-sim' }));
    const tasks = [
      task({ personaId: 'a', key: 'a/q1', personaFeatures: { communication_style: 'casual' } }),
      task({ personaId: 'b', key: 'b/q1', originalQuery: 'Write a python function that parses dates.', personaFeatures: { communication_style: 'formal', query_length_pref: 'long' } }),
    ];
    const opts = converseOptions(styled(1, style.model), { user: { model: users.model, template: USER_TEMPLATE, feedbackProbability: 1 }, maxTurns: 3 });
    const outcomes = await runConverse(tasks, opts);
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(style.requests).toHaveLength(2);
    for (const interaction of interactions(outcomes)) {
      const t = tasks.find((x) => x.personaId === interaction.persona_id)!;
      const st = styleOf(interaction);
      expect(st).toMatchObject({ applied: true, prompt_type: 'full' });
      expect(interaction.original_query).toBe(t.originalQuery);
      expect(interaction.initial_query).toBe(st?.adapted_query);
      expect(interaction.initial_query).not.toBe(t.originalQuery);
      expect(interaction.initial_query).not.toBe(t.initialQuery);
      expect(interaction.messages[0]).toMatchObject({ role: 'user', content: interaction.initial_query, metadata: { is_initial: true, clean_version: interaction.initial_query, was_noised: false } });
      expect(interaction.persona_features).toEqual({ ...t.personaFeatures, domain: st?.inferred_domain, scenario: st?.inferred_scenario });
      expect(interaction.metadata.usage.style_transfer?.calls).toBe(1);
      expect(LENGTHS as readonly string[]).toContain(st?.target_length);
    }
    const b = interactions(outcomes).find((i) => i.persona_id === 'b')!;
    expect(styleOf(b)).toMatchObject({ target_length: 'long', inferred_domain: 'coding', inferred_scenario: 'work_task' });
    // The style model saw the dataset query; the user simulator sees the adjusted persona.
    expect(style.requests.map((r) => r.hints?.styleTransfer?.query).sort()).toEqual(tasks.map((t) => t.originalQuery).sort());
    const bUser = users.requests.filter((r) => r.hints?.originalQuery === b.original_query);
    for (const request of bUser) expect(request.hints?.persona).toMatchObject({ domain: 'coding', scenario: 'work_task' });
  });

  it('keeps the query of a task the input adapted', async () => {
    const style = recording(createSimModel({ provider: 'sim', model: 'style-sim' }));
    const [outcome] = await runConverse([task({ adapted: true })], converseOptions(styled(1, style.model)));
    const interaction = interactions([outcome!])[0]!;
    expect(style.requests).toEqual([]);
    expect(interaction.initial_query).toBe(task().initialQuery);
    expect(interaction.original_query).toBe(task().originalQuery);
    expect(interaction.messages[0]?.content).toBe(task().initialQuery);
    expect(interaction.persona_features).toEqual(task().personaFeatures);
    expect(interaction.metadata.style_transfer).toBeUndefined();
  });

  it('keeps the original query and says why when every answer is rejected', async () => {
    const refusing: ChatModel = { provider: 'sim', model: 'refuser', complete: () => Promise.resolve({ content: "I'm sorry, I can't do that.", usage: { input: 1, output: 1 } }) };
    const [outcome] = await runConverse([task()], converseOptions(styled(1, refusing)));
    const interaction = interactions([outcome!])[0]!;
    expect(styleOf(interaction)).toMatchObject({ applied: false, prompt_type: 'none', adapted_query: task().originalQuery, error: expect.stringContaining('rejected 2 time(s)') as string });
    expect(interaction.initial_query).toBe(task().initialQuery);
    expect(interaction.persona_features).toEqual(task().personaFeatures);
  });

  it('ends the run when style transfer hits an authentication error', async () => {
    const denied: ChatModel = { provider: 'sim', model: 'denied', complete: () => Promise.reject(new ModelError('auth', 'authentication failed (401)', { status: 401 })) };
    await expect(runConverse([task()], converseOptions(styled(1, denied)))).rejects.toBeInstanceOf(FatalError);
  });

  const many = Array.from({ length: 400 }, (_, i) => task({ personaId: `p${i}`, key: `p${i}/q1`, queryId: 'q1' }));

  it('restyles nothing at probability 0', async () => {
    const style = recording(createSimModel({ provider: 'sim', model: 'style-sim' }));
    const outcomes = await runConverse(many.slice(0, 100), converseOptions(styled(0, style.model)));
    expect(style.requests).toEqual([]);
    for (const interaction of interactions(outcomes)) {
      expect(interaction.metadata.style_transfer).toBeUndefined();
      expect(interaction.initial_query).toBe(task().initialQuery);
    }
  });

  it('restyles about half at probability 0.5', async () => {
    const style = recording(createSimModel({ provider: 'sim', model: 'style-sim' }));
    const outcomes = await runConverse(many, converseOptions(styled(0.5, style.model)));
    expect(outcomes).toHaveLength(400);
    const restyled = interactions(outcomes).filter((i) => styleOf(i)?.applied === true);
    // Binomial(400, 0.5): mean 200, sd 10; ±5 sd.
    expect(restyled.length).toBeGreaterThanOrEqual(150);
    expect(restyled.length).toBeLessThanOrEqual(250);
    expect(style.requests).toHaveLength(restyled.length);
    for (const interaction of interactions(outcomes)) {
      if (styleOf(interaction) === undefined) expect(interaction.initial_query).toBe(task().initialQuery);
      else expect(interaction.initial_query).toBe(styleOf(interaction)?.adapted_query);
    }
    // The same seed restyles the same tasks.
    const again = await runConverse(many, converseOptions(styled(0.5)));
    expect(
      interactions(again)
        .filter((i) => styleOf(i)?.applied === true)
        .map((i) => i.persona_id)
        .sort(),
    ).toEqual(restyled.map((i) => i.persona_id).sort());
  });
});
