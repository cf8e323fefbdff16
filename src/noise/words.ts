// A text as words and the whitespace between them, each word knowing whether noise may touch it.

/** A span of the text that noise must leave as it is. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** A whitespace-delimited word: its text, where it starts, and whether it overlaps a protected span. */
export interface Word {
  readonly text: string;
  readonly start: number;
  readonly locked: boolean;
}

/** A text as words and gaps: gaps[i] precedes words[i]; gaps[words.length] is the trailing whitespace. */
export interface Words {
  readonly words: readonly Word[];
  readonly gaps: readonly string[];
}

/** Whether [start, end) overlaps one of the spans. */
export const overlaps = (spans: readonly Span[], start: number, end: number): boolean => spans.some((span) => span.start < end && start < span.end);

/** Whether position `at` (a boundary between two characters) falls strictly inside a span. */
export const insideSpan = (spans: readonly Span[], at: number): boolean => spans.some((span) => span.start < at && at < span.end);

/** Splits a text into words and gaps, marking the words that overlap a protected span. */
export function wordsOf(text: string, spans: readonly Span[]): Words {
  const words: Word[] = [];
  const gaps: string[] = [];
  let last = 0;
  for (const match of text.matchAll(/\S+/g)) {
    gaps.push(text.slice(last, match.index));
    words.push({ text: match[0], start: match.index, locked: overlaps(spans, match.index, match.index + match[0].length) });
    last = match.index + match[0].length;
  }
  gaps.push(text.slice(last));
  return { words, gaps };
}

/** Rebuilds a text from its gaps and (possibly edited) words of the same count. */
export function joinWords(words: readonly string[], gaps: readonly string[]): string {
  let out = gaps[0] ?? '';
  for (let i = 0; i < words.length; i += 1) out += `${words[i]}${gaps[i + 1] ?? ''}`;
  return out;
}

/** Words and gaps being edited: the same layout as Words, as plain strings. */
export interface Draft {
  readonly words: string[];
  readonly gaps: string[];
}

export const draftOf = ({ words, gaps }: Words): Draft => ({ words: words.map((word) => word.text), gaps: [...gaps] });

export const textOf = (draft: Draft): string => joinWords(draft.words, draft.gaps);

/**
 * Removes word `i` with the whitespace on one side of it: before it, unless it is the first word or only the
 * whitespace before it holds a line break (so "to\nthe station" loses "the" and keeps the line break).
 */
export function removeWord(draft: Draft, i: number): void {
  const before = draft.gaps[i] ?? '';
  const after = draft.gaps[i + 1] ?? '';
  const last = i === draft.words.length - 1;
  draft.words.splice(i, 1);
  draft.gaps.splice(i === 0 || (!last && before.includes('\n') && !after.includes('\n')) ? i + 1 : i, 1);
}

/** Inserts `word` before word `i` (after the whitespace that preceded it), followed by one space. */
export function insertWord(draft: Draft, i: number, word: string): void {
  draft.words.splice(i, 0, word);
  draft.gaps.splice(i + 1, 0, ' ');
}

/** A plain word: letters (and inner apostrophes or hyphens) only, no punctuation attached. */
export const isPlain = (word: string): boolean => /^\p{L}+(?:['’-]\p{L}+)*$/u.test(word);
