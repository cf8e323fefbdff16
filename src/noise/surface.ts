// Surface noise by rule: slips of typing that change how a request looks, never what it asks for.
// Every strategy leaves the protected tokens (`spansOf`) as they are and drops nothing.
import { pick } from '../rng.js';
import { kept, spansOf, type Strategy } from './strategy.js';
import { draftOf, insertWord, insideSpan, isPlain, overlaps, removeWord, textOf, wordsOf, type Span, type Word } from './words.js';

const count = (words: number, rate: number | undefined, fallback: number): number => Math.max(1, Math.floor(words * (rate ?? fallback)));

/** Whether character `at` lies in a span. */
const inSpan = (spans: readonly Span[], at: number): boolean => spans.some((span) => span.start <= at && at < span.end);

/** Whether word `i` starts a sentence: the first word, or the one after a word ending a sentence. */
const startsSentence = (words: readonly Word[], i: number): boolean => i === 0 || /[.?!:;]["'”’)]*$/u.test(words[i - 1]?.text ?? '');

/** The text with its first letter in lower case, unless the first word is protected or is "I" ("I'm", "I'd"). */
function lowerFirst(text: string, spans: readonly Span[]): string {
  const match = /^(\s*)(\S+)/u.exec(text);
  if (match === null) return text;
  const [, lead = '', word = ''] = match;
  if (overlaps(spans, lead.length, lead.length + word.length) || /^I(?:['’]\p{L}+)?\W*$/u.test(word)) return text;
  return `${lead}${word.charAt(0).toLowerCase()}${text.slice(lead.length + 1)}`;
}

/** PersonaGym's keyboard neighbours. */
const NEIGHBOURS: Readonly<Record<string, string>> = {
  a: 'sq', b: 'vn', c: 'xv', d: 'sf', e: 'wr', f: 'dg', g: 'fh', h: 'gj', i: 'uo', j: 'hk', k: 'jl', l: 'ko', m: 'n,',
  n: 'bm', o: 'ip', p: 'o[', q: 'wa', r: 'et', s: 'ad', t: 'ry', u: 'yi', v: 'cb', w: 'qe', x: 'zc', y: 'tu', z: 'xs',
};

/** Number of typos `typo` makes in a text of `words` words: at least one, `intensity` of the words. */
export const typoCount = (words: number, intensity: number | undefined): number => count(words, intensity, 0.1);

/**
 * `max(1, ⌊words × intensity⌋)` typos, each in an unprotected word of three characters or more: a
 * keyboard-adjacent substitution (PersonaGym's map), a dropped, a doubled or two transposed letters. Only
 * letters are touched, so each typo is at most two single-character edits.
 */
export const typo: Strategy = (text, context) => {
  const { rng, params } = context;
  const parsed = wordsOf(text, spansOf(text, context));
  const draft = draftOf(parsed);
  // Code points, not UTF-16 units: an emoji or a non-BMP letter is never split in half.
  const open = parsed.words.flatMap((word, i) => (!word.locked && [...word.text].length > 2 && /\p{L}/u.test(word.text) ? [i] : []));
  if (open.length === 0) return kept(text);
  for (let n = typoCount(parsed.words.length, params.intensity); n > 0; n -= 1) {
    const index = pick(rng, open);
    const chars = [...(draft.words[index] as string)];
    const letters = chars.flatMap((char, at) => (/\p{L}/u.test(char) ? [at] : []));
    // An earlier typo may have taken the word's only letter ("m" → ",").
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
    draft.words[index] = chars.join('');
  }
  return kept(textOf(draft));
};

/**
 * `num_swaps` swaps of two neighbouring words, as fast typing does ("the of"): both plain words (no
 * punctuation attached, so never across a comma or a sentence end), unprotected, on one line, the first
 * not starting a sentence; each word moves at most once.
 */
export const wordSwap: Strategy = (text, context) => {
  const { rng, params } = context;
  const parsed = wordsOf(text, spansOf(text, context));
  const { words } = parsed;
  const swappable = (i: number): boolean => {
    const [a, b] = [words[i], words[i + 1]];
    return a !== undefined && b !== undefined && !a.locked && !b.locked && isPlain(a.text) && isPlain(b.text) && !startsSentence(words, i) && /^[ \t]+$/.test(parsed.gaps[i + 1] ?? '');
  };
  let open = words.flatMap((_, i) => (swappable(i) ? [i] : []));
  const draft = draftOf(parsed);
  const swaps = Math.max(0, Math.floor(params.num_swaps ?? 2));
  for (let n = 0; n < swaps && open.length > 0; n += 1) {
    const i = pick(rng, open);
    [draft.words[i], draft.words[i + 1]] = [draft.words[i + 1] as string, draft.words[i] as string];
    open = open.filter((j) => j < i - 1 || j > i + 1);
  }
  return kept(textOf(draft));
};

/** Words people skip when they type fast: articles, auxiliaries, pronouns, softeners. */
const SKIPPABLE = new Set(['a', 'an', 'the', 'to', 'of', 'is', 'are', 'am', 'was', 'be', 'do', 'does', 'did', 'that', 'it', 'i', 'you', 'please', 'just', 'really', 'so', 'very', 'me', 'my']);

/**
 * Deletes `max(1, ⌊words × deletion_rate⌋)` distinct words that people skip when typing fast (an article,
 * an auxiliary, a pronoun: "how do I profile slow query"); never a protected word. A text of too few
 * words stays as it is.
 */
export const wordDeletion: Strategy = (text, context) => {
  const { rng, params } = context;
  const parsed = wordsOf(text, spansOf(text, context));
  const n = parsed.words.length;
  const deletions = count(n, params.deletion_rate, 0.05);
  if (n <= deletions + 2) return kept(text);
  const open = parsed.words.flatMap((word, i) => (!word.locked && SKIPPABLE.has(word.text.toLowerCase()) ? [i] : []));
  const doomed = new Set<number>();
  while (doomed.size < deletions && doomed.size < open.length) doomed.add(pick(rng, open));
  const draft = draftOf(parsed);
  for (const i of [...doomed].sort((a, b) => b - a)) removeWord(draft, i);
  return kept(textOf(draft));
};

/** PersonaGym's filler words. */
export const FILLERS = ['like', 'um', 'uh', 'basically', 'actually', 'you know', 'I mean', 'sort of', 'kind of', 'just'] as const;

/**
 * Inserts `max(1, ⌊words × insertion_rate⌋)` filler words between words: at the start or after a word that
 * does not end a sentence; never inside a protected span (a quoted phrase), between two protected words,
 * or at the end.
 */
export const wordInsertion: Strategy = (text, context) => {
  const { rng, params } = context;
  const spans = spansOf(text, context);
  const parsed = wordsOf(text, spans);
  const { words } = parsed;
  // Not between two protected words either: they are one name or term ("Union Square", "lesson plan").
  const open = words.flatMap((word, i) => {
    const previous = words[i - 1];
    return (previous === undefined || (!/[.?!:;]["'”’)]*$/u.test(previous.text) && !(previous.locked && word.locked))) && !insideSpan(spans, word.start) ? [i] : [];
  });
  if (open.length === 0) return kept(text);
  const draft = draftOf(parsed);
  const chosen = Array.from({ length: count(words.length, params.insertion_rate, 0.05) }, () => pick(rng, open)).sort((a, b) => b - a);
  // A filler before the first word: the sentence now starts with it ("um how do I"), unless that word is protected or "I".
  const first = words[0];
  if (chosen.includes(0) && first !== undefined && !first.locked && !/^I(?:['’]\p{L}+)?\W*$/u.test(first.text)) draft.words[0] = first.text.charAt(0).toLowerCase() + first.text.slice(1);
  for (const i of chosen) insertWord(draft, i, pick(rng, FILLERS));
  return kept(textOf(draft));
};

/** Short and function words a synonym would only garble. */
const FUNCTION_WORDS = new Set(
  'about above after again also because please thanks been before being below between both could does doing down during each even ever from further have having here into just more most much must once only other over same should some such than that their them then there these they this those through under until very what when where which while will with would your yours'.split(' '),
);

/**
 * Replaces `max(1, ⌊words × replacement_rate⌋)` unprotected words by a WordNet synonym of their most
 * common sense, keeping attached punctuation and a leading capital (up to 10 tries each, as PersonaGym does).
 */
export const synonymReplacement: Strategy = (text, context) => {
  const { rng, params, lexicon } = context;
  const parsed = wordsOf(text, spansOf(text, context));
  const draft = draftOf(parsed);
  if (parsed.words.length === 0) return kept(text);
  const replaced = new Set<number>();
  for (let n = count(parsed.words.length, params.replacement_rate, 0.15); n > 0; n -= 1) {
    // Each word at most once (a synonym of a synonym drifts from the meaning): draw among the others.
    const open = parsed.words.flatMap((word, i) => (replaced.has(i) || word.locked ? [] : [i]));
    for (let attempt = 0; attempt < 10 && open.length > 0; attempt += 1) {
      const index = pick(rng, open);
      const match = /^(\W*)([A-Za-z][a-z'-]*)(\W*)$/.exec(draft.words[index] as string);
      if (match === null) continue;
      const [, before, word, after] = match as unknown as [string, string, string, string];
      if (word.length < 4 || FUNCTION_WORDS.has(word.toLowerCase())) continue;
      const synonyms = lexicon.synonyms(word);
      if (synonyms.length === 0) continue;
      const synonym = pick(rng, synonyms);
      const cased = /^[A-Z]/.test(word) ? synonym[0]?.toUpperCase() + synonym.slice(1) : synonym;
      draft.words[index] = `${before}${cased}${after}`;
      replaced.add(index);
      break;
    }
  }
  return kept(textOf(draft));
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

/** Chat spelling (u, pls, gonna, ...), each occurrence outside a protected span with probability one half, and dropped capitals. */
export const colloquialSpeech: Strategy = (text, context) => {
  const { rng } = context;
  let out = text;
  for (const [pattern, replacement] of COLLOQUIAL) {
    const spans = spansOf(out, context);
    out = out.replace(pattern, (found: string, at: number) => (!overlaps(spans, at, at + found.length) && rng.next() < 0.5 ? replacement : found));
  }
  // Dropped capitals at sentence starts ("I" stays: people drop it less than the rest; names stay).
  const spans = spansOf(out, context);
  out = out.replace(/(^\s*|[.!?]\s+)([A-Z])(?=[a-z])/g, (found: string, lead: string, letter: string, at: number) => (inSpan(spans, at + lead.length) ? found : `${lead}${letter.toLowerCase()}`));
  return kept(out === text ? lowerFirst(text, spansOf(text, context)) : out);
};

/** Sloppy punctuation outside protected spans: dropped commas, a dropped final stop or a doubled final ? or !, dropped apostrophes. */
export const punctuationFormat: Strategy = (text, context) => {
  const { rng } = context;
  const spans = spansOf(text, context);
  const drop = new Set<number>();
  let doubled = -1;
  if (rng.next() < 0.5) for (const match of text.matchAll(/,(?=\s)/g)) if (!inSpan(spans, match.index) && rng.next() < 0.6) drop.add(match.index);
  const final = /[.?!](?=\s*$)/.exec(text);
  if (final !== null && !inSpan(spans, final.index)) {
    if (/[?!]/.test(final[0]) && rng.next() < 0.4) doubled = final.index;
    else drop.add(final.index);
  }
  // An apostrophe glued to a protected token stays: "Anna's" without it would make "Annas".
  if (rng.next() < 0.3) for (const match of text.matchAll(/'/g)) if (![match.index - 1, match.index, match.index + 1].some((at) => inSpan(spans, at)) && rng.next() < 0.5) drop.add(match.index);
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    if (drop.has(i)) continue;
    out += i === doubled ? `${text[i] as string}${text[i] as string}` : (text[i] as string);
  }
  return kept(out);
};

/**
 * Spacing slips on unprotected words: a compound split where WordNet knows both halves ("database" →
 * "data base"), or else two short neighbouring words run together ("log in" → "login").
 */
export const wordSegmentation: Strategy = (text, context) => {
  const { rng, lexicon } = context;
  const parsed = wordsOf(text, spansOf(text, context));
  const { words } = parsed;
  const draft = draftOf(parsed);
  const candidates: Array<[number, number]> = [];
  words.forEach((word, index) => {
    if (word.locked || !/^[a-z]{8,}$/i.test(word.text)) return;
    // Halves of four letters or more: WordNet knows many three-letter oddities ("dat abase").
    for (let at = 4; at <= word.text.length - 4; at += 1) {
      if (lexicon.has(word.text.slice(0, at)) && lexicon.has(word.text.slice(at))) candidates.push([index, at]);
    }
  });
  if (candidates.length > 0) {
    const [index, at] = pick(rng, candidates);
    const word = draft.words[index] as string;
    draft.words.splice(index, 1, word.slice(0, at), word.slice(at));
    draft.gaps.splice(index + 1, 0, ' ');
    return kept(textOf(draft));
  }
  const pairs = words.flatMap((word, i) => {
    const next = words[i + 1];
    return next !== undefined && !word.locked && !next.locked && /^[a-z]{2,4}$/i.test(word.text) && isPlain(next.text) && /^[ \t]+$/.test(parsed.gaps[i + 1] ?? '') ? [i] : [];
  });
  if (pairs.length === 0) return kept(text);
  const i = pick(rng, pairs);
  draft.words[i] = `${draft.words[i] as string}${draft.words[i + 1] as string}`;
  removeWord(draft, i + 1);
  return kept(textOf(draft));
};

export const REQUEST_OPENERS = /^(\s*)(?:(?:hi|hello|hey)[,!]?\s+)?(?:can|could|would|will) you(?: please)?\s+|^(\s*)(?:please|i (?:want|need|would like) (?:you )?to|i'd like (?:you )?to)\s+/i;

/** Fragments: the request opener dropped ("Could you explain X?" → "explain X?") or an article skipped, or the text trails off. */
export const incompleteSentence: Strategy = (text, context) => {
  const { rng } = context;
  const spans = spansOf(text, context);
  const opener = REQUEST_OPENERS.exec(text);
  if (opener !== null && !overlaps(spans, opener.index, opener.index + opener[0].length) && rng.next() < 0.7) return kept(text.replace(REQUEST_OPENERS, '$1$2'));
  const parsed = wordsOf(text, spans);
  const articles = parsed.words.flatMap((word, i) => (!word.locked && /^(a|an|the)$/i.test(word.text) ? [i] : []));
  if (articles.length > 0) {
    const draft = draftOf(parsed);
    removeWord(draft, pick(rng, articles));
    return kept(textOf(draft));
  }
  // Nothing to drop: end without the final punctuation and trail off.
  const final = /[.?!]?(\s*)$/.exec(text) as RegExpExecArray;
  if (final[0].trim() !== '' && inSpan(spans, final.index)) return kept(text);
  return kept(`${text.slice(0, final.index)}...${final[1] ?? ''}`);
};

/** The text with `note` added at its end: after a comma, or as its own clause after a ? or !; a final full stop (not an ellipsis, not protected) goes. */
export function appendNote(text: string, note: string, spans: readonly Span[]): string {
  const body = text.trimEnd();
  if (body === '') return text;
  const bare = note.replace(/^[,.\s]+/, '');
  let joined: string;
  if (/[?!]$/.test(body)) joined = `${body} ${bare}`;
  else if (/(?<!\.)\.$/.test(body) && !inSpan(spans, body.length - 1)) joined = `${body.slice(0, -1)}${note}`;
  else joined = `${body}${note}`;
  return `${joined}${text.slice(body.length)}`;
}

/** Adds one of `suffixes` at the end (see appendNote). */
export const append =
  (suffixes: readonly string[]): Strategy =>
  (text, context) =>
    kept(appendNote(text, pick(context.rng, suffixes), spansOf(text, context)));

const ATTITUDES = {
  urgent: ['need this asap', 'kinda urgent', 'need this soon', 'quick one, in a rush'],
  polite: ['would really appreciate it', 'thanks in advance', "if you don't mind"],
  frustrated: ['ugh', 'this is driving me nuts', 'been stuck on this all day'],
} as const;

/** A short note of urgency, politeness or frustration, before or after the request. */
export const emotionalAttitude: Strategy = (text, context) => {
  const { rng } = context;
  const kind = pick(rng, Object.keys(ATTITUDES) as Array<keyof typeof ATTITUDES>);
  const note = pick(rng, ATTITUDES[kind]);
  const match = /^(\s*)([\s\S]*?)(\s*)$/.exec(text) as RegExpExecArray;
  const [, lead = '', body = '', trail = ''] = match;
  if (body === '') return kept(text);
  const spans = spansOf(text, context);
  if (rng.next() < 0.5) return kept(`${lead}${note}, ${lowerFirst(body, spans.map((s) => ({ start: s.start - lead.length, end: s.end - lead.length })))}${trail}`);
  return kept(appendNote(text, `, ${note}`, spans));
};

/** A brief real-life aside before the request. */
export const realLifeFragments: Strategy = (text, context) => {
  const prefix = pick(context.rng, ['quick question, ', 'on mobile so sorry for typos, ', 'before i forget, ']);
  const start = text.length - text.trimStart().length;
  const spans = spansOf(text, context).map((s) => ({ start: s.start - start, end: s.end - start }));
  return kept(`${prefix}${lowerFirst(text.trimStart(), spans)}`);
};

export const negativeExpression = append([", don't make it too formal", ', nothing too complicated', ', no jargon']);

