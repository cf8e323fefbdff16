// What noise must keep: the slots of a text (quoted text, code and paths, numbers, dates, names, key terms), found by patterns and wink-nlp's tagger.
import { createRequire } from 'node:module';
import type { ItemEntity, ItsFunction, WinkMethods } from 'wink-nlp';
import { wordNet, type Lexicon } from './lexicon.js';

/** Why a span is protected. */
export type SlotKind = 'quote' | 'code' | 'number' | 'date' | 'name' | 'term';

/** A protected span of a text: `text.slice(start, end)`. */
export interface Slot {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly kind: SlotKind;
}

// ---------------------------------------------------------------------------------------------------------
// Patterns: what needs no tagger.

/** Quoted text, whole: code fences, inline code, double quotes (straight or curly), single quotes at word edges. */
const QUOTES = /```[\s\S]*?```|`[^`\n]+`|"[^"\n]{1,300}"|“[^”\n]{1,300}”|(?<![\p{L}\p{N}])'(?=\S)[^'\n]{1,300}(?<=\S)'(?![\p{L}\p{N}])|(?<![\p{L}\p{N}])‘(?=\S)[^’\n]{1,300}(?<=\S)’(?![\p{L}\p{N}])/gu;
const URL_OR_EMAIL = /\b(?:https?:\/\/|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g;
/** Leading and trailing characters that are punctuation of the sentence, not of the token. */
const LEADING = /^[(["'“‘¿¡]+/u;
const TRAILING = /[.,;:!?"'”’\]]+$/u;
/** Signs of code, a path, a flag or a formula inside a token. */
const CODE_SIGNS = /[/\\_=<>{}[\]|@#~*+^`]|^--?\p{L}|^\.\p{L}|\p{L}\.\p{L}|\(.*\)/u;
const CAMEL = /\p{Ll}\p{Lu}/u;
const ACRONYM = /^\p{Lu}{2,}s?$/u;

/** A token's core without the sentence's punctuation around it; a closing parenthesis stays when it closes one in the token. */
function core(token: string): { readonly offset: number; readonly text: string } {
  const lead = LEADING.exec(token)?.[0].length ?? 0;
  let body = token.slice(lead);
  const trail = TRAILING.exec(body)?.[0] ?? '';
  body = body.slice(0, body.length - trail.length);
  // "401(k))." keeps "401(k)"; "(see docs)" loses the parenthesis it did not open.
  while (body.endsWith(')') && (body.match(/\(/g) ?? []).length < (body.match(/\)/g) ?? []).length) body = body.slice(0, -1);
  return { offset: lead, text: body };
}

/** The quoted parts of a text (code fences, inline code, quotes): their words are the user's own, to be kept whole. */
export const quotedSpans = (text: string): Array<{ start: number; end: number }> => [...text.matchAll(QUOTES)].map((match) => ({ start: match.index, end: match.index + match[0].length }));

function patternSlots(text: string): Slot[] {
  const slots: Slot[] = [];
  for (const match of text.matchAll(QUOTES)) slots.push({ start: match.index, end: match.index + match[0].length, text: match[0], kind: 'quote' });
  for (const match of text.matchAll(URL_OR_EMAIL)) {
    const { text: body } = core(match[0]);
    slots.push({ start: match.index, end: match.index + body.length, text: body, kind: 'code' });
  }
  for (const match of text.matchAll(/\S+/g)) {
    const { offset, text: body } = core(match[0]);
    if (body === '') continue;
    const kind: SlotKind | undefined = /\p{N}/u.test(body) ? 'number' : CODE_SIGNS.test(body) ? 'code' : CAMEL.test(body) || ACRONYM.test(body) ? 'name' : undefined;
    if (kind !== undefined) slots.push({ start: match.index + offset, end: match.index + offset + body.length, text: body, kind });
  }
  return slots;
}

// ---------------------------------------------------------------------------------------------------------
// The tagger: names, key terms and dates.

/** Nouns too general to be a detail of a request: a slip on them changes nothing anyone asked for. */
const GENERIC_NOUNS = new Set(['thing', 'things', 'way', 'ways', 'stuff', 'lot', 'lots', 'bit', 'question', 'questions', 'help', 'idea', 'ideas', 'something', 'anything', 'everything', 'nothing', 'someone', 'anyone', 'everyone', 'kind', 'sort', 'please', 'thanks']);
/** Chat spellings WordNet does not know and that name nothing. */
const CHAT = new Set(['pls', 'plz', 'thx', 'gonna', 'wanna', 'gotta', 'kinda', 'sorta', 'cuz', 'coz', 'tbh', 'btw', 'imo', 'idk', 'lol', 'hey', 'hmm', 'umm', 'ugh', 'okay', 'asap', 'yeah', 'yep', 'nope', 'dunno', 'lemme', 'gimme', 'ppl', 'msg', 'info']);
/** Words that are code whatever the tagger says. */
const CODE_WORDS = new Set(['undefined', 'null', 'NaN', 'nil', 'None', 'stdin', 'stdout', 'stderr']);
const POSSESSIVES = new Set(['my', 'your', 'his', 'her', 'its', 'our', 'their']);
/** wink's entity types that are values a request depends on. */
const VALUE_ENTITIES = new Set(['DATE', 'TIME', 'DURATION', 'MONEY', 'PERCENT', 'CARDINAL', 'ORDINAL']);

