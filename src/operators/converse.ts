// converse: run each locked task's conversation turn by turn, with bounded concurrency and one outcome per task.
import { EMPTY, Observable, catchError, concatMap, defer, expand, last, map, of, throwError, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { GuardError, ModelError, describeError, runEndingError } from '../errors.js';
import type { ModelPool } from '../models/pool.js';
import { DEFAULT_STOP_TOKEN, assistantMessages, guardReply, nudgeFor, parseUserReply, userSimulatorMessages, type GuardReason, type TemplateValues } from '../models/prompts.js';
import type { ChatModel, ChatRequest, ChatResponse, ModelModule, UsageListener } from '../models/types.js';
import type { Distractor, NoisedText } from '../noise/distractor.js';
import type { StyleTransfer, StyleTransferResult } from '../queries/styleTransfer.js';
import { rngFor } from '../rng.js';
import { addUsage, interactionId, type Interaction, type InteractionMessage, type LockedTask, type Outcome, type UsageEntry } from '../types.js';
import { mergeMapLending, type Lend } from './mergeMapLending.js';
import { retryingCall } from './retryingCall.js';

export interface UserSimulatorOptions {
  readonly model: ChatModel;
  readonly template: string;
  readonly temperature?: number | undefined;
  readonly maxCompletionTokens?: number | undefined;
  /** Probability that, between min_turns and the target, the user answers at all instead of leaving satisfied. */
  readonly feedbackProbability: number;
}

export interface ConverseOptions {
  /** Assistant models; each task talks to the one `lockModel` drew. */
  readonly pool: ModelPool;
  readonly user: UserSimulatorOptions;
  readonly seed: number;
  readonly minTurns: number;
  readonly maxTurns: number;
  /**
   * Conversations working at once (PersonaGym's `max_workers`). One sitting out a Retry-After or a backoff
   * lends its slot meanwhile, so this many are calling or computing while others wait.
   */
  readonly concurrency: number;
  /** Retries per model call and base delay (PersonaGym's `max_retries`, `retry_delay`). */
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  /** Simulator replies the guards may reject in one turn before the task fails. Default 3. */
  readonly maxGuardRetries?: number;
  readonly stopToken?: string;
  /** Rewrites dataset queries in the persona's voice before the conversation (tasks without `adapted_query`). */
  readonly styleTransfer?: StyleTransfer | undefined;
  /** Noise for user turns (the initial query and follow-ups, as its `applyTo` says); none when absent. */
  readonly distractor?: Distractor | undefined;
  /** Called on every retried call (for statistics). */
  readonly onRetry?: (module: ModelModule, error: unknown) => void;
  /**
   * Called with the tokens of every billed call: answered calls (including those of tasks that later fail
   * or are cancelled) and failed attempts whose response carried usage.
   */
  readonly onUsage?: UsageListener;
  readonly scheduler?: SchedulerLike;
  readonly now?: () => Date;
}

interface State {
  readonly task: LockedTask;
  readonly messages: InteractionMessage[];
  readonly usage: Record<string, UsageEntry>;
  readonly guard: Record<string, number>;
  /** Assistant answers so far (PersonaGym's `num_turns`). */
  turns: number;
  /** Attempts of the call in progress, for the failure record. */
  attempts: number;
  done: boolean;
  ended: boolean;
  closing: string;
  /** What the distractor did to the initial query and to each follow-up. */
  initialNoise: NoisedText | undefined;
  /** Style transfer's result, when it was attempted. */
  style: StyleTransferResult | undefined;
  /** The persona as the conversation sees it: with style transfer's domain and scenario (PersonaGym's query-adjusted features). */
  features: LockedTask['personaFeatures'];
  /** The clean first message: the input's, or style transfer's. */
  initialQuery: string;
  readonly followupNoise: Array<{ readonly turn: number; readonly noised: NoisedText }>;
}

const validate = (options: ConverseOptions): void => {
  const { minTurns, maxTurns, concurrency } = options;
  if (!Number.isInteger(minTurns) || minTurns < 1) throw new TypeError(`Expected \`minTurns\` to be a positive integer, got \`${String(minTurns)}\``);
  if (!Number.isInteger(maxTurns) || maxTurns < minTurns) throw new TypeError(`Expected \`maxTurns\` to be an integer ≥ minTurns (${minTurns}), got \`${String(maxTurns)}\``);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be a positive integer, got \`${String(concurrency)}\``);
  const p = options.user.feedbackProbability;
  if (!(p >= 0 && p <= 1)) throw new TypeError(`Expected \`feedbackProbability\` to be a number in [0, 1], got \`${String(p)}\``);
};

