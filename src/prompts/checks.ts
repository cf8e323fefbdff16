// Checks for a model's answer that must be a user's message: not a refusal, not a report about the message, no wrapper.
import { stripFence } from './json.js';

/**
 * A model declining: what it says it cannot do is help, rewrite, comply... A user's own "I can't get
 * docker to start" or "I'm sorry to bother you" is a message, not a refusal.
 */
const CANNOT = String.raw`(?:can(?:no|['’])t|won['’]t|am (?:not able|unable) to|['’]m (?:not able|unable) to)`;
const REFUSAL = new RegExp(
  String.raw`^(?:(?:i['’]?m sorry|sorry|i apologi[sz]e)[,.!]?\s+(?:but\s+)?(?:i\s*${CANNOT}|i do not|i don['’]t|that(?:['’]s| is) not something|this is not something)|i\s*${CANNOT}\s+(?:help|assist|comply|do that|provide|fulfil+|create|rewrite|write|complete|generate|produce)\b|as an ai\b)`,
  'i',
);
/** Openings a model puts before its answer ("Sure, ..."); a problem only when the user's text did not open so. */
const CHATTER = /^(?:sure|certainly|of course|absolutely)[,!.]/i;
/**
 * A wrapper or a report instead of the message: at the start ("Here's...", "I've rewritten..."), where a
 * user's own "I added an index" never trips it, or a note in parentheses about what was applied.
 */
const EXPLANATION =
  /^(?:(?:sure|certainly|of course|okay|ok)[,!.]?\s+)?here(?:['’]s| is) (?:the|a|an|your) (?:\w+ )?(?:rewrite|rewritten|noisy|adapted|revised|modified|rephrased|version|message|query|request)\b|^the (?:noisy|rewritten|adapted) (?:version|message|query)|^i(?:['’]ve| have)? (?:rewritten|rewrote)\b|^i(?:['’]ve| have)? (?:applied|made)\b[^\n]*\b(?:noise|noisy|strateg\w*|typos?|changes?|version|rewrite)\b|\([^()]*\b(?:applied|strateg\w*|noise|noisy)\b[^()]*\)/i;
const LABEL = /^(?:noisy(?: version| text)?|rewritten(?: message)?|output|message)\s*:\s*/i;
export const normalise = (text: string): string => text.toLowerCase().replace(/\s+/g, ' ').trim();

/** Strips a code fence, one label and one pair of surrounding quotes. */
export function cleanRewrite(text: string): string {
  let out = stripFence(text);
  out = out.replace(LABEL, '').trim();
  // One pair of quotes around the whole text, and only when the text inside has none of that kind:
  // `"let" vs "const"` is a message with quotes in it, not a quoted message.
  const pair = /^(["'“])([\s\S]*)(["'”])$/.exec(out);
  if (pair !== null) {
    const [, open, inner = '', close] = pair;
    const matching = open === close || (open === '“' && close === '”');
    if (matching && !/["“”]/.test(open === "'" ? inner.replace(/[^']/g, '') : inner)) out = inner.trim();
  }
  return out;
}

/**
 * Why `text` is not a usable user message (a refusal, or an explanation instead of the message), or
 * undefined. `input` is the text that was rewritten, when there was one: an opening "Sure," is the
 * model's own chatter unless the input opened that way too.
 */
export function rewriteProblem(text: string, input?: string): string | undefined {
  if (REFUSAL.test(text)) return 'a refusal';
  if (EXPLANATION.test(text)) return 'an explanation instead of the message';
  if (CHATTER.test(text) && !(input !== undefined && CHATTER.test(input.trim()))) return 'an explanation instead of the message';
  return undefined;
}

/** PersonaGym's domains and scenarios; anything else becomes `others`. */
export const DOMAINS = ['general', 'writing', 'coding', 'data', 'product', 'design', 'marketing', 'sales', 'customer_support', 'bizdev', 'ops', 'career', 'education', 'finance', 'legal', 'health', 'travel', 'shopping', 'food', 'communication', 'productivity', 'life_admin', 'research', 'news', 'entertainment', 'others'] as const;
export const SCENARIOS = ['in_a_rush', 'work_task', 'learning', 'decision_making', 'troubleshooting', 'brainstorming', 'planning', 'casual', 'others'] as const;

export const oneOf = (value: unknown, allowed: readonly string[], missing: string): string => {
  if (typeof value !== 'string' || value.trim() === '') return missing;
  const normalised = value.trim().toLowerCase();
  return allowed.includes(normalised) ? normalised : 'others';
};
