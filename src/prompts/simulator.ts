// The user simulator's prompt: rendered from its template with the history role-inverted, and its reply read.
import type { ChatMessage } from '../chat.js';
import type { Features, InteractionMessage } from '../types.js';
import { stripFence } from './json.js';
import { bundledTemplate, fill, formatPersona, type TemplateContract } from './template.js';

export const DEFAULT_USER_TEMPLATE = bundledTemplate('user_simulator');

export const DEFAULT_STOP_TOKEN = '###STOP###';

export interface TemplateValues {
  readonly persona: Features;
  readonly systemPrompt: string | undefined;
  readonly originalQuery: string;
  readonly history: readonly Pick<InteractionMessage, 'role' | 'content'>[];
  readonly currentTurn: number;
  readonly targetTurns: number;
  readonly minTurns: number;
  readonly maxTurns: number;
  readonly stopToken: string;
}

/** The user simulator's placeholders: a template must condition on the persona. */
export const SIMULATOR_TEMPLATE = {
  placeholders: ['persona', 'persona_features', 'system_prompt', 'original_query', 'conversation_history', 'assistant_response', 'current_turn', 'target_turns', 'min_turns', 'max_turns', 'stop_token'],
  required: [['persona', 'persona_features']],
} as const satisfies TemplateContract;

/** True for PersonaGym-style templates that inline the whole conversation and expect a JSON answer. */
export const inlinesHistory = (template: string): boolean => template.includes('{conversation_history}');

/**
 * Fills `{placeholder}`s; unknown ones are left as they are (a template may contain JSON examples). Each
 * value is computed only if the template uses it: this runs on every simulator turn, and joining the
 * whole history for a template that never shows it was a measurable share of a run's allocations.
 */
export function renderTemplate(template: string, values: TemplateValues): string {
  const last = values.history[values.history.length - 1];
  return fill<(typeof SIMULATOR_TEMPLATE.placeholders)[number]>(template, {
    persona: () => formatPersona(values.persona),
    persona_features: () => JSON.stringify(values.persona),
    system_prompt: () => values.systemPrompt ?? 'none',
    original_query: () => values.originalQuery,
    conversation_history: () => values.history.map((m) => `${m.role === 'user' ? 'User' : 'Assistant'}: ${m.content}`).join('\n'),
    assistant_response: () => (last?.role === 'assistant' ? last.content : ''),
    current_turn: () => String(values.currentTurn),
    target_turns: () => String(values.targetTurns),
    min_turns: () => String(values.minTurns),
    max_turns: () => String(values.maxTurns),
    stop_token: () => values.stopToken,
  });
}

export const CONVERSATION_START = '(The conversation starts. Write your first message to the assistant.)';

/**
 * Messages for the user simulator. With a template that inlines `{conversation_history}` (PersonaGym's
 * user_feedback.txt) the whole prompt is one user message. Otherwise roles are inverted as tau-bench does:
 * the template is the system prompt, the simulated user's own turns (its first message included) are
 * `assistant`, the assistant's turns are `user`. The list keeps the shape strict chat templates (Mistral,
 * Gemma on vLLM) insist on: one system message, then user/assistant alternating from a user turn (a cue
 * opens the conversation), ending on a user turn, which carries a short reminder against persona drift.
 */
export function userSimulatorMessages(template: string, values: TemplateValues, nudge?: string): ChatMessage[] {
  const prompt = renderTemplate(template, values);
  if (inlinesHistory(template)) return [{ role: 'user', content: nudge === undefined ? prompt : `${prompt}\n\n${nudge}` }];
  const inverted: ChatMessage[] = values.history.map((m) => ({ role: m.role === 'user' ? 'assistant' : 'user', content: m.content }));
  const reminder =
    `(Reminder: you are the user described above, not the assistant. Write your next message in your own style, ` +
    `or ${values.stopToken} alone if everything you came for is resolved.${nudge === undefined ? '' : ` ${nudge}`})`;
  const last = inverted.pop();
  const closing: ChatMessage = last?.role === 'user' ? { role: 'user', content: `${last.content}\n\n${reminder}` } : { role: 'user', content: reminder };
  return [{ role: 'system', content: prompt }, { role: 'user', content: CONVERSATION_START }, ...inverted, ...(last?.role === 'assistant' ? [last] : []), closing];
}

/** What the simulated user said: a follow-up, or that it is done (with any text it glued to the stop signal). */
export type UserReply = { readonly kind: 'followup'; readonly text: string } | { readonly kind: 'stop'; readonly closing: string };

/**
 * Reads a simulator reply in either convention: PersonaGym's JSON `{"satisfied": bool, "feedback": str|null}`
 * (in a code fence or not), or free text where the stop token anywhere means done and the text around it
 * is the closing remark.
 */
export function parseUserReply(raw: string, stopToken: string): UserReply {
  const text = raw.replace(/<think>[\s\S]*?<\/think>/gi, '').trim();
  const unfenced = stripFence(text);
  if (unfenced.startsWith('{')) {
    try {
      const json = JSON.parse(unfenced) as { satisfied?: unknown; feedback?: unknown };
      if (typeof json === 'object' && json !== null && 'satisfied' in json) {
        const feedback = typeof json.feedback === 'string' ? json.feedback.trim() : '';
        if (json.satisfied === true) return { kind: 'stop', closing: feedback };
        return feedback === '' ? { kind: 'stop', closing: '' } : { kind: 'followup', text: feedback };
      }
    } catch {
      // Not JSON after all: read it as free text.
    }
  }
  if (stopToken !== '' && text.includes(stopToken)) return { kind: 'stop', closing: text.split(stopToken).join(' ').replace(/\s+/g, ' ').trim() };
  return { kind: 'followup', text };
}