/**
 * Simulates one conversation per task and emits exactly one outcome per task: the Interaction, or a
 * failure record when a call still fails after its retries or the simulator guards give up. Turn 1 is the
 * task's initial query; then the locked assistant answers and the user simulator follows up or stops.
 * Before `minTurns` the user always continues (a stop is regenerated); at the target or `maxTurns` the
 * conversation ends; in between the user answers with `feedbackProbability` and may still stop.
 * Retries happen per call, so a retry never re-bills turns that already succeeded. An authentication
 * error, or an endpoint still unreachable after its retries, is not a task failure: it errors the stream
 * with a FatalError so the run stops at once.
 *
 * ```
 * tasks:    --a--b--c----------|       (concurrency 2)
 * outcomes: ---------B----A--C-|       (completion order)
 * ```
 *
 * @example
 * tasks$.pipe(lockModel(pool, seed), converse({ pool, user, seed, minTurns: 2, maxTurns: 5, concurrency: 16, maxRetries: 3, retryDelayMs: 2000 }))
 *
 * @param options models, turn limits, concurrency and retry budget.
 * @returns an operator from locked tasks to outcomes, in completion order.
 */
export function converse(options: ConverseOptions): OperatorFunction<LockedTask, Outcome> {
  validate(options);
  return mergeMapLending((task: LockedTask, lend) => conversation(task, options, lend), options.concurrency);
}

