// The user simulator's prompt: rendered from its template with the history role-inverted, and its reply read.
import type { ChatMessage } from '../chat.js';
import type { Features, InteractionMessage } from '../types.js';
import { stripFence } from './json.js';
import { renderWritingRules, writingRules, type WritingRules } from './persona.js';
import { bundledTemplate, fill, formatPersona, type TemplateContract } from './template.js';

export const DEFAULT_USER_TEMPLATE = bundledTemplate('user_simulator');

export const DEFAULT_STOP_TOKEN = '###STOP###';

/** The placeholders a user-simulator template may use. */
export const SIMULATOR_PLACEHOLDERS = [
  'persona',
  'persona_rules',
  'persona_features',
  'facts',
  'system_prompt',
  'original_query',
  'conversation_history',
  'assistant_response',
  'current_turn',
  'target_turns',
  'min_turns',
  'max_turns',
  'stop_token',
] as const;

export interface TemplateValues {
  readonly persona: Features;
  readonly systemPrompt: string | undefined;
  readonly originalQuery: string;
  /** What the user knows and may reveal when it matters or when asked (its situation, details the noise left out). */
  readonly facts: readonly string[];
  readonly history: readonly Pick<InteractionMessage, 'role' | 'content'>[];
  /** PersonaGym's templates may show these; the bundled one shows no turn count. */
  readonly currentTurn: number;
  readonly targetTurns: number;
  readonly minTurns: number;
  readonly maxTurns: number;
  readonly stopToken: string;
  /** The persona's writing rules (computed from `persona` when absent). */
  readonly rules?: WritingRules;
}

/** The user simulator's placeholders: a template must condition on the persona. */
export const SIMULATOR_TEMPLATE = {
  placeholders: ['persona', 'persona_rules', 'persona_features', 'facts', 'system_prompt', 'original_query', 'conversation_history', 'assistant_response', 'current_turn', 'target_turns', 'min_turns', 'max_turns', 'stop_token'],
  required: [['persona', 'persona_features', 'persona_rules']],
} as const satisfies TemplateContract;

/** True for PersonaGym-style templates that inline the whole conversation and expect a JSON answer. */
export const inlinesHistory = (template: string): boolean => template.includes('{conversation_history}');

/** `{facts}`: one line each, or what to do when asked for something the user does not know. */
const renderFacts = (facts: readonly string[]): string =>
  facts.length === 0 ? '- Nothing beyond your request. If the assistant asks for a detail you do not have, say you are not sure; never make one up.' : facts.map((fact) => `- ${fact}`).join('\n');

/**
 * Fills `{placeholder}`s; unknown ones are left as they are (a template may contain JSON examples). Each
 * value is computed only if the template uses it: this runs on every simulator turn, and joining the
 * whole history for a template that never shows it was a measurable share of a run's allocations.
 */
export function renderTemplate(template: string, values: TemplateValues): string {
  const last = values.history[values.history.length - 1];
  return fill<(typeof SIMULATOR_TEMPLATE.placeholders)[number]>(template, {
    persona: () => formatPersona(values.persona),
    persona_rules: () => renderWritingRules(values.rules ?? writingRules(values.persona)),
    persona_features: () => JSON.stringify(values.persona),
    facts: () => renderFacts(values.facts),
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
 * opens the conversation), ending on a user turn, which carries a short reminder against persona drift
 * that restates two or three of the persona's traits.
 */
export function userSimulatorMessages(template: string, values: TemplateValues, nudge?: string): ChatMessage[] {
  const rules = values.rules ?? writingRules(values.persona);
  const prompt = renderTemplate(template, { ...values, rules });
  if (inlinesHistory(template)) return [{ role: 'user', content: nudge === undefined ? prompt : `${prompt}\n\n${nudge}` }];
  const inverted: ChatMessage[] = values.history.map((m) => ({ role: m.role === 'user' ? 'assistant' : 'user', content: m.content }));
  const traits = rules.traits.length === 0 ? '' : ` (${rules.traits.join(', ')})`;
  const reminder =
    `(Reminder: you are the user described above${traits}, not the assistant. Write your next message as this user would, ` +
    `or ${values.stopToken} alone on the last line if everything you came for is resolved.${nudge === undefined ? '' : ` ${nudge}`})`;
  const last = inverted.pop();
  const closing: ChatMessage = last?.role === 'user' ? { role: 'user', content: `${last.content}\n\n${reminder}` } : { role: 'user', content: reminder };
  return [{ role: 'system', content: prompt }, { role: 'user', content: CONVERSATION_START }, ...inverted, ...(last?.role === 'assistant' ? [last] : []), closing];
}

/**
 * What the simulated user said: a follow-up; that it is done (with the closing words it wrote before the
 * stop signal, kept as its last message); or a stop signal where none can be (words after it, or a
 * closing that still asks something), which is rejected and asked again, never edited.
 */
export type UserReply = { readonly kind: 'followup'; readonly text: string } | { readonly kind: 'stop'; readonly closing: string } | { readonly kind: 'misplaced_stop'; readonly text: string };

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The stop signal as models write it: the configured token (any case, spaces inside the `#`s allowed:
 * `### STOP ###`, `###stop###`), `[STOP]`, or `STOP` alone on its line. `STOP` inside a sentence is a
 * word, not a signal.
 */
const patterns = new Map<string, RegExp>();
function stopPattern(stopToken: string): RegExp {
  const known = patterns.get(stopToken);
  if (known !== undefined) return new RegExp(known);
  const token = stopToken
    .split(/\s+/)
    .join('')
    .split('')
    .map((char) => `${escape(char)}\\s*`)
    .join('')
    .replace(/\\s\*$/, '');
  const pattern = new RegExp(`${token}|#{2,}\\s*stop\\s*#{2,}|\\[\\s*stop\\s*\\]|^[ \\t]*stop[ \\t]*[.!]?[ \\t]*$`, 'gim');
  patterns.set(stopToken, pattern);
  return new RegExp(pattern);
}

/**
 * Reads a simulator reply in either convention: PersonaGym's JSON `{"satisfied": bool, "feedback": str|null}`
 * (in a code fence or not), or free text, where a stop signal counts only as the last thing written:
 * the words before it are the closing, kept as the user's last message; anything after it, or a closing
 * that asks a question, makes it a misplaced stop. `<think>` blocks are not part of the reply.
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
  const signals = [...text.matchAll(stopPattern(stopToken))];
  const first = signals[0];
  if (first === undefined) return { kind: 'followup', text };
  const last = signals.at(-1) as RegExpExecArray;
  const before = text.slice(0, first.index).trim();
  const after = text.slice(last.index + last[0].length).trim();
  // Words between two signals, or after the last one, are a message the user did not end with.
  const between = text.slice(first.index + first[0].length, last.index).replace(stopPattern(stopToken), '').trim();
  if (!/^[\s.!"'”)\]]*$/.test(after) || between !== '' || before.includes('?')) return { kind: 'misplaced_stop', text };
  return { kind: 'stop', closing: before };
}
