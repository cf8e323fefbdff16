// Renderings of an estimate's sample: the real pipeline (lockModel, converse, noise, style transfer, the judge, supplement rounds) with stand-in models, every call tallied.
import { lastValueFrom } from 'rxjs';
import type { ModelRef } from '../chat.js';
import { NearDuplicates } from '../judge/duplicates.js';
import type { Judge } from '../judge/judge.js';
import { createPool, type ModelPool } from '../models/pool.js';
import { retryingCall } from '../operators/retryingCall.js';
import type { RoundReport } from '../operators/supplement.js';
import { generate, type GenerateOptions } from '../pipeline.js';
import type { QueryGenerator } from '../queries/queryGenerator.js';
import { judgedRejected, type Outcome, type Task } from '../types.js';
import { extrapolate, mix, type Tallies, type Tally } from './figures.js';
import type { StandIns } from './standIns.js';

/** What a run's conversations are made of, with stand-in models (the options `setUpConversations` returns). */
export interface RenderSetup {
  readonly conversations: Omit<GenerateOptions, 'supplement' | 'judge' | 'onUsage'>;
  readonly judge: Judge | undefined;
  /** The supplement rounds' query generator (none: no rounds). */
  readonly generator: QueryGenerator | undefined;
  readonly rounds: number;
}

/** What one rendering of the sample came to. */
export interface Rendering {
  readonly tallies: Tallies;
  /** Conversations of the main pass and of supplement rounds. */
  readonly conversations: number;
  /** Conversations that ended as interactions (accepted or rejected by the judge), and their turns in all. */
  readonly interactions: number;
  readonly turns: number;
  /** Conversations the judge rejected, and those that failed. */
  readonly rejected: number;
  readonly failed: number;
  /** Conversations supplement rounds added. */
  readonly topUps: number;
}

/** The items of an array as an async iterable (what the pipeline pulls from). */
function each<T>(items: readonly T[]): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => {
      const iterator = items[Symbol.iterator]();
      return { next: () => Promise.resolve(iterator.next()) };
    },
  };
}

const keyOf = (ref: ModelRef): string => `${ref.provider}/${ref.model}`;

/**
 * Runs `tasks` through the pipeline once, one conversation at a time (so the judge's near-duplicates
 * come in input order, whatever the machine's speed), with `pool` and with or without supplement
 * rounds, and tallies every call by model.
 */
export async function render(tasks: readonly Task[], setup: RenderSetup, run: { readonly pool: ModelPool; readonly supplement: boolean }): Promise<Rendering> {
  const tallies = new Map<string, Tally>();
  const onUsage: GenerateOptions['onUsage'] = (_module, ref, usage) => {
    const tally = tallies.get(keyOf(ref)) ?? { calls: 0, input: 0, output: 0 };
    tallies.set(keyOf(ref), { calls: tally.calls + 1, input: tally.input + usage.input, output: tally.output + usage.output });
  };
  const { conversations } = setup;
  const counts = { conversations: 0, interactions: 0, turns: 0, rejected: 0, failed: 0, topUps: 0 };
  const rounds = run.supplement && setup.generator !== undefined ? setup.rounds : 0;
  const options: GenerateOptions = {
    ...conversations,
    pool: run.pool,
    concurrency: 1,
    onUsage,
    judge: setup.judge === undefined ? undefined : { judge: setup.judge, duplicates: new NearDuplicates() },
    supplement:
      rounds === 0
        ? undefined
        : {
            rounds,
            generator: setup.generator,
            call: retryingCall({ maxRetries: conversations.maxRetries, retryDelayMs: 0, onUsage }),
            concurrency: 1,
            onRound: (report: RoundReport) => (counts.topUps += report.tasks),
          },
  };
  const write = (outcome: Outcome): Promise<void> => {
    counts.conversations += 1;
    if (outcome.ok) {
      counts.interactions += 1;
      counts.turns += outcome.interaction.num_turns;
      if (judgedRejected(outcome)) counts.rejected += 1;
    } else counts.failed += 1;
    return Promise.resolve();
  };
  await lastValueFrom(generate(each(tasks), options, write), { defaultValue: undefined });
  return { tallies, ...counts };
}

/** The pool with every draw going to entry `index`. */
const only = (pool: ModelPool, index: number): ModelPool => createPool(pool.entries.map((entry, i) => ({ ...entry, weight: i === index ? 1 : 0 })));

/** What the renderings of one end came to, for the whole input: tallies, and the facts an estimate states. */
export interface End {
  readonly tallies: Tallies;
  /** Per conversation of the main pass, on average: turns, and the share the judge rejected or that failed. */
  readonly turns: number;
  readonly rejected: number;
  readonly failed: number;
  /** Conversations supplement rounds add per conversation of the main pass. */
  readonly topUps: number;
}

/** The low and the high end of an estimate. */
export interface Ends {
  readonly low: End;
  readonly high: End;
}

/** What one end's renderings average to, weighted like their tallies. */
function endOf(renderings: readonly { readonly weight: number; readonly rendering: Rendering }[], sampled: number, total: number): End {
  const weights = renderings.reduce((sum, { weight }) => sum + weight, 0);
  const mean = (of: (rendering: Rendering) => number): number => renderings.reduce((sum, { weight, rendering }) => sum + (weight / weights) * of(rendering), 0);
  const per = (count: number, of: number): number => (of === 0 ? 0 : count / of);
  return {
    tallies: extrapolate(mix(renderings.map(({ weight, rendering }) => ({ weight, tallies: rendering.tallies }))), sampled, total),
    turns: mean((r) => per(r.turns, r.interactions)),
    rejected: mean((r) => per(r.rejected, r.conversations)),
    failed: mean((r) => per(r.failed, r.conversations)),
    topUps: mean((r) => per(r.topUps, sampled)),
  };
}

/**
 * Renders `sample` for both ends and carries the tallies over to `total` tasks. Every pool entry with a
 * weight gets a low and a high rendering of the whole sample, mixed by the weights, so a small sample
 * still gets the pool's shares. With `exact` (every model is sim: its replies, lengths and judgements are
 * the run's own) one rendering per entry is both ends; and when the sample is the whole input, the one
 * rendering is the run itself, its pool drawn as the run draws it.
 */
export async function renderEnds(sample: readonly Task[], total: number, setup: RenderSetup, standIns: StandIns, exact: boolean): Promise<Ends> {
  const { pool } = setup.conversations;
  if (sample.length === 0) {
    const none: End = { tallies: new Map(), turns: 0, rejected: 0, failed: 0, topUps: 0 };
    return { low: none, high: none };
  }
  if (exact && sample.length === total) {
    standIns.reset();
    const end = endOf([{ weight: 1, rendering: await render(sample, setup, { pool, supplement: true }) }], sample.length, total);
    return { low: end, high: end };
  }
  const low: { weight: number; rendering: Rendering }[] = [];
  const high: { weight: number; rendering: Rendering }[] = [];
  for (const [index, entry] of pool.entries.entries()) {
    if (entry.weight <= 0) continue;
    for (const [scenario, into, supplement] of exact ? ([['low', low, true]] as const) : ([['low', low, false], ['high', high, true]] as const)) {
      standIns.scenario = scenario;
      standIns.reset();
      into.push({ weight: entry.weight, rendering: await render(sample, setup, { pool: only(pool, index), supplement }) });
    }
  }
  standIns.reset();
  const lowEnd = endOf(low, sample.length, total);
  return { low: lowEnd, high: exact ? lowEnd : endOf(high, sample.length, total) };
}
