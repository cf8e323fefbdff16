// supplement: after the main pass, new queries for personas that fell short of their target, through the same pipeline.
import { EMPTY, Observable, catchError, concat, concatMap, defer, from, map, mergeMap, of, tap, throwError, toArray, type MonoTypeOperatorFunction } from 'rxjs';
import { interactionId, judgedRejected, verdictOf, type Features, type Outcome, type Task } from '../types.js';
import { endsRun } from '../errors.js';
import type { PromptCall } from '../prompts/ask.js';
import type { QueryGenerator } from '../queries/queryGenerator.js';
import { rngFor } from '../rng.js';

/** One persona that is short of its target: what the query generator needs to top it up. */
interface Shortfall {
  readonly personaId: string;
  readonly features: Features;
  readonly systemPrompt: string | undefined;
  readonly source: string;
  /** Queries this persona already had (failed or generated): the new ones must be unlike them. */
  readonly used: string[];
  /** Why it missed, counted: `failed: <kind>`, `rejected: <reason>`, `no new queries`. */
  readonly why: Record<string, number>;
}

/** A persona still short of its target, and why its tasks missed. */
export interface ShortPersona {
  readonly personaId: string;
  readonly missing: number;
  readonly why: Readonly<Record<string, number>>;
}

/** Short personas a report names (the count covers them all). */
export const NAMED_SHORT = 20;

/** How far the personas are from their targets after a pass. */
export interface RoundReport {
  /** 0 for the main pass, then 1, 2, ... */
  readonly round: number;
  /** Personas still short of their target after this pass. */
  readonly personasShort: number;
  /** Interactions those personas still miss. */
  readonly missing: number;
  /** Supplement tasks this round ran (0 for the main pass). */
  readonly tasks: number;
  /** The first NAMED_SHORT personas still short, with why. */
  readonly short: readonly ShortPersona[];
}

export interface SupplementOptions {
  /** Supplement rounds after the main pass (PersonaGym's `max_supplement_rounds`). */
  readonly rounds: number;
  /** Needed when `rounds` > 0 (with 0 rounds the operator only reports who is short). */
  readonly generator?: QueryGenerator | undefined;
  /** Makes the generator's calls (with retries and usage accounting). */
  readonly call?: PromptCall | undefined;
  readonly seed: number;
  readonly minTurns: number;
  readonly maxTurns: number;
  /** Generator calls in flight at once. */
  readonly concurrency: number;
  /** Runs tasks through the same pipeline as the main pass (lockModel, converse, the sink). */
  readonly run: (tasks: AsyncIterable<Task>) => Observable<Outcome>;
  /** After the main pass and after each round. */
  readonly onRound?: (report: RoundReport) => void;
  /** A persona the generator could not top up in a round (it stays short). */
  readonly onGeneratorError?: (personaId: string, error: unknown) => void;
  /** Interaction ids an earlier run already wrote (--resume): new supplement query ids pass them over. */
  readonly isWritten?: (interactionId: string) => boolean;
  /** True once the run is stopping (Ctrl-C): no further round starts. */
  readonly stopped?: () => boolean;
}

/** The items of an array as an async iterable (what `run` pulls from). */
function each<T>(items: readonly T[]): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => {
      let next = 0;
      return {
        next: () => Promise.resolve(next < items.length ? { value: items[next++] as T, done: false as const } : { value: undefined, done: true as const }),
      };
    },
  };
}

/**
 * Passes outcomes through and remembers every persona with failed tasks or conversations the judge
 * rejected (its target is the tasks it had, so it is short by those). When the source completes, each short persona gets that many new
 * queries from the query generator, which run through `run` like the main pass; their failures make the
 * next round, up to `rounds`. A persona that met its target is never topped up, and a persona is never
 * topped up past it. Memory holds the personas that were ever short, with the queries they had. Failed tasks stay failures (the sink has
 * written them); supplement tasks carry their round, and their query ids are `supplement_r<round>_<n>`.
 *
 * ```
 * outcomes: --A--b!--C--|                     (b failed: persona of b is short by one)
 * output:   --A--b!--C--------B'--|           (round 1: a new query for b's persona, B' succeeds)
 * ```
 */
