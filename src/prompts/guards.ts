// The user simulator's guards: why a reply cannot be used as it is, and the nudge for the retry.
import type { InteractionMessage } from '../types.js';
import type { UserReply } from './simulator.js';

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
