// Rule-based noise: PersonaGym's legacy strategies and offline versions of its layer strategies.
// Every function is pure given its Rng: same text, parameters and seed, same output.
import { pick, type Rng } from '../rng.js';
import type { Lexicon } from './lexicon.js';

/** Parameters a strategy may take (PersonaGym's `noise_strategies` keys). */
export interface StrategyParams {
  /** typo: share of words that get one typo (at least one typo). */
  readonly intensity?: number | undefined;
  /** word_swap: adjacent swaps. */
  readonly num_swaps?: number | undefined;
  readonly deletion_rate?: number | undefined;
  readonly insertion_rate?: number | undefined;
  readonly replacement_rate?: number | undefined;
}

export interface StrategyContext {
  readonly rng: Rng;
  readonly params: StrategyParams;
  readonly lexicon: Lexicon;
}

export type Strategy = (text: string, context: StrategyContext) => string;

/** A text as words and the whitespace between them, so rebuilding keeps line breaks and spacing. */
interface Tokens {
  readonly words: string[];
  /** gaps[i] precedes words[i]; gaps[words.length] is the trailing whitespace. */
  readonly gaps: string[];
}

function tokenize(text: string): Tokens {
  const words: string[] = [];
  const gaps: string[] = [];
  let last = 0;
  for (const match of text.matchAll(/\S+/g)) {
    gaps.push(text.slice(last, match.index));
    words.push(match[0]);
    last = match.index + match[0].length;
  }
  gaps.push(text.slice(last));
  return { words, gaps };
}

function join({ words, gaps }: Tokens): string {
  let out = gaps[0] ?? '';
  for (let i = 0; i < words.length; i += 1) out += `${words[i]}${gaps[i + 1] ?? ''}`;
  return out;
}

/** Rebuilds a text from a new word list, with single spaces where the word count changed. */
function withWords(original: Tokens, words: readonly string[]): string {
  if (original.words.length === 0) return `${original.gaps[0] ?? ''}${words.join(' ')}`;
  if (words.length === original.words.length) return join({ words: [...words], gaps: original.gaps });
  const lead = original.gaps[0] ?? '';
  const trail = original.gaps[original.words.length] ?? '';
  return `${lead}${words.join(' ')}${trail}`;
}

const count = (words: number, rate: number | undefined, fallback: number): number => Math.max(1, Math.floor(words * (rate ?? fallback)));

/** PersonaGym's keyboard neighbours. */
const NEIGHBOURS: Readonly<Record<string, string>> = {
  a: 'sq', b: 'vn', c: 'xv', d: 'sf', e: 'wr', f: 'dg', g: 'fh', h: 'gj', i: 'uo', j: 'hk', k: 'jl', l: 'ko', m: 'n,',
  n: 'bm', o: 'ip', p: 'o[', q: 'wa', r: 'et', s: 'ad', t: 'ry', u: 'yi', v: 'cb', w: 'qe', x: 'zc', y: 'tu', z: 'xs',
};

/** Number of typos `typo` makes in a text of `words` words: at least one, `intensity` of the words. */
export const typoCount = (words: number, intensity: number | undefined): number => count(words, intensity, 0.1);

/**
 * One typo in each of `max(1, ⌊words × intensity⌋)` draws: a keyboard-adjacent substitution (PersonaGym's
 * map), a dropped, a doubled or two transposed letters. Only words longer than two characters and only
 * letters are touched, so each typo is at most two single-character edits.
 */
export const typo: Strategy = (text, { rng, params }) => {
  const tokens = tokenize(text);
  const words = [...tokens.words];
  if (words.length === 0) return text;
  for (let n = typoCount(words.length, params.intensity); n > 0; n -= 1) {
    const index = rng.int(0, words.length - 1);
    // Code points, not UTF-16 units: an emoji or a non-BMP letter is never split in half.
    const chars = [...(words[index] as string)];
    if (chars.length <= 2) continue;
    const letters = chars.flatMap((char, at) => (/\p{L}/u.test(char) ? [at] : []));
    if (letters.length === 0) continue;
    const at = pick(rng, letters);
    const char = chars[at] as string;
    const kind = rng.int(0, 3);
    const neighbours = NEIGHBOURS[char.toLowerCase()];
    if (kind === 0 && neighbours !== undefined) {
      const replacement = pick(rng, [...neighbours]);
      chars[at] = char === char.toUpperCase() ? replacement.toUpperCase() : replacement;
    } else if (kind === 1 && letters.length > 1) {
      chars.splice(at, 1);
    } else if (kind === 3 && letters.includes(at + 1)) {
      chars[at] = chars[at + 1] as string;
      chars[at + 1] = char;
    } else {
      chars.splice(at, 0, char);
    }
    words[index] = chars.join('');
  }
  return join({ words, gaps: tokens.gaps });
};

