// The heavier layers by rule (incomplete information, ambiguity): offline stand-ins for what a model does
// better, used in rule mode and by `sim`. What they remove from the request they report as dropped.
import { pick } from '../rng.js';
import { quotedSpans } from './slots.js';
import { kept, spansOf, type Strategy } from './strategy.js';
import { REQUEST_OPENERS, append } from './surface.js';
import { draftOf, overlaps, textOf, wordsOf } from './words.js';

const PREPOSITIONS = /^(?:for|by|with|in|on|before|under|within|using|from|at|about)$/i;

/** A dropped phrase as the user would give it back: without the sentence's punctuation around it. */
const bare = (phrase: string): string => phrase.replace(/^[\s,;:]+|[\s.,;:!?]+$/g, '');

/**
 * Missing details: a trailing constraint ("by Friday", "for 10 people", "in Python") cut off, from an
 * unprotected preposition (the fourth word or later) to the end, when what it cuts holds a protected
 * token. Dropped: the phrases cut, one per preposition ("by email", "in Python").
 */
export const missingSlots: Strategy = (text, context) => {
  const { rng } = context;
  const parsed = wordsOf(text, spansOf(text, context));
  const { words } = parsed;
  const cuts = words.flatMap((word, i) => (i >= 3 && !word.locked && PREPOSITIONS.test(word.text) && words.slice(i + 1).some((w) => w.locked) ? [i] : []));
  if (cuts.length === 0) return kept(text);
  const cut = pick(rng, cuts);
  const removed = words.slice(cut);
  const end = /[?!.]$/.exec(words.at(-1)?.text ?? '')?.[0] ?? '';
  const draft = draftOf(parsed);
  draft.words.splice(cut);
  draft.gaps.splice(cut, draft.gaps.length - cut - 1);
  const out = textOf(draft).replace(/[,;:]?(\s*)$/, `${end}$1`);
  // One phrase per preposition, as the text had it: "by email in Python" gives "by email" and "in Python".
  const phrases: Array<{ start: number; end: number }> = [];
  for (const word of removed) {
    const end = word.start + word.text.length;
    const last = phrases.at(-1);
    if (last === undefined || PREPOSITIONS.test(word.text)) phrases.push({ start: word.start, end });
    else last.end = end;
  }
  return { text: out, dropped: phrases.map(({ start, end }) => bare(text.slice(start, end))).filter((phrase) => phrase !== '') };
};

const NUMBER = /^[$€£]?\d+(?:[.,]\d+)*[kK]?$/;
const YEAR = /^(?:19|20)\d\d$/;
/** Words a number after which is an identifier, not an amount. */
const NUMBERED = /^(?:grade|version|v|level|chapter|page|room|number|no|step|part|season|episode|gate|platform|route|python|ios|android)$/i;
const DATES = /\b(?:(?:by|on|before|until) )?(?:(?:next|this) )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b|\b(?:(?:by|before|until) )?(?:today|tomorrow|tonight|next week)\b/gi;

/**
 * Precise values made vague: amounts, counts and days outside quoted text ("for 4 people" → "for a few
 * people", "by Friday" → "soon"; a year, and a number that is part of a name, stay). When there is none, a vague wish is added instead.
 */
export const vagueSlotValues: Strategy = (text, context) => {
  const { rng } = context;
  const quoted = quotedSpans(text);
  const dropped: string[] = [];
  const out = text.replace(DATES, (found: string, at: number) => {
    if (overlaps(quoted, at, at + found.length)) return found;
    dropped.push(found);
    return pick(rng, ['soon', 'whenever', 'pretty quick']);
  });
  const parsed = wordsOf(out, quotedSpans(out));
  const draft = draftOf(parsed);
  parsed.words.forEach((word, i) => {
    if (word.locked) return;
    const match = /^([("'“]*)([$€£]?\d[\d.,]*[kK]?)([.,;:!?)"'”]*)$/u.exec(word.text);
    if (match === null) return;
    const [, before = '', value = '', after = ''] = match;
    // "3.5." ends a sentence: the value is "3.5".
    const trimmed = value.replace(/[.,]+$/, '');
    // A number that belongs to a name stays: "iPhone 15", "Windows 11", "grade 7", "page 3".
    const previous = parsed.words[i - 1]?.text ?? '';
    if (!NUMBER.test(trimmed) || YEAR.test(trimmed) || (/^\p{Lu}|\p{Ll}\p{Lu}/u.test(previous) && i > 0) || NUMBERED.test(previous)) return;
    dropped.push(trimmed);
    const vague = /^[$€£]/.test(trimmed) ? pick(rng, ['not too expensive', 'something affordable', 'a reasonable budget']) : pick(rng, ['a few', 'some', 'not too many', 'enough']);
    draft.words[i] = `${before}${vague}${value.slice(trimmed.length)}${after}`;
  });
  if (dropped.length === 0) return append([', not too long', ', detailed enough', ', nothing fancy'])(text, context);
  return { text: textOf(draft), dropped };
};

export const contextDependency = append([' like last time', ', the usual way', ', same as before', ' like we discussed']);
export const unclearPriority = append([', whatever you think is best', ', up to you', ', you decide', ', whatever works']);
export const multiIntent = append([' oh and also, can you suggest a good name for it?', ' btw, how long would that take?', " and while you're at it, what should I read next?"]);
export const selfContradiction = append([', keep it short but really detailed', ', simple but covering everything', ', quick but make it perfect']);
export const mindChanging = append(['... actually wait, make it simpler', '. scratch that, keep it brief', ', on second thought, go more formal']);

/** Core request made ambiguous: a vague verb phrase put before it ("help with this: ..."). */
export const intentAmbiguity: Strategy = (text, { rng }) => {
  const vague = pick(rng, ['help with this', 'deal with this', 'work on this', 'make it better']);
  const replaced = text.replace(REQUEST_OPENERS, (found) => `${found}${vague}: `);
  return kept(replaced !== text ? replaced : `${vague}: ${text.trimStart()}`);
};

