// Prompts for the assistant and the user simulator: template loading and rendering, reply parsing, guards.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { PACKAGE_CONFIG_DIR, locateConfigPath } from '../paths.js';
import type { Features, InteractionMessage } from '../types.js';
import type { ChatMessage } from './types.js';

export { PACKAGE_CONFIG_DIR };
export const DEFAULT_USER_TEMPLATE = join(PACKAGE_CONFIG_DIR, 'prompts', 'user_simulator.txt');

export const DEFAULT_STOP_TOKEN = '###STOP###';

export const ASSISTANT_SYSTEM_PROMPT =
  'You are a helpful AI assistant. Answer what the user explicitly asks, accurately and appropriately; ask for missing details when you need them.';

/**
 * Loads a prompt template. `value` is a path (next to the config file, else from the working directory) or
 * the template text itself when it spans several lines. Undefined means `fallback` (the bundled user simulator).
 */
export async function loadTemplate(value: string | undefined, baseDir: string, yamlPath: string, fallback = DEFAULT_USER_TEMPLATE): Promise<string> {
  if (value !== undefined && value.includes('\n')) return value;
  const path = value === undefined ? fallback : locateConfigPath(value, baseDir);
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${yamlPath}: cannot read template file "${path}" (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** PersonaGym's persona block: `- Communication Style: casual`, one feature a line. */
export function formatPersona(features: Features): string {
  const lines = Object.entries(features).map(([key, value]) => {
    const label = key.replace(/_/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
    return `- ${label}: ${typeof value === 'string' ? value : JSON.stringify(value)}`;
  });
  return lines.length === 0 ? '- (no features given)' : lines.join('\n');
}

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

/** True for PersonaGym-style templates that inline the whole conversation and expect a JSON answer. */
export const inlinesHistory = (template: string): boolean => template.includes('{conversation_history}');

/**
 * Fills `{placeholder}`s; unknown ones are left as they are (a template may contain JSON examples). Each
 * value is computed only if the template uses it: this runs on every simulator turn, and joining the
 * whole history for a template that never shows it was a measurable share of a run's allocations.
 */
export function renderTemplate(template: string, values: TemplateValues): string {
  const last = values.history[values.history.length - 1];
  const table: Record<string, () => string> = {
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
  };
  return template.replace(/\{([a-z_]+)\}/g, (match, name: string) => table[name]?.() ?? match);
}

/** Messages for the assistant: its system prompt, then the conversation as is. */
export function assistantMessages(history: readonly Pick<InteractionMessage, 'role' | 'content'>[]): ChatMessage[] {
  return [{ role: 'system', content: ASSISTANT_SYSTEM_PROMPT }, ...history.map((m) => ({ role: m.role, content: m.content }))];
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
  const unfenced = text.replace(/^```[a-z]*\s*/i, '').replace(/\s*```$/, '').trim();
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

const wordSet = (text: string): Set<string> => new Set(text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []);

/** Word sets of history messages, computed once per message rather than once per guard check. */
const historyWords = new WeakMap<object, Set<string>>();
const wordsOf = (message: Pick<InteractionMessage, 'content'>): Set<string> => {
  let set = historyWords.get(message);
  if (set === undefined) {
    set = wordSet(message.content);
    historyWords.set(message, set);
  }
  return set;
};

function jaccard(left: Set<string>, right: Set<string>): number {
  if (left.size === 0 && right.size === 0) return 1;
  let shared = 0;
  for (const word of left) if (right.has(word)) shared += 1;
  return shared / (left.size + right.size - shared);
}

/** jaccard(left, right) ≥ threshold, skipping the count when the sizes alone rule it out (|A∩B|/|A∪B| ≤ min/max). */
function similarAtLeast(left: Set<string>, right: Set<string>, threshold: number): boolean {
  const large = Math.max(left.size, right.size);
  if (large > 0 && Math.min(left.size, right.size) / large < threshold) return false;
  return jaccard(left, right) >= threshold;
}

/** Jaccard similarity of the word sets of two texts, in [0, 1]. */
export const similarity = (a: string, b: string): number => jaccard(wordSet(a), wordSet(b));

export type GuardReason = 'empty' | 'leak' | 'role_break' | 'echo' | 'repeat' | 'early_stop';

const ROLE_BREAK = /\b(as an ai\b|as a language model|i am an ai\b|i'm an ai\b|as your (ai )?assistant)/i;

/**
 * Why a simulator reply cannot be used as it is, or undefined when it can. `raw` is the model's text,
 * `history` the conversation so far (ending with the assistant's answer).
 */
export function guardReply(raw: string, reply: UserReply, history: readonly Pick<InteractionMessage, 'role' | 'content'>[], canStop: boolean): GuardReason | undefined {
  if (/<think>|<\/think>/i.test(raw)) return 'leak';
  if (reply.kind === 'stop') return canStop ? undefined : 'early_stop';
  const text = reply.text;
  if (text.trim() === '') return 'empty';
  if (ROLE_BREAK.test(text)) return 'role_break';
  const lastAssistant = history.findLast((m) => m.role === 'assistant');
  const normalized = text.toLowerCase().replace(/\s+/g, ' ').trim();
  const words = wordSet(text);
  if (lastAssistant !== undefined) {
    const contained = normalized.length >= 20 && lastAssistant.content.toLowerCase().replace(/\s+/g, ' ').includes(normalized);
    if (contained || similarAtLeast(words, wordsOf(lastAssistant), 0.8)) return 'echo';
  }
  if (history.some((m) => m.role === 'user' && similarAtLeast(words, wordsOf(m), 0.9))) return 'repeat';
  return undefined;
}

/** A reminder for the retry after a rejected reply. It goes to the model only, never into the transcript. */
export function nudgeFor(reason: GuardReason, stopToken: string): string {
  switch (reason) {
    case 'empty':
      return 'Your last reply was empty. Write your next message as the user.';
    case 'early_stop':
      return `Do not end the conversation yet (no ${stopToken}): ask your next question or react to the answer.`;
    case 'echo':
      return "Do not copy the assistant's words: write what you, the user, would say next.";
    case 'repeat':
      return 'Do not repeat an earlier message of yours: say something new.';
    case 'leak':
    case 'role_break':
      return 'Stay in character as the user: no reasoning, no mention of being an AI.';
  }
}