interface Tagged {
  readonly start: number;
  readonly end: number;
  readonly value: string;
  readonly pos: string;
  readonly lemma: string;
  readonly stop: boolean;
}

let nlp: WinkMethods | undefined;

/**
 * wink-nlp with its English "lite web" model (POS tags, named entities, lemmas): loaded on first use, so a
 * run without noise never pays its ~0.3 s and ~40 MB. Loaded with require: both are CommonJS packages,
 * kept out of the CLI bundle (scripts/bundle.js) so that it does not parse the model at every start.
 */
function tagger(): WinkMethods {
  if (nlp === undefined) {
    const require = createRequire(import.meta.url);
    const winkNLP = require('wink-nlp') as (model: unknown, pipe?: string[]) => WinkMethods;
    nlp = winkNLP(require('wink-eng-lite-web-model'), ['sbd', 'pos', 'ner']);
  }
  return nlp;
}

/** The tagger's tokens with their offsets in `text` (wink gives values and the spaces before them). */
function tag(text: string): { tokens: Tagged[]; entities: Array<{ first: number; last: number; type: string }> } {
  const wink = tagger();
  // wink's `its` functions are plain functions it calls with the token; typed here as what `out` needs.
  const its = wink.its as unknown as Readonly<Record<'value' | 'pos' | 'lemma' | 'stopWordFlag' | 'span' | 'detail', ItsFunction<unknown>>>;
  const doc = wink.readDoc(text);
  const values = doc.tokens().out(its.value) as string[];
  const pos = doc.tokens().out(its.pos) as string[];
  const lemmas = doc.tokens().out(its.lemma) as string[];
  const stops = doc.tokens().out(its.stopWordFlag) as boolean[];
  const tokens: Tagged[] = [];
  const index: number[] = [];
  let cursor = 0;
  values.forEach((value, i) => {
    const start = text.indexOf(value, cursor);
    index.push(start < 0 ? -1 : tokens.length);
    if (start < 0) return;
    tokens.push({ start, end: start + value.length, value, pos: pos[i] ?? 'X', lemma: lemmas[i] ?? value.toLowerCase(), stop: stops[i] === true });
    cursor = start + value.length;
  });
  const entities: Array<{ first: number; last: number; type: string }> = [];
  doc.entities().each((entity: ItemEntity) => {
    const [first, last] = entity.out<unknown>(its.span) as [number, number];
    const { type } = entity.out<unknown>(its.detail) as { type: string };
    const a = index[first] ?? -1;
    const b = index[last] ?? -1;
    if (a >= 0 && b >= 0) entities.push({ first: a, last: b, type });
  });
  return { tokens, entities };
}