/** `num_swaps` swaps of a word with its right neighbour (at most half the word count). */
export const wordSwap: Strategy = (text, { rng, params }) => {
  const tokens = tokenize(text);
  const words = [...tokens.words];
  if (words.length < 2) return text;
  const swaps = Math.min(Math.max(0, Math.floor(params.num_swaps ?? 2)), Math.floor(words.length / 2));
  for (let n = 0; n < swaps; n += 1) {
    const i = rng.int(0, words.length - 2);
    [words[i], words[i + 1]] = [words[i + 1] as string, words[i] as string];
  }
  return join({ words, gaps: tokens.gaps });
};

/** Deletes `max(1, ⌊words × deletion_rate⌋)` distinct words; a text of too few words stays as it is. */
export const wordDeletion: Strategy = (text, { rng, params }) => {
  const tokens = tokenize(text);
  const n = tokens.words.length;
  const deletions = count(n, params.deletion_rate, 0.05);
  if (n <= deletions + 2) return text;
  const doomed = new Set<number>();
  while (doomed.size < deletions) doomed.add(rng.int(0, n - 1));
  return withWords(tokens, tokens.words.filter((_, i) => !doomed.has(i)));
};

/** PersonaGym's filler words. */
export const FILLERS = ['like', 'um', 'uh', 'basically', 'actually', 'you know', 'I mean', 'sort of', 'kind of', 'just'] as const;

/** Inserts `max(1, ⌊words × insertion_rate⌋)` filler words at random positions (the end included). */
export const wordInsertion: Strategy = (text, { rng, params }) => {
  const tokens = tokenize(text);
  const words = [...tokens.words];
  for (let n = count(words.length, params.insertion_rate, 0.05); n > 0; n -= 1) words.splice(rng.int(0, words.length), 0, pick(rng, FILLERS));
  return withWords(tokens, words);
};

/** Short and function words a synonym would only garble. */
const FUNCTION_WORDS = new Set(
  'about above after again also because please thanks been before being below between both could does doing down during each even ever from further have having here into just more most much must once only other over same should some such than that their them then there these they this those through under until very what when where which while will with would your yours'.split(' '),
);

/**
 * Replaces `max(1, ⌊words × replacement_rate⌋)` words by a WordNet synonym of their most common sense,
 * keeping attached punctuation and a leading capital (up to 10 tries each, as PersonaGym does).
 */
export const synonymReplacement: Strategy = (text, { rng, params, lexicon }) => {
  const tokens = tokenize(text);
  const words = [...tokens.words];
  if (words.length === 0) return text;
  const replaced = new Set<number>();
  for (let n = count(words.length, params.replacement_rate, 0.15); n > 0; n -= 1) {
    // Each word at most once (a synonym of a synonym drifts from the meaning): draw among the others.
    const open = words.flatMap((_, i) => (replaced.has(i) ? [] : [i]));
    for (let attempt = 0; attempt < 10 && open.length > 0; attempt += 1) {
      const index = pick(rng, open);
      const match = /^(\W*)([A-Za-z][a-z'-]*)(\W*)$/.exec(words[index] as string);
      if (match === null) continue;
      const [, before, word, after] = match as unknown as [string, string, string, string];
      if (word.length < 4 || FUNCTION_WORDS.has(word.toLowerCase())) continue;
      const synonyms = lexicon.synonyms(word);
      if (synonyms.length === 0) continue;
      const synonym = pick(rng, synonyms);
      const cased = /^[A-Z]/.test(word) ? synonym[0]?.toUpperCase() + synonym.slice(1) : synonym;
      words[index] = `${before}${cased}${after}`;
      replaced.add(index);
      break;
    }
  }
  return join({ words, gaps: tokens.gaps });
};

const COLLOQUIAL: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bgoing to\b/gi, 'gonna'],
  [/\bwant to\b/gi, 'wanna'],
  [/\bgot to\b/gi, 'gotta'],
  [/\bkind of\b/gi, 'kinda'],
  [/\bplease\b/gi, 'pls'],
  [/\bthanks\b/gi, 'thx'],
  [/\bthank you\b/gi, 'thx'],
  [/\bbecause\b/gi, 'cuz'],
  [/\byou\b/gi, 'u'],
  [/\byour\b/gi, 'ur'],
  [/\bare\b/gi, 'r'],
  [/\bI am\b/g, "I'm"],
  [/\bdo not\b/gi, "don't"],
  [/\bcannot\b/gi, "can't"],
  [/\bis not\b/gi, "isn't"],
  [/\bto be honest\b/gi, 'tbh'],
  [/\bby the way\b/gi, 'btw'],
  [/\bokay\b/gi, 'ok'],
];

