// One conversation, turn by turn: the opening (style transfer, noise), the assistant's answers, the simulated user's replies.
import { EMPTY, Observable, catchError, concatMap, defer, expand, last, map, of, throwError } from 'rxjs';
import type { ChatModel, ChatRequest, ChatResponse } from '../chat.js';
import type { NoisedText } from '../distractor/distractor.js';
import { noiseTurn } from '../distractor/turn.js';
import { GuardError, runEndingError } from '../errors.js';
import type { ModelPool } from '../models/pool.js';
import { ask, type PromptCall } from '../prompts/ask.js';
import { assistantFlags, assistantMessages, defaultAssistantPrompt } from '../prompts/assistant.js';
import { guardReply, nudgeFor, type GuardReason } from '../prompts/guards.js';
import { writingRules } from '../prompts/persona.js';
import { DEFAULT_STOP_TOKEN, parseUserReply, userSimulatorMessages, type TemplateValues, type UserReply } from '../prompts/simulator.js';
import type { StyleTransferResult } from '../queries/styleTransfer.js';
import { rngFor } from '../rng.js';
import { addUsage, interactionId, type LockedTask, type Outcome } from '../types.js';
import { toFailure, toInteraction } from './record.js';
import type { CallMaker, ConversationSettings, EndReason, State } from './state.js';

/**
 * One task's conversation as a cold observable of its one Outcome: the Interaction, or a failure record
 * when a call still fails after its retries or the simulator guards give up; an error that ends the run
 * errors it instead. Its model calls are made by what `makeCall` returns.
 */
export function conversation(task: LockedTask, settings: ConversationSettings, makeCall: CallMaker): Observable<Outcome> {
  return defer(() => new Conversation(task, settings, makeCall).run());
}

class Conversation {
  readonly #settings: ConversationSettings;
  readonly #state: State;
  readonly #assistant: ModelPool['entries'][number];
  readonly #assistantPrompt: string;
  readonly #targetTurns: number;
  readonly #stopToken: string;
  readonly #now: () => Date;
  readonly #retrying: PromptCall;

