// What a conversation leaves behind: its Interaction (PersonaGym's format, with our metadata), or its failure record.
import type { Distractor, NoisedText } from '../distractor/distractor.js';
import { GuardError, ModelError, describeError } from '../errors.js';
import { interactionId, type Interaction, type Outcome } from '../types.js';
import type { ConversationSettings, State } from './state.js';

/**
 * The Interaction: PersonaGym's fields, `end_reason` (what ended it) and `conversation_ended` (the user
 * ended it), the assistant's system prompt and how many of its answers were truncated or refused, the
 * guard counts, and the usage of every call.
 */
export function toInteraction(state: State, options: ConversationSettings, assistantPrompt: string, targetTurns: number, createdAt: string): Interaction {
  const { task } = state;
  const answers = state.messages.filter((m) => m.role === 'assistant');
  const personagym = options.user.stopPolicy === 'personagym';
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
      conversation_ended: state.end === 'user_stop',
      end_reason: state.end ?? 'max_turns',
      stop_policy: options.user.stopPolicy ?? 'user',
      ...noiseMetadata(state, options.distractor),
      assistant_model: task.assistant,
      user_model: { provider: options.user.model.provider, model: options.user.model.model },
      ...(personagym ? { target_turns: targetTurns, feedback_probability: options.user.feedbackProbability ?? 0.85 } : {}),
      assistant_system_prompt: assistantPrompt,
      ...(task.facts === undefined ? {} : { facts: task.facts }),
      assistant_issues: { truncated: answers.filter((m) => m.metadata.truncated === true).length, refused: answers.filter((m) => m.metadata.refused === true).length },
      ...(state.style === undefined ? {} : { style_transfer: state.style }),
      ...(task.supplementRound === undefined ? {} : { supplement_round: task.supplementRound }),
      guard: state.guard,
      usage: state.usage,
    },
  };
}

/**
 * PersonaGym's distractor fields: `distractor_applied` (true only when a user turn was sent noised),
 * `distractor_type`, `noisy_versions` (with `initial_query` and `followups` only when non-empty, null when
 * both are) and, for the semantic distractor, `semantic_noise` for the initial query. As PersonaGym writes
 * them, the legacy distractor records a follow-up only when it made versions of it; the semantic one
 * records every turn it was asked about. Ours: `noised_turns`, how many user turns were sent noised, and
 * `noise_dropped`, the details the noise left out of them (what the user still knows), when there are any.
 */
interface NoiseMetadata {
  readonly distractor_applied: boolean;
  readonly distractor_type: 'semantic' | 'legacy' | null;
  readonly noisy_versions: unknown;
  readonly noised_turns: number;
  readonly noise_dropped?: readonly string[];
  readonly semantic_noise?: unknown;
}

function noiseMetadata(state: State, distractor: Distractor | undefined): NoiseMetadata {
  if (distractor === undefined) return { distractor_applied: false, distractor_type: null, noisy_versions: null, noised_turns: 0 };
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
  const noised = [initial, ...state.followupNoise.map((entry) => entry.noised)].filter((turn): turn is NoisedText => turn !== undefined && turn.sent !== turn.clean);
  const dropped = [...new Set(noised.flatMap((turn) => turn.dropped))];
  return {
    distractor_applied: noised.length > 0,
    distractor_type: distractor.type,
    noisy_versions: Object.keys(versions).length === 0 ? null : versions,
    noised_turns: noised.length,
    ...(dropped.length === 0 ? {} : { noise_dropped: dropped }),
    ...(distractor.type === 'semantic' ? { semantic_noise: initial?.semantic === undefined ? null : { initial_query: initial.semantic } } : {}),
  };
}

export function toFailure(state: State, options: ConversationSettings, error: unknown, time: string): Outcome {
  const { task } = state;
  const kind = error instanceof ModelError ? error.kind : error instanceof GuardError ? 'guard' : 'internal';
  return {
    ok: false,
    failure: {
      persona_id: task.personaId,
      query_id: task.queryId,
      interaction_id: interactionId(task.personaId, task.queryId),
      attempts: error instanceof ModelError || error instanceof GuardError ? state.attempts : 1,
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