export function supplement(options: SupplementOptions): MonoTypeOperatorFunction<Outcome> {
  if (!Number.isInteger(options.rounds) || options.rounds < 0) throw new TypeError(`Expected \`rounds\` to be a non-negative integer, got \`${String(options.rounds)}\``);
  const { generator, call } = options;
  if (options.rounds > 0 && (generator === undefined || call === undefined)) throw new TypeError('Expected a `generator` and a `call` for supplement rounds');
  return (source) =>
    defer(() => {
      // Every persona that was ever short (with the queries it already had), and how many it misses now.
      const known = new Map<string, Shortfall>();
      const short = new Map<string, number>();
      const track = tap((outcome: Outcome) => {
        // A failed task, or a conversation the judge rejected: its persona is short by one.
        if ((outcome.ok && !judgedRejected(outcome)) || outcome.task === undefined) return;
        const { task } = outcome;
        let entry = known.get(task.personaId);
        if (entry === undefined) {
          entry = { personaId: task.personaId, features: task.personaFeatures, systemPrompt: task.systemPrompt, source: task.source, used: [], why: {} };
          known.set(task.personaId, entry);
        }
        const reasons = outcome.ok ? (verdictOf(outcome.interaction)?.reasons ?? []).map((reason) => `rejected: ${reason}`) : [`failed: ${outcome.failure.error.kind}`];
        for (const reason of reasons) entry.why[reason] = (entry.why[reason] ?? 0) + 1;
        if (!entry.used.includes(task.originalQuery)) entry.used.push(task.originalQuery);
        short.set(task.personaId, (short.get(task.personaId) ?? 0) + 1);
      });
      const report = (round: number, tasks: number): void => {
        let missing = 0;
        const named: ShortPersona[] = [];
        for (const [personaId, count] of short) {
          missing += count;
          if (named.length < NAMED_SHORT) named.push({ personaId, missing: count, why: { ...(known.get(personaId) as Shortfall).why } });
        }
        options.onRound?.({ round, personasShort: short.size, missing, tasks, short: named });
      };

      const tasksFor = (entry: Shortfall, missing: number, round: number): Observable<Task[]> =>
        // A sorted copy: the prompt must not depend on the order failures completed in (determinism).
        (generator as QueryGenerator).generate(entry.features, missing, [...entry.used].sort(), call as PromptCall).pipe(
          map((queries) => {
            const made = queries.slice(0, missing);
            entry.used.push(...made.map((query) => query.query));
            // Fewer queries than asked: the persona stays short by the rest.
            if (made.length < missing) {
              short.set(entry.personaId, (short.get(entry.personaId) ?? 0) + missing - made.length);
              entry.why['no new queries'] = (entry.why['no new queries'] ?? 0) + missing - made.length;
            }
            let n = 0;
            const nextQueryId = (): string => {
              // A resumed run may already hold this round's first ids for the persona: never reuse one.
              while (options.isWritten?.(interactionId(entry.personaId, `supplement_r${round}_${n}`)) === true) n += 1;
              n += 1;
              return `supplement_r${round}_${n - 1}`;
            };
            return made.map((query): Task => {
              const queryId = nextQueryId();
              const key = `${entry.personaId}/${queryId}`;
              return {
                personaId: entry.personaId,
                personaFeatures: { ...entry.features, domain: query.domain, scenario: query.scenario },
                systemPrompt: entry.systemPrompt,
                queryId,
                originalQuery: query.query,
                initialQuery: query.query,
                targetTurns: rngFor(options.seed, key, 'target_turns').int(options.minTurns, options.maxTurns),
                key,
                source: `${entry.source} (supplement round ${round})`,
                adapted: true,
                supplementRound: round,
              };
            });
          }),
          catchError((error: unknown) => {
            if (endsRun(error)) return throwError(() => error);
            options.onGeneratorError?.(entry.personaId, error);
            short.set(entry.personaId, (short.get(entry.personaId) ?? 0) + missing);
            entry.why['no new queries'] = (entry.why['no new queries'] ?? 0) + missing;
            return of([]);
          }),
        );

      const round = (n: number): Observable<Outcome> =>
        defer(() => {
          if (n > options.rounds || short.size === 0 || options.stopped?.() === true) return EMPTY;
          const wanted = [...short.entries()];
          short.clear();
          return from(wanted).pipe(
            mergeMap(([personaId, missing]) => tasksFor(known.get(personaId) as Shortfall, missing, n), options.concurrency),
            concatMap((tasks) => tasks),
            toArray(),
            concatMap((tasks) => concat(options.run(each(tasks)).pipe(track), defer(() => (report(n, tasks.length), EMPTY)))),
          );
        });

      const rounds = (n: number): Observable<Outcome> => (n > options.rounds ? EMPTY : concat(round(n), defer(() => (short.size === 0 ? EMPTY : rounds(n + 1)))));
      return concat(source.pipe(track), defer(() => (report(0, 0), EMPTY)), rounds(1));
    });
}