/** Chat spelling (u, pls, gonna, ...), each occurrence with probability one half, and dropped capitals. */
export const colloquialSpeech: Strategy = (text, { rng }) => {
  let out = text;
  for (const [pattern, replacement] of COLLOQUIAL) out = out.replace(pattern, (found) => (rng.next() < 0.5 ? replacement : found));
  // Dropped capitals at sentence starts ("I" stays: people drop it less than the rest).
  out = out.replace(/(^\s*|[.!?]\s+)([A-Z])(?=[a-z])/g, (_, lead: string, letter: string) => `${lead}${letter.toLowerCase()}`);
  return out === text ? text.replace(/^(\s*)(\S)/, (_, lead: string, char: string) => `${lead}${char.toLowerCase()}`) : out;
};

/** Sloppy punctuation: a dropped final stop, dropped commas, a doubled question or exclamation mark. */
export const punctuationFormat: Strategy = (text, { rng }) => {
  let out = text;
  if (rng.next() < 0.5) out = out.replace(/,(?=\s)/g, (found) => (rng.next() < 0.6 ? '' : found));
  if (/[?!]\s*$/.test(out) && rng.next() < 0.4) out = out.replace(/([?!])(\s*)$/, '$1$1$2');
  else out = out.replace(/[.?!](\s*)$/, '$1');
  if (rng.next() < 0.3) out = out.replace(/'/g, (found) => (rng.next() < 0.5 ? '' : found));
  return out;
};

/**
 * Spacing slips: a compound split where WordNet knows both halves ("database" → "data base"), or else
 * two short neighbouring words run together ("log in" → "login").
 */
export const wordSegmentation: Strategy = (text, { rng, lexicon }) => {
  const tokens = tokenize(text);
  const words = [...tokens.words];
  const candidates: Array<[number, number]> = [];
  words.forEach((word, index) => {
    if (!/^[a-z]{8,}$/i.test(word)) return;
    // Halves of four letters or more: WordNet knows many three-letter oddities ("dat abase").
    for (let at = 4; at <= word.length - 4; at += 1) {
      if (lexicon.has(word.slice(0, at)) && lexicon.has(word.slice(at))) candidates.push([index, at]);
    }
  });
  if (candidates.length > 0) {
    const [index, at] = pick(rng, candidates);
    const word = words[index] as string;
    words[index] = `${word.slice(0, at)} ${word.slice(at)}`;
    return join({ words, gaps: tokens.gaps });
  }
  const pairs = words.flatMap((word, i) => (i + 1 < words.length && /^[a-z]{2,4}$/i.test(word) && /^[a-z]+/i.test(words[i + 1] as string) ? [i] : []));
  if (pairs.length === 0) return text;
  const i = pick(rng, pairs);
  words.splice(i, 2, `${words[i] as string}${words[i + 1] as string}`);
  return withWords(tokens, words);
};

const REQUEST_OPENERS = /^(\s*)(?:(?:hi|hello|hey)[,!]?\s+)?(?:can|could|would|will) you(?: please)?\s+|^(\s*)(?:please|i (?:want|need|would like) (?:you )?to|i'd like (?:you )?to)\s+/i;

/** Fragments: the request opener dropped ("Could you explain X?" → "explain X?") or an article skipped. */
export const incompleteSentence: Strategy = (text, { rng }) => {
  if (REQUEST_OPENERS.test(text) && rng.next() < 0.7) return text.replace(REQUEST_OPENERS, '$1$2');
  const tokens = tokenize(text);
  const articles = tokens.words.flatMap((word, i) => (/^(a|an|the)$/i.test(word) ? [i] : []));
  if (articles.length > 0) {
    const drop = pick(rng, articles);
    return withWords(tokens, tokens.words.filter((_, i) => i !== drop));
  }
  // Nothing to drop: end without the final punctuation and trail off.
  return text.replace(/[.?!]?(\s*)$/, '...$1');
};

const ATTITUDES = {
  urgent: ['need this asap', 'kinda urgent', 'need this soon', 'quick one, in a rush'],
  polite: ['would really appreciate it', 'thanks in advance', 'if you don\'t mind'],
  frustrated: ['ugh', 'this is driving me nuts', 'been stuck on this all day'],
} as const;

/** A short note of urgency, politeness or frustration, before or after the request. */
export const emotionalAttitude: Strategy = (text, { rng }) => {
  const kind = pick(rng, Object.keys(ATTITUDES) as Array<keyof typeof ATTITUDES>);
  const note = pick(rng, ATTITUDES[kind]);
  const match = /^(\s*)([\s\S]*?)(\s*)$/.exec(text) as RegExpExecArray;
  const body = match[2] as string;
  if (body === '') return text;
  return rng.next() < 0.5 ? `${match[1]}${note}, ${body}${match[3]}` : `${match[1]}${body.replace(/(?<!\.)\.$/, '')}, ${note}${match[3]}`;
};

/** Adds one of `suffixes` at the end: after a comma, or as its own clause after a question or exclamation mark. */
const append = (suffixes: readonly string[]): Strategy => (text, { rng }) => {
  const body = text.trimEnd();
  if (body === '') return text;
  const suffix = pick(rng, suffixes);
  const joined = /[?!]$/.test(body) ? `${body} ${suffix.replace(/^[,.\s]+/, '')}` : `${body.replace(/(?<!\.)\.$/, '')}${suffix}`;
  return `${joined}${text.slice(body.length)}`;
};

/** Missing details: a trailing constraint ("by Friday", "for 10 people", "in Python") cut off. */
export const missingSlots: Strategy = (text, { rng }) => {
  const tokens = tokenize(text);
  const cuts = tokens.words.flatMap((word, i) => (i >= 3 && /^(for|by|with|in|on|before|under|within|using|from|at|about)$/i.test(word) ? [i] : []));
  if (cuts.length === 0) return text;
  const cut = pick(rng, cuts);
  const end = tokens.words.at(-1)?.match(/[?!.]$/)?.[0] ?? '';
  return withWords(tokens, tokens.words.slice(0, cut)).replace(/[,;:]?(\s*)$/, `${end}$1`);
};

/** Precise values made vague: numbers, prices and dates. */
export const vagueSlotValues: Strategy = (text, context) => {
  const { rng } = context;
  const out = text
    .replace(/[$€£]\s?\d[\d,.]*/g, () => pick(rng, ['not too expensive', 'something affordable', 'a reasonable budget']))
    .replace(/\b\d+(?:[.,]\d+)?\b/g, () => pick(rng, ['a few', 'some', 'not too many', 'enough']))
    .replace(/\b(?:today|tomorrow|tonight|next week|on (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b/gi, () => pick(rng, ['soon', 'whenever', 'pretty quick']));
  return out !== text ? out : append([', not too long', ', detailed enough', ', nothing fancy'])(text, context);
};

export const contextDependency = append([' like last time', ', the usual way', ', same as before', ' like we discussed']);
export const unclearPriority = append([', whatever you think is best', ', up to you', ', you decide', ', whatever works']);
export const multiIntent = append([' oh and also, can you suggest a good name for it?', ' btw, how long would that take?', ' and while you\'re at it, what should I read next?']);
export const selfContradiction = append([', keep it short but really detailed', ', simple but covering everything', ', quick but make it perfect']);
export const mindChanging = append(['... actually wait, make it simpler', '. scratch that, keep it brief', ', on second thought, go more formal']);

/** Core request made ambiguous: the verb phrase replaced by a vague one. */
export const intentAmbiguity: Strategy = (text, { rng }) => {
  const vague = pick(rng, ['help with this', 'deal with this', 'work on this', 'make it better']);
  const replaced = text.replace(REQUEST_OPENERS, (found) => `${found}${vague}: `);
  return replaced !== text ? replaced : `${vague}: ${text.trimStart()}`;
};

/** Every rule-based strategy by its PersonaGym name (legacy names and layer-strategy names). */
export const STRATEGIES: Readonly<Record<string, Strategy>> = {
  typo,
  word_swap: wordSwap,
  word_deletion: wordDeletion,
  word_insertion: wordInsertion,
  synonym_replacement: synonymReplacement,
  // Surface-noise strategies of the semantic layers that need no model.
  colloquial_speech: colloquialSpeech,
  punctuation_format: punctuationFormat,
  word_segmentation: wordSegmentation,
  incomplete_sentence: incompleteSentence,
  emotional_attitude: emotionalAttitude,
  typo_misspelling: typo,
  synonym_rewrite: synonymReplacement,
  negative_expression: append([", don't make it too formal", ", nothing too complicated", ", no jargon"]),
  real_life_fragments: (text, context) => `${pick(context.rng, ['quick question, ', 'on mobile so sorry for typos, ', 'before i forget, '])}${text.trimStart()}`,
  // Offline stand-ins for the layers a model does better (used by `sim` and in rule mode).
  missing_slots: missingSlots,
  vague_slot_values: vagueSlotValues,
  context_dependency: contextDependency,
  unclear_priority: unclearPriority,
  multi_intent: multiIntent,
  intent_ambiguity: intentAmbiguity,
  self_contradiction: selfContradiction,
  mind_changing: mindChanging,
};

/** Strategies that only move, add or re-punctuate words: every original word stem survives them. */
export const WORD_KEEPING = ['word_swap', 'word_insertion', 'punctuation_format', 'emotional_attitude', 'context_dependency', 'unclear_priority', 'multi_intent', 'self_contradiction', 'negative_expression', 'real_life_fragments'] as const;