function conversation(task: LockedTask, options: ConverseOptions, lend: Lend): Observable<Outcome> {
  return defer(() => {
    const now = options.now ?? (() => new Date());
    const stopToken = options.stopToken ?? DEFAULT_STOP_TOKEN;
    const assistant = options.pool.entries[task.poolIndex];
    if (assistant === undefined) throw new TypeError(`Task ${task.key} is locked to pool entry ${task.poolIndex}, but the pool has ${options.pool.entries.length}`);
    // The engine owns the turn limits: a target outside [minTurns, maxTurns] is clamped.
    const targetTurns = Math.min(options.maxTurns, Math.max(options.minTurns, task.targetTurns));
    const state: State = { task, messages: [], usage: {}, guard: {}, turns: 0, attempts: 0, done: false, ended: false, closing: '', initialNoise: undefined, followupNoise: [], style: undefined, features: task.personaFeatures, initialQuery: task.initialQuery };
    const timestamp = (): string => now().toISOString();

    const retrying = retryingCall({
      maxRetries: options.maxRetries,
      retryDelayMs: options.retryDelayMs,
      scheduler: options.scheduler,
      lend,
      onRetry: (module, error) => {
        state.attempts += 1;
        options.onRetry?.(module, error);
      },
      onUsage: (module, model, usage, call) => {
        addUsage(state.usage, module, usage);
        options.onUsage?.(module, model, usage, call);
      },
    });
    const call = (model: ChatModel, request: ChatRequest): Observable<ChatResponse> =>
      defer(() => {
        state.attempts = 1;
        return retrying(model, request);
      });

    // Noise for one user turn, with its own seeded draws; the clean text goes on when there is no distractor.
    const { distractor } = options;
    const noised = (text: string, purpose: string, applies: boolean | undefined): Observable<NoisedText | undefined> =>
      distractor === undefined || applies !== true
        ? of(undefined)
        : distractor.noise(text, { persona: state.features, rng: rngFor(options.seed, task.key, purpose), call: (model, request) => call(model, request) });

    // Style transfer (a query the input did not adapt itself, with its probability), then noise.
    const { styleTransfer } = options;
    const restyled = (): Observable<StyleTransferResult | undefined> =>
      styleTransfer === undefined || task.adapted === true || rngFor(options.seed, task.key, 'style_transfer').next() >= styleTransfer.probability
        ? of(undefined)
        : styleTransfer.adapt(task.originalQuery, task.personaFeatures, targetTurns, rngFor(options.seed, task.key, 'style_transfer/draws'), (model, request) => call(model, request));

    const opening = (): Observable<State> =>
      restyled().pipe(
        concatMap((style) => {
          state.style = style;
          if (style?.applied === true) {
            state.initialQuery = style.adapted_query;
            state.features = { ...task.personaFeatures, domain: style.inferred_domain, scenario: style.inferred_scenario };
          }
          return noised(state.initialQuery, 'noise/initial', distractor?.applyTo.initial_query);
        }),
        map((noise) => {
          state.initialNoise = noise;
          const clean = state.initialQuery;
          const sent = noise?.sent ?? clean;
          state.messages.push({
            role: 'user',
            content: sent,
            timestamp: timestamp(),
            metadata: { turn: 0, is_initial: true, clean_version: clean, was_noised: sent !== clean },
          });
          return state;
        }),
      );

    const values = (): TemplateValues => ({
      persona: state.features,
      systemPrompt: task.systemPrompt,
      originalQuery: task.originalQuery,
      history: state.messages,
      currentTurn: state.turns,
      targetTurns,
      minTurns: options.minTurns,
      maxTurns: options.maxTurns,
      stopToken,
    });

    const assistantTurn = (): Observable<State> =>
      call(assistant.model, {
        module: 'assistant',
        messages: assistantMessages(state.messages),
        temperature: assistant.temperature,
        maxCompletionTokens: assistant.maxCompletionTokens,
      }).pipe(
        map((response) => {
          state.messages.push({
            role: 'assistant',
            content: response.content,
            timestamp: timestamp(),
            metadata: { turn: state.turns, model: task.assistant.model, provider: task.assistant.provider },
          });
          state.turns += 1;
          return state;
        }),
      );

    // One simulator reply, checked by the guards; a rejected reply is regenerated with a nudge
    // (at a slightly higher temperature) that never enters the transcript.
    const userTurn = (attempt: number, nudge: string | undefined): Observable<State> => {
      const canStop = state.turns >= options.minTurns;
      const base = options.user.temperature ?? 0.8;
      return call(options.user.model, {
        module: 'user_simulator',
        operation: attempt === 0 ? 'follow_up' : 'guard_retry',
        messages: userSimulatorMessages(options.user.template, values(), nudge),
        temperature: attempt === 0 ? options.user.temperature : Math.min(2, base + 0.1 * attempt),
        maxCompletionTokens: options.user.maxCompletionTokens,
        hints: { persona: state.features, turn: state.turns, targetTurns, minTurns: options.minTurns, stopToken, originalQuery: task.originalQuery },
      }).pipe(
        concatMap((response) => {
          const reply = parseUserReply(response.content, stopToken);
          const reason: GuardReason | undefined = guardReply(response.content, reply, state.messages, canStop);
          if (reason !== undefined) {
            state.guard[reason] = (state.guard[reason] ?? 0) + 1;
            if (attempt < (options.maxGuardRetries ?? 3)) return userTurn(attempt + 1, nudgeFor(reason, stopToken));
            // Repair a persistent early stop that came with text: the text is a usable follow-up.
            if (reason === 'early_stop' && reply.kind === 'stop' && reply.closing.length > 0) return followUp(reply.closing);
            return throwError(() => new GuardError(`user simulator reply rejected ${attempt + 1} times (last: ${reason})`));
          }
          if (reply.kind === 'stop') {
            state.done = true;
            state.ended = true;
            state.closing = reply.closing;
            return of(state);
          }
          return followUp(reply.text);
        }),
      );
    };

    const followUp = (text: string): Observable<State> =>
      noised(text, `noise/turn/${state.turns}`, distractor?.applyTo.follow_up_feedback).pipe(
        map((noise) => {
          if (noise !== undefined) state.followupNoise.push({ turn: state.turns, noised: noise });
          const sent = noise?.sent ?? text;
          state.messages.push({ role: 'user', content: sent, timestamp: timestamp(), metadata: { turn: state.turns, is_followup: true, clean_version: text, was_noised: sent !== text } });
          return state;
        }),
      );

    // After each assistant answer: end at the target or max_turns, always continue before min_turns,
    // and in between ask the simulator only with feedback_probability (it may still say it is done).
    const next = (): Observable<State> => {
      if (state.turns >= targetTurns) {
        state.done = true;
        state.ended = state.turns < options.maxTurns;
        return of(state);
      }
      if (state.turns >= options.minTurns && rngFor(options.seed, task.key, `feedback/${state.turns}`).next() >= options.user.feedbackProbability) {
        state.done = true;
        state.ended = true;
        return of(state);
      }
      return userTurn(0, undefined).pipe(concatMap((s) => (s.done ? of(s) : assistantTurn())));
    };

    return opening().pipe(
      concatMap(() => assistantTurn()),
      expand((s) => (s.done ? EMPTY : next())),
      last(),
      map((s): Outcome => ({ ok: true, interaction: toInteraction(s, options, targetTurns, timestamp()) })),
      catchError((error: unknown) => {
        const fatal = runEndingError(error, state.attempts);
        return fatal === undefined ? of(toFailure(state, options, error, timestamp())) : throwError(() => fatal);
      }),
    );
  });
}