  constructor(task: LockedTask, settings: ConversationSettings, makeCall: CallMaker) {
    this.#settings = settings;
    this.#now = settings.now ?? (() => new Date());
    this.#stopToken = settings.stopToken ?? DEFAULT_STOP_TOKEN;
    const assistant = settings.pool.entries[task.poolIndex];
    if (assistant === undefined) throw new TypeError(`Task ${task.key} is locked to pool entry ${task.poolIndex}, but the pool has ${settings.pool.entries.length}`);
    this.#assistant = assistant;
    this.#assistantPrompt = settings.assistantPrompts?.[task.poolIndex] ?? defaultAssistantPrompt();
    // The engine owns the turn limits: a target outside [minTurns, maxTurns] is clamped.
    this.#targetTurns = Math.min(settings.maxTurns, Math.max(settings.minTurns, task.targetTurns));
    const state: State = { task, messages: [], usage: {}, guard: {}, rejections: [], turns: 0, attempts: 0, end: undefined, initialNoise: undefined, followupNoise: [], style: undefined, features: task.personaFeatures, initialQuery: task.initialQuery };
    this.#state = state;
    this.#retrying = makeCall({
      onRetry: (module, error, note) => {
        state.attempts += 1;
        settings.onRetry?.(module, error, note);
      },
      onUsage: (module, model, usage, call) => {
        addUsage(state.usage, module, usage);
        settings.onUsage?.(module, model, usage, call);
      },
    });
  }

  run(): Observable<Outcome> {
    const state = this.#state;
    return this.#opening().pipe(
      concatMap(() => this.#assistantTurn()),
      expand((s) => (s.end !== undefined ? EMPTY : this.#next())),
      last(),
      map((s): Outcome => ({ ok: true, interaction: toInteraction(s, this.#settings, this.#assistantPrompt, this.#targetTurns, this.#timestamp()), rejections: s.rejections, task: s.task })),
      catchError((error: unknown) => {
        const fatal = runEndingError(error, state.attempts);
        return fatal === undefined ? of({ ...toFailure(state, this.#settings, error, this.#timestamp()), rejections: state.rejections }) : throwError(() => fatal);
      }),
    );
  }

  readonly #timestamp = (): string => this.#now().toISOString();

  /** Every model call of the conversation: retried on its own, its attempts and tokens counted here. */
  readonly #call = (model: ChatModel, request: ChatRequest): Observable<ChatResponse> =>
    defer(() => {
      this.#state.attempts = 1;
      return this.#retrying(model, request);
    });

  /** Noise for one user turn, with its own seeded draws; undefined when it is not noised. */
  #noised(text: string, purpose: string, applies: boolean | undefined): Observable<NoisedText | undefined> {
    const { distractor, seed } = this.#settings;
    return noiseTurn(distractor, text, { seed, key: this.#state.task.key, purpose, applies: applies === true, persona: this.#state.features, call: this.#call });
  }

  /** Style transfer, when the input did not adapt the query itself and the draw says so. */
  #restyled(): Observable<StyleTransferResult | undefined> {
    const { styleTransfer, seed } = this.#settings;
    const { task } = this.#state;
    if (styleTransfer === undefined || task.adapted === true || rngFor(seed, task.key, 'style_transfer').next() >= styleTransfer.probability) return of(undefined);
    return styleTransfer.adapt(task.originalQuery, task.personaFeatures, this.#targetTurns, rngFor(seed, task.key, 'style_transfer/draws'), this.#call);
  }

  /** The user's first message: the query (restyled, perhaps), noised or not. */
  #opening(): Observable<State> {
    const state = this.#state;
    return this.#restyled().pipe(
      concatMap((style) => {
        state.style = style;
        if (style?.applied === true) {
          state.initialQuery = style.adapted_query;
          state.features = { ...state.task.personaFeatures, domain: style.inferred_domain, scenario: style.inferred_scenario };
        }
        return this.#noised(state.initialQuery, 'noise/initial', this.#settings.distractor?.applyTo.initial_query);
      }),
      map((noise) => {
        state.initialNoise = noise;
        const clean = state.initialQuery;
        const sent = noise?.sent ?? clean;
        state.messages.push({ role: 'user', content: sent, timestamp: this.#timestamp(), metadata: { turn: 0, is_initial: true, clean_version: clean, was_noised: sent !== clean } });
        return state;
      }),
    );
  }

  #assistantTurn(): Observable<State> {
    const state = this.#state;
    const assistant = this.#assistant;
    return this.#call(assistant.model, { module: 'assistant', messages: assistantMessages(this.#assistantPrompt, state.messages), temperature: assistant.temperature, maxCompletionTokens: assistant.maxCompletionTokens }).pipe(
      map((response) => {
        const { truncated, refused } = assistantFlags(response.content, response.finishReason);
        const flags = { ...(response.finishReason === undefined ? {} : { finish_reason: response.finishReason }), ...(truncated ? { truncated } : {}), ...(refused ? { refused } : {}) };
        state.messages.push({ role: 'assistant', content: response.content, timestamp: this.#timestamp(), metadata: { turn: state.turns, model: state.task.assistant.model, provider: state.task.assistant.provider, ...flags } });
        state.turns += 1;
        return state;
      }),
    );
  }

  #values(): TemplateValues {
    const state = this.#state;
    return { persona: state.features, systemPrompt: state.task.systemPrompt, originalQuery: state.task.originalQuery, facts: [...(state.task.facts ?? []), ...noiseFacts(state)], history: state.messages, currentTurn: state.turns, targetTurns: this.#targetTurns, minTurns: this.#settings.minTurns, maxTurns: this.#settings.maxTurns, stopToken: this.#stopToken };
  }

  /**
   * The simulator's reply, checked by the guards; a rejected reply is kept (guard-rejections.ndjson) and asked
   * again with a nudge (at a slightly higher temperature) that never enters the transcript. Nothing is
   * ever edited into the transcript: after the last rejection the task fails.
   */
  #userTurn(): Observable<State> {
    const state = this.#state;
    const { user, minTurns } = this.#settings;
    const canStop = state.turns >= minTurns;
    const stopToken = this.#stopToken;
    const rules = writingRules(state.features);
    const turn = state.turns;
    return ask<UserReply, GuardReason>(
      {
        module: 'user_simulator',
        model: user.model,
        temperature: user.temperature,
        baseTemperature: 0.8,
        maxCompletionTokens: user.maxCompletionTokens,
        hints: { persona: state.features, turn, minTurns, stopToken, originalQuery: state.task.originalQuery },
        retries: this.#settings.maxGuardRetries ?? 3,
        firstOperation: 'follow_up',
        retryOperation: 'guard_retry',
        messages: (rejected) => userSimulatorMessages(user.template, { ...this.#values(), rules }, rejected === undefined ? undefined : nudgeFor(rejected.reason, stopToken)),
        check: (content, _attempt, response) => {
          const reply = parseUserReply(content, stopToken);
          const reason = guardReply({ raw: content, reply, history: state.messages, canStop, persona: state.features, finishReason: response.finishReason, rules });
          return reason === undefined ? { ok: true, value: reply } : { ok: false, reason };
        },
        onRejected: ({ reason, answer, attempt }) => {
          state.guard[reason] = (state.guard[reason] ?? 0) + 1;
          const { task } = state;
          state.rejections.push({ interaction_id: interactionId(task.personaId, task.queryId), persona_id: task.personaId, query_id: task.queryId, turn, attempt, reason, text: answer, time: this.#timestamp() });
        },
        exhausted: ({ reason, attempt }) => {
          state.attempts = attempt + 1;
          return throwError(() => new GuardError(`user simulator reply rejected ${attempt + 1} times (last: ${reason})`));
        },
      },
      this.#call,
    ).pipe(
      concatMap((reply) => {
        if (reply.kind === 'followup') return this.#followUp(reply.text);
        // Closing words the user wrote before the stop signal are its last message; the signal is not.
        const closing = reply.kind === 'stop' ? reply.closing : '';
        if (closing !== '') state.messages.push({ role: 'user', content: closing, timestamp: this.#timestamp(), metadata: { turn: state.turns, is_closing: true, clean_version: closing, was_noised: false } });
        return of(this.#ended('user_stop'));
      }),
    );
  }

  #followUp(text: string): Observable<State> {
    const state = this.#state;
    return this.#noised(text, `noise/turn/${state.turns}`, this.#settings.distractor?.applyTo.follow_up_feedback).pipe(
      map((noise) => {
        if (noise !== undefined) state.followupNoise.push({ turn: state.turns, noised: noise });
        const sent = noise?.sent ?? text;
        state.messages.push({ role: 'user', content: sent, timestamp: this.#timestamp(), metadata: { turn: state.turns, is_followup: true, clean_version: text, was_noised: sent !== text } });
        return state;
      }),
    );
  }

  #ended(reason: EndReason): State {
    this.#state.end = reason;
    return this.#state;
  }

  /**
   * After each assistant answer: max_turns ends the conversation whatever the user would say; otherwise
   * the simulated user decides (it may stop only from min_turns on: an earlier stop is rejected and asked
   * again). With `stop_policy: personagym`, PersonaGym's dice come first: the task's hidden target turn
   * count ends it, and from min_turns the user answers at all only with feedback_probability. Each end
   * is recorded as what it was (`metadata.end_reason`).
   */
  #next(): Observable<State> {
    const state = this.#state;
    const { minTurns, maxTurns, seed, user } = this.#settings;
    if (state.turns >= maxTurns) return of(this.#ended('max_turns'));
    if (user.stopPolicy === 'personagym') {
      if (state.turns >= this.#targetTurns) return of(this.#ended('target_turns'));
      if (state.turns >= minTurns && rngFor(seed, state.task.key, `feedback/${state.turns}`).next() >= (user.feedbackProbability ?? 0.85)) return of(this.#ended('feedback_draw'));
    }
    return this.#userTurn().pipe(concatMap((s) => (s.end !== undefined ? of(s) : this.#assistantTurn())));
  }
}

/**
 * What the noise changed that the simulated user must know: each detail a noised turn left out (it may
 * give it when asked, never contradict it), and what its noised first message now asks when the heavier
 * layers narrowed or widened it (its later turns follow from that, not from the clean request).
 */
export function noiseFacts(state: Pick<State, 'initialNoise' | 'followupNoise'>): string[] {
  const noised = [state.initialNoise, ...state.followupNoise.map((entry) => entry.noised)].filter((turn): turn is NoisedText => turn !== undefined && turn.sent !== turn.clean);
  const dropped = [...new Set(noised.flatMap((turn) => turn.dropped))].map((detail) => `${detail} (you have not said this yet: your message left it out)`);
  const changed = noised.filter((turn) => turn.means !== turn.clean).at(-1);
  return [...dropped, ...(changed === undefined ? [] : [`What your message actually asked, as you sent it: "${changed.means}". Go on from that.`])];
}