/** Whether the token starts a sentence: nothing but whitespace, quotes or brackets since the text's start, a stop, a colon or a line break. */
const startsSentence = (text: string, at: number): boolean => /(?:^|[.?!:;\n])[\s"'“‘([]*$/u.test(text.slice(Math.max(0, at - 12), at));

function taggedSlots(text: string, lexicon: Lexicon): Slot[] {
  const { tokens, entities } = tag(text);
  const slots: Slot[] = [];
  const add = (from: Tagged, to: Tagged, kind: SlotKind): void => {
    slots.push({ start: from.start, end: to.end, text: text.slice(from.start, to.end), kind });
  };
  // The tags, with two slips of the tagger mended. A "verb" inside a noun phrase opened by a determiner or a
  // possessive is a noun ("a CSV file", "the last commit"); a capitalised first word followed by a
  // determiner is an imperative verb, not a name ("Plan a trip", "Draft an email").
  const tags: string[] = [];
  let inPhrase = false;
  tokens.forEach((token, i) => {
    const lower = token.value.toLowerCase();
    let pos = token.pos;
    if (pos === 'VERB' && inPhrase) pos = 'NOUN';
    const next = tokens[i + 1];
    if ((pos === 'PROPN' || pos === 'NOUN') && startsSentence(text, token.start) && next !== undefined && (next.pos === 'DET' || POSSESSIVES.has(next.value.toLowerCase()))) pos = 'VERB';
    inPhrase = pos === 'DET' || POSSESSIVES.has(lower) || (inPhrase && ['ADJ', 'ADV', 'NOUN', 'PROPN', 'NUM'].includes(pos));
    tags.push(pos);
  });
  tokens.forEach((token, i) => {
    const lower = token.value.toLowerCase();
    const pos = tags[i] as string;
    if (CODE_WORDS.has(token.value)) return add(token, token, 'code');
    if (!/^[\p{L}][\p{L}'’-]*$/u.test(token.value) || lower.length < 2 || CHAT.has(lower) || /^i(?:['’]\p{L}+)?$/u.test(lower)) return;
    // An adjective before a noun is part of the thing asked about ("virtual environment", "slow query").
    const beforeNoun = pos === 'ADJ' && tags.slice(i + 1).find((t) => t !== 'ADJ') !== undefined && ['NOUN', 'PROPN'].includes(tags.slice(i + 1).find((t) => t !== 'ADJ') as string);
    if (pos === 'PROPN') add(token, token, 'name');
    else if (/^\p{Lu}/u.test(token.value) && !startsSentence(text, token.start)) add(token, token, 'name');
    else if ((pos === 'NOUN' && !GENERIC_NOUNS.has(lower)) || beforeNoun) add(token, token, 'term');
    else if (pos === 'NUM') add(token, token, 'number');
    else if (['ADJ', 'VERB', 'ADV', 'X'].includes(pos) && !token.stop && lower.length >= 3 && !/['’]/.test(lower) && !lexicon.has(token.lemma) && !lexicon.has(lower)) add(token, token, 'term');
  });
  for (const entity of entities) {
    if (!VALUE_ENTITIES.has(entity.type)) continue;
    let first = entity.first;
    // "by March", "on the 2nd": the preposition or article is not the value.
    while (first < entity.last && ['ADP', 'DET'].includes(tokens[first]?.pos ?? '')) first += 1;
    const from = tokens[first];
    const to = tokens[entity.last];
    if (from !== undefined && to !== undefined) add(from, to, ['CARDINAL', 'ORDINAL', 'MONEY', 'PERCENT'].includes(entity.type) ? 'number' : 'date');
  }
  return slots;
}

// ---------------------------------------------------------------------------------------------------------

let sharedLexicon: Lexicon | undefined;
const defaultLexicon = (): Lexicon => (sharedLexicon ??= wordNet());

/** Overlapping spans merged into one (the kind of the first, in order of position). */
function merged(slots: readonly Slot[], text: string): Slot[] {
  const sorted = [...slots].sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Slot[] = [];
  for (const slot of sorted) {
    const last = out.at(-1);
    if (last !== undefined && slot.start < last.end) {
      if (slot.end > last.end) out[out.length - 1] = { ...last, end: slot.end, text: text.slice(last.start, slot.end) };
    } else out.push(slot);
  }
  return out;
}

/**
 * The slots of a text, in order and without overlaps: what every noise strategy keeps verbatim, and what a
 * semantic rewrite must keep (or report as dropped). Found by patterns (quoted text and code, URLs and
 * e-mail addresses, tokens with a digit, a path or code sign, camelCase, acronyms) and by wink-nlp's tagger
 * (proper nouns, capitalised words inside a sentence, nouns other than a few general ones, numbers in words,
 * dates and times, and words WordNet does not know, which are names and jargon: "postgresql", "kubectl").
 *
 * @example
 * findSlots('How do I dedupe a CSV by email in Python?').map((s) => s.text) // ['CSV', 'email', 'Python']
 */
export function findSlots(text: string, lexicon: Lexicon = defaultLexicon()): Slot[] {
  if (text.trim() === '') return [];
  return merged([...patternSlots(text), ...taggedSlots(text, lexicon)], text);
}

/** The distinct texts of a text's slots: what must survive noise. */
export function protectedTokens(text: string, lexicon?: Lexicon): string[] {
  return [...new Set(findSlots(text, lexicon).map((slot) => slot.text))];
}

const WORDISH = /[\p{L}\p{N}]/u;

/** Straight quotes and apostrophes for curly ones: a model writing “ for " keeps the quote. */
const straight = (text: string): string => text.replace(/[“”]/g, '"').replace(/[‘’]/g, "'");

/**
 * Where `token` occurs in `text` as a whole: not glued to a letter or digit on a side where the token itself
 * starts or ends with one ("4" is not in "14", "app" not in "apple"). `caseless` also ignores case and the
 * difference between curly and straight quotes.
 */
export function occurrences(text: string, token: string, caseless = false): Array<{ start: number; end: number }> {
  if (token === '') return [];
  const haystack = caseless ? straight(text).toLowerCase() : text;
  const needle = caseless ? straight(token).toLowerCase() : token;
  const edgeStart = WORDISH.test(needle[0] ?? '');
  const edgeEnd = WORDISH.test(needle.at(-1) ?? '');
  const found: Array<{ start: number; end: number }> = [];
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) {
    const before = haystack[at - 1] ?? '';
    const after = haystack[at + needle.length] ?? '';
    if ((edgeStart && WORDISH.test(before)) || (edgeEnd && WORDISH.test(after))) continue;
    found.push({ start: at, end: at + needle.length });
  }
  return found;
}

/** Whether `text` holds `token` whole (see `occurrences`). */
export const holds = (text: string, token: string, caseless = false): boolean => occurrences(text, token, caseless).length > 0;

/**
 * The protected spans of `text` when the tokens to keep are already known (from the clean text the noise
 * started from): every whole occurrence of each, and the pattern slots of `text` itself. No tagger call:
 * strategies run this on every intermediate text.
 */
export function keptSpans(text: string, keep: readonly string[]): Array<{ start: number; end: number }> {
  const spans = patternSlots(text).map(({ start, end }) => ({ start, end }));
  for (const token of keep) spans.push(...occurrences(text, token));
  return spans.sort((a, b) => a.start - b.start);
}