function toInteraction(state: State, options: ConverseOptions, targetTurns: number, createdAt: string): Interaction {
  const { task } = state;
  return {
    interaction_id: interactionId(task.personaId, task.queryId),
    persona_id: task.personaId,
    persona_features: state.features,
    original_query: task.originalQuery,
    initial_query: state.initialQuery,
    messages: state.messages,
    num_turns: state.turns,
    metadata: {
      created_at: createdAt,
      query_id: task.queryId,
      system_prompt_used: task.systemPrompt !== undefined,
      total_messages: state.messages.length,
      conversation_ended: state.ended,
      ...noiseMetadata(state, options.distractor),
      assistant_model: task.assistant,
      user_model: { provider: options.user.model.provider, model: options.user.model.model },
      target_turns: targetTurns,
      ...(state.closing === '' ? {} : { user_closing: state.closing }),
      ...(state.style === undefined ? {} : { style_transfer: state.style }),
      ...(task.supplementRound === undefined ? {} : { supplement_round: task.supplementRound }),
      guard: state.guard,
      usage: state.usage,
    },
  };
}

/**
 * PersonaGym's distractor fields: `distractor_applied`, `distractor_type`, `noisy_versions` (with
 * `initial_query` and `followups` only when non-empty, null when both are) and, for the semantic
 * distractor, `semantic_noise` for the initial query. As PersonaGym writes them, the legacy distractor
 * records a follow-up only when it made versions of it; the semantic one records every noised turn.
 */
interface NoiseMetadata {
  readonly distractor_applied: boolean;
  readonly distractor_type: 'semantic' | 'legacy' | null;
  readonly noisy_versions: unknown;
  readonly semantic_noise?: unknown;
}

function noiseMetadata(state: State, distractor: Distractor | undefined): NoiseMetadata {
  if (distractor === undefined) return { distractor_applied: false, distractor_type: null, noisy_versions: null };
  const initial = state.initialNoise;
  const followups = state.followupNoise
    .filter(({ noised }) => distractor.type === 'semantic' || noised.versions.length > 0)
    .map(({ turn, noised }) => ({
      clean_feedback: noised.clean,
      noisy_versions: noised.versions,
      used_version: noised.sent,
      turn,
      ...(noised.semantic === undefined ? {} : { semantic_noise: noised.semantic }),
    }));
  const versions = {
    ...(initial === undefined || initial.versions.length === 0 ? {} : { initial_query: { clean_query: initial.clean, noisy_versions: initial.versions } }),
    ...(followups.length === 0 ? {} : { followups }),
  };
  return {
    distractor_applied: true,
    distractor_type: distractor.type,
    noisy_versions: Object.keys(versions).length === 0 ? null : versions,
    ...(distractor.type === 'semantic' ? { semantic_noise: initial?.semantic === undefined ? null : { initial_query: initial.semantic } } : {}),
  };
}

function toFailure(state: State, options: ConverseOptions, error: unknown, time: string): Outcome {
  const { task } = state;
  const kind = error instanceof ModelError ? error.kind : error instanceof GuardError ? 'guard' : 'internal';
  return {
    ok: false,
    failure: {
      persona_id: task.personaId,
      query_id: task.queryId,
      interaction_id: interactionId(task.personaId, task.queryId),
      attempts: error instanceof ModelError ? state.attempts : 1,
      error: { kind, message: describeError(error) },
      assistant_model: task.assistant,
      user_model: { provider: options.user.model.provider, model: options.user.model.model },
      time,
      usage: state.usage,
      ...(task.supplementRound === undefined ? {} : { supplement_round: task.supplementRound }),
    },
    task,
  };
}
