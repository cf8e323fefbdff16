// The assistant's side: its system prompt and the conversation as it sees it.
import type { ChatMessage } from '../chat.js';
import type { InteractionMessage } from '../types.js';

export const ASSISTANT_SYSTEM_PROMPT =
  'You are a helpful AI assistant. Answer what the user explicitly asks, accurately and appropriately; ask for missing details when you need them.';

/** Messages for the assistant: its system prompt, then the conversation as is. */
export function assistantMessages(history: readonly Pick<InteractionMessage, 'role' | 'content'>[]): ChatMessage[] {
  return [{ role: 'system', content: ASSISTANT_SYSTEM_PROMPT }, ...history.map((m) => ({ role: m.role, content: m.content }))];
}
