// The judge's first layer: deterministic checks over a finished conversation, each finding a named tag.
import { guardReply, type GuardReason } from '../prompts/guards.js';
import { writingRules } from '../prompts/persona.js';
import type { Features, InteractionMessage } from '../types.js';

/** What the deterministic layer can find, each a tag in `metadata.quality.checks`. */
export const CHECK_TAGS = ['user_assistant_voice', 'user_out_of_character', 'user_too_long', 'user_repeats', 'premature_stop', 'truncated_answer', 'assistant_refusal', 'too_short', 'near_duplicate'] as const;
export type CheckTag = (typeof CHECK_TAGS)[number];

/** One finding: its tag, the turn it is about, and why. */
export interface Finding {
  readonly tag: CheckTag;
  readonly turn: number;
  readonly detail: string;
}

/** A conversation as the checks read it (an Interaction, or an interaction line from a file). */
export interface Checkable {
  readonly persona_features?: Features | undefined;
  readonly messages: readonly Pick<InteractionMessage, 'role' | 'content' | 'metadata'>[];
  readonly num_turns?: number | undefined;
  readonly metadata?: Readonly<Record<string, unknown>> | null | undefined;
}

/** The guard reasons a finished user turn can still show, as the check tag that names them. */
const FROM_GUARD: Partial<Record<GuardReason, CheckTag>> = {
  assistant_voice: 'user_assistant_voice',
  sycophancy: 'user_assistant_voice',
  reasoning_leak: 'user_out_of_character',
  role_break: 'user_out_of_character',
  meta: 'user_out_of_character',
  role_label: 'user_out_of_character',
  quoted: 'user_out_of_character',
  persona_recital: 'user_out_of_character',
  gibberish: 'user_out_of_character',
  too_long: 'user_too_long',
  echo: 'user_repeats',
  repeat: 'user_repeats',
};

/** An assistant's closing offer ("anything else?") is no open question; a request for a detail is. */
const OFFER = /\b(?:anything else|any other questions?|(?:can|may) i help|help (?:you )?with anything|does that help|does this help|make sense\?)\b/i;

const lastSentence = (text: string): string => text.trim().split(/(?<=[.!?])\s+/).at(-1) ?? '';

/**
 * Checks a finished conversation without a model: every user follow-up against the simulator's guards
 * (assistant voice, out of character, far too long for the persona, a repeat), a user who stopped right
 * after the assistant asked it for something, assistant answers cut at the token limit or refusing, and
 * fewer exchanges than `minTurns`. The opening message is the dataset's, not the simulator's, and is not
 * judged; noised turns are judged as the user meant them (`clean_version`).
 */
export function deterministicChecks(conversation: Checkable, options: { readonly minTurns?: number | undefined } = {}): Finding[] {
  const findings: Finding[] = [];
  const persona = conversation.persona_features ?? {};
  const rules = writingRules(persona);
  // Every user turn as the user meant it, the earlier ones too: a repeat of a noised turn is still a repeat.
  const messages = conversation.messages.map((m) => (m.role === 'user' && typeof m.metadata.clean_version === 'string' ? { ...m, content: m.metadata.clean_version } : m));
  // An interaction line from a file may start with a system message: the opening is the first user message.
  const opening = messages.findIndex((m) => m.role === 'user');
  const turnOf = (message: (typeof messages)[number], index: number): number => (typeof message.metadata.turn === 'number' ? message.metadata.turn : index);
  messages.forEach((message, index) => {
    const turn = turnOf(message, index);
    if (message.role === 'assistant') {
      if (message.metadata.truncated === true || message.metadata.finish_reason === 'length') findings.push({ tag: 'truncated_answer', turn, detail: 'cut at the token limit' });
      if (message.metadata.refused === true) findings.push({ tag: 'assistant_refusal', turn, detail: 'the assistant declined' });
      return;
    }
    if (message.role !== 'user' || index === opening) return;
    const text = message.content;
    const reply = message.metadata.is_closing === true ? ({ kind: 'stop', closing: text } as const) : ({ kind: 'followup', text } as const);
    const reason = guardReply({ raw: text, reply, history: messages.slice(0, index), canStop: true, persona, rules });
    const tag = reason === undefined ? undefined : FROM_GUARD[reason];
    if (tag !== undefined) findings.push({ tag, turn, detail: `user turn ${turn}: ${reason as string}` });
  });
  const metadata = conversation.metadata ?? {};
  const last = messages.findLastIndex((m) => m.role === 'assistant');
  const lastAssistant = messages[last];
  if (metadata.end_reason === 'user_stop' && lastAssistant !== undefined) {
    const asked = lastSentence(lastAssistant.content);
    if (asked.endsWith('?') && !OFFER.test(asked)) findings.push({ tag: 'premature_stop', turn: turnOf(lastAssistant, last), detail: `the user stopped when asked: ${asked.slice(0, 120)}` });
  }
  const turns = conversation.num_turns ?? messages.filter((m) => m.role === 'assistant').length;
  if (options.minTurns !== undefined && turns < options.minTurns) findings.push({ tag: 'too_short', turn: turns, detail: `${turns} exchange(s), fewer than ${options.minTurns}` });
  return findings;
}
