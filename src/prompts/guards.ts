// The user simulator's guards: why a reply cannot go into the dataset as it is, and the nudge for asking again.
import type { Features, InteractionMessage } from '../types.js';
import { UNBOUNDED_WORDS, wordCount, writingRules, type WritingRules } from './persona.js';
import type { UserReply } from './simulator.js';

/** Why a simulator reply was rejected: one name per failure mode (see ../shared/PROMPTS.md). */
export type GuardReason =
  | 'empty'
  | 'truncated'
  | 'reasoning_leak'
  | 'role_break'
  | 'meta'
  | 'role_label'
  | 'quoted'
  | 'early_stop'
  | 'misplaced_stop'
  | 'gibberish'
  | 'persona_recital'
  | 'assistant_voice'
  | 'sycophancy'
  | 'too_long'
  | 'echo'
  | 'repeat';

export const GUARD_REASONS: readonly GuardReason[] = ['empty', 'truncated', 'reasoning_leak', 'role_break', 'meta', 'role_label', 'quoted', 'early_stop', 'misplaced_stop', 'gibberish', 'persona_recital', 'assistant_voice', 'sycophancy', 'too_long', 'echo', 'repeat'];

/** What a reply is judged against. */
export interface GuardContext {
  /** The model's text as it came. */
  readonly raw: string;
  readonly reply: UserReply;
  /** The conversation so far, ending with the assistant's answer. */
  readonly history: readonly Pick<InteractionMessage, 'role' | 'content'>[];
  /** The user may end the conversation now (min_turns reached). */
  readonly canStop: boolean;
  readonly persona: Features;
  /** The provider's finish reason (`length`: cut at the token limit). */
  readonly finishReason?: string | undefined;
  /** The persona's writing rules (computed when absent). */
  readonly rules?: WritingRules;
}

