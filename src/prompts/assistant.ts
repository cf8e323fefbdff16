// The assistant's side: its system prompt, the conversation as it sees it, and what its answer says of itself.
import { readFileSync } from 'node:fs';
import type { ChatMessage } from '../chat.js';
import type { InteractionMessage } from '../types.js';
import { bundledTemplate } from './template.js';

export const DEFAULT_ASSISTANT_TEMPLATE = bundledTemplate('assistant');

let bundled: string | undefined;

/** The bundled assistant system prompt (config/prompts/assistant.txt), read once. */
export function defaultAssistantPrompt(): string {
  bundled ??= readFileSync(DEFAULT_ASSISTANT_TEMPLATE, 'utf8').trim();
  return bundled;
}

/** Messages for the assistant: its system prompt, then the conversation as is. */
export function assistantMessages(systemPrompt: string, history: readonly Pick<InteractionMessage, 'role' | 'content'>[]): ChatMessage[] {
  return [{ role: 'system', content: systemPrompt }, ...history.map((m) => ({ role: m.role, content: m.content }))];
}

/** An answer that declines the request instead of answering it ("I'm sorry, but I can't help with that"). */
const REFUSAL =
  /^(?:(?:i['’]m|i am) (?:really |very )?sorry,? (?:but )?)?(?:i (?:can(?:no|['’])t|won['’]t|am not able to|am unable to|must decline to) (?:help|assist|provide|comply|do that|answer|support|fulfil)|(?:i['’]m|i am) (?:not able|unable) to (?:help|assist|provide|comply)|as an ai(?: language model)?,? i (?:can(?:no|['’])t|am not able))/i;

/** What an assistant answer says of itself: cut at the token limit, or a refusal (also a provider's content filter). */
export function assistantFlags(content: string, finishReason: string | undefined): { readonly truncated: boolean; readonly refused: boolean } {
  return { truncated: finishReason === 'length', refused: finishReason === 'content_filter' || REFUSAL.test(content.trim()) };
}