/** A reasoning block in tags: `<think>`, `<thinking>`, `<reasoning>`, `<reflection>`, `<scratchpad>`... */
const REASONING_TAG = /<\/?(?:think|thinking|thought|reasoning|reflection|analysis|scratchpad|plan|inner[_ -]?monologue)>/i;
const REASONING =
  /^\s*\**(?:thoughts?|thinking|reasoning|analysis|internal (?:monologue|note)|note to self|scratchpad|plan|step 1)\**\s*:|\b(?:the )?next (?:message|reply) should\b|\bthe question was\b|\b(?:the )?(?:answer|assistant|reply) (?:mentions|mentioned|says|said)\b.*\b(?:so|then) (?:i|the next|my)\b|\b(?:hold back|keep back|reveal) (?:the|that|this)\b.*\b(?:until|when) asked\b|\bkeep it (?:to one|short|brief)\b.*[;:]|\banswer (?:casually|briefly|tersely)\b|\bstep by step\b.*\buser\b|\bthe user (?:would|might|should) (?:probably )?(?:say|reply|respond|ask|write)\b|\bi (?:should|will|need to) (?:respond|reply|answer) as\b|\bthe assistant (?:has )?(?:covered|answered|explained|mentioned|addressed|asked)\b|\b(?:so )?i(?:'ll| will) (?:ask|reply|respond|follow up) (?:about|with) (?:that|this|it)\b/im;
const ROLE_BREAK =
  /\b(?:as an ai\b|as an? (?:ai |large )?language model|being an ai\b|an ai (?:system|model|program)\b|(?:i(?:'m| am)|im) (?:just |only |merely |literally |actually |really )?(?:an? )?(?:ai|a\.i\.|language model|llm|chat ?bot|bot|model|computer program|program|simulated user|simulation|machine)\b|not a real (?:person|human|user)\b|simulated user\b|as your (?:ai )?assistant\b|i(?:'m| am) (?:not a real|not an actual) (?:person|user|human)|(?:i'm|i am) (?:role-?playing|pretending to be)|(?:openai|anthropic) (?:model|assistant))/i;
const META =
  /\bas the user,? i(?:'d| would)?|\bhow (?:the|a|this) \w+ (?:might|would|could) (?:respond|reply|answer|react)\b|^\s*\(?ooc\b|\bout of character\b|\bsimulating\b|\b(?:the|this) (?:\w+'s|user's|customer's|client's) (?:next )?(?:answer|reply|response|message) now\b|\b(?:here(?:'s| is)|this is) (?:my|the|a) (?:next |follow-?up |realistic |natural )?(?:message|reply|response|question) as (?:the|a) user|\b(?:my|the) (?:simulated )?user(?:'s)? (?:reply|response|message)\b|\(as the user\)|\(user(?:'s)? (?:reply|message|response)\)|\bin character\b|\bspeaking as (?:the|a) user\b|\*as the user\*|\b(?:next|follow-?up) message (?:from|as) (?:the )?user|\brole-?play|\b(?:realistic|natural|plausible|possible) (?:follow-?up|reply|response|next message)\b|\bfrom the (?:user|client|customer)'s (?:perspective|point of view)|^\s*\*[^*\n\s]+(?:\s+[^*\n\s]+){2,}\*\s+\S|^\s*\[[^\]\n]{12,}\]/im;
const ROLE_LABEL = /^\s*[*[(]*\s*(?:user|me|customer|client|human|patient|student|traveller|traveler|parent|driver|tenant|caller|buyer|learner|player|you|question|follow-?up|reply|response|message)\s*[*\])]*\s*:/i;
const LIST_LINE = /^\s*(?:[-*•]\s+\S|\d+[.)]\s+\S|#{1,6}\s+\S)/;
const LIST_MARKER = /^\s*(?:[-*•]|\d+[.)]|#{1,6})\s+/;
const ASSISTANT_PHRASES =
  /\b(?:let me know if (?:you|there)|you'll want to\b|to get the most out of\b|don'?t worry\b|(?:there's |there is )?nothing to (?:worry|stress) about|i understand how (?:stressful|frustrating|difficult|hard)|we can (?:go|work) through\b|i hope (?:this|that|it) (?:helps|clarif)|hope (?:this|that) helps|great question|good question!|happy to help|glad (?:i could|to) help|feel free to (?:ask|reach out|let me know)|(?:is there )?anything else (?:i can|you'd like me to)|(?:can|may) i help you|how can i (?:help|assist)|would you like me to|here(?:'s| is| are) (?:a |an |the |some |a few )?(?:quick |brief |short |step-by-step |updated |revised )?(?:overview|summary|breakdown|guide|steps|options|version|example|explanation|solution|code|recap)|to (?:summari[sz]e|recap)(?: for you)?[:,]|just to recap|in summary[,:]|i(?:'d| would) (?:recommend|suggest) (?:that you|you)|you (?:can|could|should) (?:try|use) the following|as requested\b|reach out if)/i;
/** A list item that tells someone what to do: an imperative, or a command in backticks. */
const STEP = /^\s*(?:[-*•]|\d+[.)])\s+(?:`|(?:use|run|open|click|go|set|add|check|make|try|install|create|select|enter|type|press|find|store|keep|send|follow|remove|restart|update|save|require|ask|call|contact|upload|download|fill|pay|sign|visit|read|write|review|compare|choose|avoid|start|stop|turn|rebuild|replace)\b)/i;
const ASSISTANT_OPENERS = /^\s*(?:sure|certainly|of course|absolutely|no problem|great|happy to help)!\s/i;
const ANSWERING = /^\s*(?:certainly|of course|absolutely)[.,!]\s+(?:once|if|when|you|your|the|this|it)\b/i;
const THANKS = /\b(?:thank you|thank u|thanks|thx|ty|appreciate|grateful)\b/i;
const PRAISE =
  /\b(?:thank(?:s| you| u) so+ much|best \w+(?: \w+)? (?:i'?ve|i have) ever|better than any\b|legend\b|in awe\b|goated\b|insanely (?:good|helpful)|absolutely (?:brilliant|amazing|fantastic|incredible)|cheers massively|so very|incredibly|extremely|really appreciate|truly|genuinely|immensely|hugely|amazing|wonderful|fantastic|brilliant (?:answer|explanation|help)|excellent|outstanding|superb|perfect explanation|clearest|comprehensive|thorough|detailed (?:and|explanation|answer|response)|above and beyond|lifesaver|life saver|genius|legend|best (?:answer|explanation|assistant)|you(?:'re| are) (?:the best|amazing|a star)|so helpful|very helpful|super helpful|incredibly helpful|great (?:explanation|answer|help)|means a lot|can't thank you enough)\b/gi;
const FEATURE_LABELS = /\b(?:tech(?:nical)? proficiency|communication style|age band|age group|query length|length pref|persona|proficiency level|expertise level)\b/i;
const SPECIAL_TOKENS = /<\|[a-z_]+\|>|\[\/?INST\]|<\/?s>|<\/?(?:user|assistant|system)>/i;
const MOJIBAKE = /Ã[\u0080-\u00bf]|â€[™œ“”˜¦]|\ufffd/;
const KEYBOARD_RUNS = /(?:qwert|werty|asdf|sdfg|dfgh|fghj|ghjk|hjkl|zxcv|xcvb|cvbn|vbnm|uiop|poiu|lkjh|mnbv)/i;

const STOPWORDS = new Set(
  'a an the and or but so if then to of in on at for with from by as is are was were be been it its this that these those i me my we our you your he she they them their do does did have has had not no yes ok okay can could would should will just what which who how why when where there here about into out up down over also too very really then than like get got'.split(' '),
);

const words = (text: string): string[] => text.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}'_.-]*/gu) ?? [];
const contentWords = (text: string): Set<string> => new Set(words(text).filter((word) => !STOPWORDS.has(word) && word.length > 1));

/** Content-word sets of history messages, computed once per message rather than once per check. */
const historyWords = new WeakMap<object, Set<string>>();
const contentOf = (message: Pick<InteractionMessage, 'content'>): Set<string> => {
  let set = historyWords.get(message);
  if (set === undefined) {
    set = contentWords(message.content);
    historyWords.set(message, set);
  }
  return set;
};

function jaccard(left: ReadonlySet<string>, right: ReadonlySet<string>): number {
  if (left.size === 0 && right.size === 0) return 1;
  let shared = 0;
  for (const word of left) if (right.has(word)) shared += 1;
  return shared / (left.size + right.size - shared);
}

/** The share of `part`'s words that `whole` has. */
function covered(part: ReadonlySet<string>, whole: ReadonlySet<string>): number {
  if (part.size === 0) return 0;
  let shared = 0;
  for (const word of part) if (whole.has(word)) shared += 1;
  return shared / part.size;
}

/** Jaccard similarity of the content words of two texts, in [0, 1]. */
export const similarity = (a: string, b: string): number => jaccard(contentWords(a), contentWords(b));

/** `Nurse: ...`: the persona's own role as a speaker label. */
function startsWithOwnRole(text: string, persona: Features): boolean {
  const role = persona.role ?? persona.occupation;
  if (typeof role !== 'string' || role.trim() === '') return false;
  return text.trim().toLowerCase().startsWith(`${role.trim().toLowerCase()}:`);
}

const QUOTE_PAIRS: Readonly<Record<string, string>> = { '"': '"', '“': '”', "'": "'", '‘': '’', '«': '»', '„': '“', '「': '」' };

/** The whole reply in one pair of quotes (straight, curly, guillemets...), with no quote of that kind inside. */
function isQuoted(text: string): boolean {
  const trimmed = text.trim();
  const open = trimmed.charAt(0);
  const close = QUOTE_PAIRS[open];
  if (close === undefined || trimmed.length < 3 || !trimmed.endsWith(close)) return false;
  const inner = trimmed.slice(1, -1);
  if (open === "'" || open === '‘') return !/(?:^|\s)['‘]|['’](?=\s|$)/.test(inner);
  return !inner.includes(open) && !inner.includes(close) && !(open === '"' && /[“”]/.test(inner));
}

/** The same word, or the same phrase of up to four words, four times in a row. */
function loops(tokens: readonly string[]): boolean {
  const lower = tokens.map((token) => token.toLowerCase());
  for (let size = 1; size <= 4; size += 1) {
    for (let start = 0; start + size * 4 <= lower.length; start += 1) {
      const phrase = lower.slice(start, start + size).join(' ');
      let times = 1;
      while (start + size * (times + 1) <= lower.length && lower.slice(start + size * times, start + size * (times + 1)).join(' ') === phrase) times += 1;
      if (times >= 4) return true;
    }
  }
  return false;
}

/** Symbols no one types in a chat message (maths, modifier and other symbols, emoji aside). */
const ODD_SYMBOLS = /(?!\p{Extended_Pictographic})[\p{Sm}\p{Sk}\p{So}]/gu;

function isGibberish(text: string): boolean {
  if (SPECIAL_TOKENS.test(text) || MOJIBAKE.test(text)) return true;
  const tokens = text.split(/\s+/).filter((token) => token !== '');
  if (loops(tokens)) return true;
  // Escaped markup instead of text, or one long encoded blob (base64, hex).
  if ((text.match(/&(?:#\d+|#x[\da-f]+|[a-z]{2,6});/gi) ?? []).length >= 3) return true;
  if (tokens.length <= 2 && tokens.some((token) => token.length >= 24 && /^[A-Za-z0-9+/=_-]+$/.test(token) && /\d/.test(token) === /[A-Z]/.test(token) && !/^[a-z_]+$/.test(token))) return true;
  const odd = (text.match(ODD_SYMBOLS) ?? []).length;
  if (odd >= 4 && odd >= text.replace(/\s/g, '').length * 0.25) return true;
  const letters = tokens.map((token) => token.replace(/[^\p{L}]/gu, '')).filter((token) => token.length >= 6);
  // Long letter runs without a vowel, or keyboard rows.
  // (A typo drops a vowel or two, "strngs": only a long run without any is mashing.)
  const mashed = letters.filter((token) => (token.length >= 8 && !/[aeiouyàáâãäåèéêëìíîïòóôõöùúûüæœ]/i.test(token)) || KEYBOARD_RUNS.test(token));
  if (mashed.length >= 1 && mashed.length >= letters.length / 3) return true;
  // Mostly symbols, and no word in it: not even code or a path a user pasted has that.
  const visible = text.replace(/\s/g, '');
  const alnum = visible.replace(/[^\p{L}\p{N}]/gu, '').length;
  return visible.length >= 20 && alnum / visible.length < 0.5 && !/\p{L}{3,}/u.test(text);
}

function looksLikeAssistant(text: string): boolean {
  if (ASSISTANT_PHRASES.test(text) || ASSISTANT_OPENERS.test(text) || ANSWERING.test(text)) return true;
  const lines = text.split('\n');
  const items = lines.filter((line) => LIST_LINE.test(line));
  const numbered = items.filter((line) => /^\s*\d+[.)]\s/.test(line)).length;
  const bold = (text.match(/\*\*[^*\n]+\*\*/g) ?? []).length;
  const headings = lines.filter((line) => /^\s*#{1,6}\s+\S/.test(line)).length;
  // A user lists its own things in a few words each ("- pudding rice", "1. J. Smith / Jane Smith"); an
  // assistant's points are sentences, or steps that tell someone what to do.
  const wordsIn = (line: string): number => (line.replace(LIST_MARKER, '').match(/\p{L}[\p{L}'’-]*/gu) ?? []).length;
  const wordy = items.length > 0 && items.reduce((sum, line) => sum + wordsIn(line), 0) / items.length >= 5;
  const steps = items.filter((line) => STEP.test(line)).length;
  return (items.length >= 2 && (wordy || steps >= 2)) || (numbered >= 2 && steps >= 1) || bold >= 2 || headings >= 1 || (bold >= 1 && items.length >= 1);
}

/** Lavish thanks or praise: two marks of it ("so much", "incredibly", "clearest"...), or thanks with one. */
function isSycophantic(text: string): boolean {
  const praise = (text.match(PRAISE) ?? []).length;
  return praise >= 2 || (praise >= 1 && THANKS.test(text.replace(/\bthank(?:s| you| u) so much\b/gi, '')));
}

/** The text without whitespace and invisible characters (zero-width spaces, joiners, marks). */
const visible = (text: string): string => text.replace(/[\s\p{Cf}\p{Z}]/gu, '');

/** The persona's own values said back ("as a casual backend engineer aged 25-34 with expert ..."). */
function recitesPersona(text: string, persona: Features): boolean {
  if (FEATURE_LABELS.test(text)) return true;
  const lower = text.toLowerCase();
  const values = Object.values(persona)
    .filter((value): value is string => typeof value === 'string')
    .map((value) => value.toLowerCase().replace(/_/g, ' ').trim())
    .filter((value) => value.length >= 3);
  const said = values.filter((value) => new RegExp(`(?:^|[^\\p{L}\\p{N}])${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:$|[^\\p{L}\\p{N}])`, 'u').test(lower));
  return said.length >= 3 || (said.length >= 2 && /\b(?:as an?|i(?:'m| am) an?|being an?)\b/.test(lower));
}

/** The most words this persona's message may have before it is clearly too long: twice its band. */
export const tooLongAt = (rules: WritingRules): number => (rules.maxWords === undefined ? UNBOUNDED_WORDS : rules.maxWords * 2);

/**
 * Why a simulator reply cannot be used as it is, or undefined when it can. Checked in order: what is not
 * a message at all (empty, cut at the token limit, leaked reasoning, out of character, meta-talk, a
 * speaker label, quoted whole), a stop where none can be, gibberish, then what is a message but not this
 * user's (the persona recited, an assistant's voice, lavish thanks, far too long for its length band, a
 * copy of the assistant's answer, or a repeat of the user's own earlier message, judged on content words
 * so that a recurring "yes" or "ok thanks" is never a repeat).
 */
export function guardReply(context: GuardContext): GuardReason | undefined {
  const { raw, reply, history, canStop } = context;
  if (REASONING_TAG.test(raw)) return 'reasoning_leak';
  if (reply.kind === 'stop' && !canStop) return 'early_stop';
  if (reply.kind === 'misplaced_stop') return canStop ? 'misplaced_stop' : 'early_stop';
  const text = reply.kind === 'stop' ? reply.closing : reply.text;
  if (reply.kind === 'followup' && visible(text) === '') return 'empty';
  if (context.finishReason === 'length') return 'truncated';
  if (text.trim() === '') return undefined;
  if (REASONING.test(text)) return 'reasoning_leak';
  if (ROLE_BREAK.test(text)) return 'role_break';
  if (META.test(text)) return 'meta';
  if (ROLE_LABEL.test(text) || startsWithOwnRole(text, context.persona)) return 'role_label';
  if (isQuoted(text)) return 'quoted';
  if (isGibberish(text)) return 'gibberish';
  if (recitesPersona(text, context.persona)) return 'persona_recital';
  if (looksLikeAssistant(text)) return 'assistant_voice';
  if (isSycophantic(text)) return 'sycophancy';
  if (wordCount(text) > tooLongAt(context.rules ?? writingRules(context.persona))) return 'too_long';
  if (reply.kind === 'stop') return undefined;
  const mine = contentWords(text);
  const lastAssistant = history.findLast((m) => m.role === 'assistant');
  if (lastAssistant !== undefined && mine.size >= 4) {
    const theirs = contentOf(lastAssistant);
    const normalized = text.toLowerCase().replace(/\s+/g, ' ').trim();
    const contained = normalized.length >= 30 && lastAssistant.content.toLowerCase().replace(/\s+/g, ' ').includes(normalized);
    if (contained || jaccard(mine, theirs) >= 0.6 || (mine.size >= 6 && covered(mine, theirs) >= 0.75)) return 'echo';
  }
  const again = (m: Pick<InteractionMessage, 'role' | 'content'>): boolean => m.role === 'user' && (jaccard(mine, contentOf(m)) >= 0.7 || (mine.size >= 6 && covered(mine, contentOf(m)) >= 0.75));
  // The opening request told again in other words: a long reply made mostly of its words.
  const first = history.find((m) => m.role === 'user');
  const restated = first !== undefined && mine.size >= 10 && covered(mine, contentOf(first)) >= 0.55;
  if (mine.size >= 3 && (restated || history.some(again))) return 'repeat';
  return undefined;
}

/** A reminder for the re-ask after a rejected reply. It goes to the model only, never into the transcript. */
export function nudgeFor(reason: GuardReason, stopToken: string): string {
  switch (reason) {
    case 'empty':
      return 'Your last reply was empty. Write your next message as the user.';
    case 'truncated':
      return 'Your last message was cut off: write a shorter one.';
    case 'early_stop':
      return `Do not end the conversation yet (no ${stopToken}): ask your next question or react to the answer.`;
    case 'misplaced_stop':
      return `Either write your next message, or end with ${stopToken} alone on the last line after any closing words; never put ${stopToken} in the middle of a message or after a question.`;
    case 'echo':
      return "Do not copy the assistant's words: write what you, the user, would say next.";
    case 'repeat':
      return 'Do not repeat an earlier message of yours: say something new.';
    case 'assistant_voice':
      return 'You are the user, not the assistant: do not explain, summarise, offer help or use lists; just say what you want next, briefly.';
    case 'sycophancy':
      return 'Do not thank or praise the assistant at length: say what you want next.';
    case 'too_long':
      return 'That was far too long for you: write a much shorter message, as you usually do.';
    case 'persona_recital':
      return 'Do not describe yourself or list your traits: just write the message the way you would.';
    case 'gibberish':
      return 'Write a real message in plain words.';
    case 'role_label':
    case 'quoted':
    case 'meta':
      return 'Write only the message itself: no label, no quotes, no comment about it.';
    case 'reasoning_leak':
    case 'role_break':
      return 'Stay in character as the user: no reasoning, no mention of being an AI.';
  }
}
