// Near-duplicate conversations: MinHash signatures of the user's turns, seeded, compared within a persona, the personas remembered bounded.
import { writeFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it, vi } from 'vitest';
import { NEAR_DUPLICATE, NearDuplicates, shingles, signature, similarityOf } from '../../src/judge/duplicates.js';
import type { Interaction } from '../../src/types.js';
import { JUDGED } from '../fixtures/judged-conversations.js';

/** What the judge operator signs: the user's turns after the opening, as the user meant them. */
const userTurns = (conversation: Interaction): string[] =>
  conversation.messages.filter((m, i) => m.role === 'user' && i > 0).map((m) => (typeof m.metadata.clean_version === 'string' ? m.metadata.clean_version : m.content));

const ALL = JUDGED.map((entry) => ({ id: entry.id, label: entry.label, turns: userTurns(entry.conversation) }));
const CLEAN = ALL.filter((entry) => entry.label === 'clean');
const words = (turns: readonly string[]): number => turns.join(' ').split(/\s+/).filter(Boolean).length;
/**
 * Conversations whose user wrote at least 60 words after the opening (9 in the corpus, whatever their
 * label: the signature reads only the words). Over every single-word edit of every corpus conversation,
 * none from 60 words up fell under NEAR_DUPLICATE; from 49 to 53 words 0 to 4 in 200 did; under 45
 * words most did (see the labelled pairs below).
 */
const LONG = ALL.filter(({ turns }) => words(turns) >= 60);
/** Clean conversations whose user wrote 10 to 40 words after the opening: the terse majority. */
const SHORT = CLEAN.filter(({ turns }) => words(turns) >= 10 && words(turns) <= 40);

/** The turns with word `word` of turn `turn` replaced (counting words of that turn, wrapping around). */
function edited(turns: readonly string[], turn: number, word: number, replacement: string): string[] {
  return turns.map((text, i) => {
    if (i !== turn % turns.length) return text;
    const parts = text.split(' ');
    parts[word % parts.length] = replacement;
    return parts.join(' ');
  });
}

describe('shingles', () => {
  it('are the word 3-grams of each turn, lower-cased, punctuation aside; word 1-grams for a turn under three words', () => {
    expect(shingles(['one two three four'])).toHaveLength(2);
    expect(shingles(['ok thanks'])).toHaveLength(2);
    expect(shingles(['Hello, World... how ARE you?'])).toEqual(shingles(['hello world how are you']));
    // Within a turn: no 3-gram spans two turns.
    expect(new Set(shingles(['a b c', 'd e f']))).toEqual(new Set([...shingles(['a b c']), ...shingles(['d e f'])]));
    expect(shingles(['', '  ', '!!!'])).toEqual([]);
  });

  test.prop([fc.array(fc.string({ unit: 'grapheme', maxLength: 60 }), { maxLength: 6 })])('are distinct numbers in [0, 2^26)', (texts) => {
    const values = shingles(texts);
    expect(new Set(values).size).toBe(values.length);
    for (const value of values) expect(Number.isInteger(value) && value >= 0 && value < 2 ** 26).toBe(true);
  });
});

describe('signature and similarityOf', () => {
  it('gives the same user turns similarity 1, and NearDuplicates flags the second conversation', () => {
    for (const { turns } of CLEAN.filter((c) => c.turns.length > 0)) {
      expect(similarityOf(signature(turns), signature([...turns]))).toBe(1);
      const seen = new NearDuplicates();
      expect(seen.check('p', 'first', turns)).toBeUndefined();
      expect(seen.check('p', 'second', turns)).toEqual({ of: 'first', similarity: 1 });
    }
  });

  it('does not flag unrelated conversations: no two clean conversations of the corpus are near-duplicates', () => {
    const signed = CLEAN.filter((c) => c.turns.length > 0).map((c) => ({ ...c, signature: signature(c.turns) }));
    let highest = 0;
    for (const [i, a] of signed.entries()) for (const b of signed.slice(i + 1)) highest = Math.max(highest, similarityOf(a.signature, b.signature));
    expect(highest).toBeLessThan(NEAR_DUPLICATE);
    // Different topics share almost no 3-grams.
    expect(highest).toBeLessThan(0.2);
  });

  test.prop([fc.constantFrom(...LONG), fc.nat(), fc.nat(), fc.constantFrom('zebra', 'quantum', 'Tuesday', 'marmalade', '42')])(
    'still flags a long conversation with one word changed',
    ({ turns }, turn, word, replacement) => {
      const edit = edited(turns, turn, word, replacement);
      expect(similarityOf(signature(turns), signature(edit))).toBeGreaterThanOrEqual(NEAR_DUPLICATE);
      const seen = new NearDuplicates();
      seen.check('p', 'original', turns);
      expect(seen.check('p', 'edited', edit)?.of).toBe('original');
    },
  );

  it('gives 0 when either conversation has no words (a user who stopped after the first answer), never a near-duplicate', () => {
    expect(similarityOf(signature([]), signature([]))).toBe(0);
    expect(similarityOf(signature(['...']), signature(['ok thanks']))).toBe(0);
    const seen = new NearDuplicates();
    expect(seen.check('p', 'a', [])).toBeUndefined();
    expect(seen.check('p', 'b', [])).toBeUndefined();
  });
});

describe('signatures are the same in every process', () => {
  const turns = ['does it stream or collect everything', 'group count is about 40M keys though'];

  it('draws the hash functions from a fixed seed: the first values are pinned', () => {
    // Computed when this test was written, in another process: a Math.random draw would not match.
    expect(signature(turns)._signature.slice(0, 6)).toMatchInlineSnapshot(`
      [
        14581358,
        955456,
        509430,
        2124599,
        29666490,
        12295617,
      ]
    `);
  });

  it('never calls Math.random: a fresh copy of the module, loaded with Math.random throwing, signs alike', async () => {
    const before = signature(turns)._signature;
    vi.resetModules();
    const random = vi.spyOn(Math, 'random').mockImplementation(() => {
      throw new Error('Math.random called');
    });
    const fresh = await import('../../src/judge/duplicates.js');
    const again = fresh.signature(turns);
    expect(random).not.toHaveBeenCalled();
    expect(again._signature).toEqual(before);
    expect(fresh.similarityOf(again, signature(turns))).toBe(1);
  });
});

describe('NearDuplicates', () => {
  const [a, b, c] = LONG.map((conversation) => conversation.turns) as [string[], string[], string[]];

  it('compares within a persona only, names the closest earlier conversation, and remembers flagged ones too', () => {
    const seen = new NearDuplicates();
    expect(seen.check('p1', 'a', a)).toBeUndefined();
    expect(seen.check('p2', 'a-elsewhere', a)).toBeUndefined();
    expect(seen.check('p1', 'b', b)).toBeUndefined();
    const light = edited(a, 0, 1, 'zebra');
    expect(seen.check('p1', 'a-edited', light)).toMatchObject({ of: 'a' });
    // Both 'a' and 'a-edited' are remembered: the exact copy of 'a-edited' is closest to it.
    expect(seen.check('p1', 'a-edited-again', light)).toEqual({ of: 'a-edited', similarity: 1 });
  });

  it('forgets the least recently seen persona beyond its limit, and a persona seen again counts as recent', () => {
    const seen = new NearDuplicates(2);
    seen.check('p1', 'a', a);
    seen.check('p2', 'b', b);
    seen.check('p3', 'c', c);
    // p1 was evicted: its conversation is no longer known.
    expect(seen.check('p1', 'a-again', a)).toBeUndefined();
    // p1 coming back evicted p2; p3, seen again, becomes the most recent.
    expect(seen.check('p3', 'c-again', c)).toMatchObject({ of: 'c' });
    expect(seen.check('p2', 'b-again', b)).toBeUndefined();
    // p2 coming back evicted p1, not the refreshed p3.
    expect(seen.check('p3', 'c-third', c)).toMatchObject({ of: 'c' });
    expect(seen.check('p1', 'a-third', a)).toBeUndefined();
  });

  it('keeps 4096 personas by default', () => {
    expect(new NearDuplicates().personas).toBe(4096);
  });
});

// ---------------------------------------------------------------------------------------------------------
// A labelled set of pairs: what should and should not be called a near-duplicate
// ---------------------------------------------------------------------------------------------------------

interface Pair {
  readonly id: string;
  readonly duplicate: boolean;
  readonly left: readonly string[];
  readonly right: readonly string[];
}

function labelledPairs(): Pair[] {
  const pairs: Pair[] = [];
  const long = LONG;
  for (const [i, { id, turns }] of long.entries()) {
    pairs.push({ id: `same/${id}`, duplicate: true, left: turns, right: [...turns] });
    pairs.push({ id: `one-word/${id}`, duplicate: true, left: turns, right: edited(turns, i, 3 + i, 'marmalade') });
    pairs.push({ id: `case-and-punctuation/${id}`, duplicate: true, left: turns, right: turns.map((t) => `${t.toUpperCase().replace(/[.,!?]/g, '')}!`) });
    pairs.push({ id: `reordered/${id}`, duplicate: true, left: turns, right: [...turns].reverse() });
    pairs.push({ id: `closing-added/${id}`, duplicate: true, left: turns, right: [...turns, 'ok thanks'] });
  }
  // The first turns kept, about half the words, the rest another conversation's: not the same conversation.
  // (Built first by turns, half of them kept: where one turn held most of the words that kept nearly the
  // whole conversation, and the three such pairs flagged were, to a reader, near-duplicates: mislabelled.)
  const spread = [...LONG, ...SHORT];
  for (const [i, { id, turns }] of spread.entries()) {
    const kept = turns.findIndex((_turn, k) => words(turns.slice(0, k + 1)) >= 0.4 * words(turns));
    if (words(turns.slice(0, kept + 1)) > 0.6 * words(turns) || kept === turns.length - 1) continue;
    const other = (spread[(i + 1) % spread.length] as { turns: string[] }).turns;
    pairs.push({ id: `half-shared/${id}`, duplicate: false, left: turns, right: [...turns.slice(0, kept + 1), ...other.slice(Math.floor(other.length / 2))] });
  }
  // A word changed in a short conversation: still nearly the same conversation to a reader.
  for (const { id, turns } of SHORT) {
    const middle = Math.floor(turns.length / 2);
    pairs.push({ id: `one-word-short/${id}`, duplicate: true, left: turns, right: edited(turns, middle, Math.floor((turns[middle] ?? '').split(' ').length / 2), 'marmalade') });
  }
  for (const [i, left] of CLEAN.entries()) {
    const right = CLEAN[(i + 1) % CLEAN.length] as (typeof CLEAN)[number];
    pairs.push({ id: `unrelated/${left.id}~${right.id}`, duplicate: false, left: left.turns, right: right.turns });
  }
  // The same request followed up in other words: a different conversation, not a copy.
  const reworded: [string[], string[]][] = [
    [['polars scan_csv + group_by, does it stream or collect everything', 'group count ~40M keys tho'], ['does chunksize work with a group by', 'memory still blows up after 8 chunks']],
    [['how fast should the easy runs be', 'knee twinges after long runs, worry?'], ['what pace for the slow runs', 'my knee hurts a bit after the long ones, is that bad']],
    [["she's feeding fine and happy during the day. how long does this usually last", "ok. should i stop feeding her when she wakes, my mom says i'm creating a habit"], ['she eats well in the day, how many weeks until it ends', 'is it bad to feed her every time she wakes up at night']],
  ];
  for (const [n, [left, right]] of reworded.entries()) pairs.push({ id: `reworded/${n}`, duplicate: false, left, right });
  return pairs;
}

function pairReport(pairs: readonly Pair[]) {
  const judged = pairs.map((pair) => ({ ...pair, similarity: similarityOf(signature(pair.left), signature(pair.right)) }));
  const flagged = judged.filter((pair) => pair.similarity >= NEAR_DUPLICATE);
  const truePositives = flagged.filter((pair) => pair.duplicate).length;
  const duplicates = judged.filter((pair) => pair.duplicate).length;
  return {
    pairs: judged.length,
    duplicates,
    precision: flagged.length === 0 ? 1 : truePositives / flagged.length,
    recall: truePositives / duplicates,
    falsePositives: flagged.filter((pair) => !pair.duplicate).map((pair) => `${pair.id} (${pair.similarity.toFixed(2)})`),
    misses: judged.filter((pair) => pair.duplicate && pair.similarity < NEAR_DUPLICATE).map((pair) => `${pair.id} (${pair.similarity.toFixed(2)})`),
    lowestDuplicate: Math.min(...judged.filter((pair) => pair.duplicate).map((pair) => pair.similarity)),
    highestOther: Math.max(...judged.filter((pair) => !pair.duplicate).map((pair) => pair.similarity)),
  };
}

describe('near-duplicates on a labelled set of pairs', () => {
  const pairs = labelledPairs();
  const report = pairReport(pairs);

  /**
   * Measured: of 66 duplicate pairs, the 45 built from long conversations are all found (copies, one word
   * changed, case and punctuation, turns reordered, a closing added), but of the 21 short conversations
   * (10 to 40 words after the opening) with one word changed only 6 are: with word 3-grams a changed word
   * takes 3 of some 20 shingles away and adds 3, so even the true similarity is under 0.8 (estimates
   * 0.46 to 0.75). Recall 51/66 = 0.77. None of the 43 other pairs is flagged (precision 1; the highest,
   * a conversation's first half of words shared, at 0.63).
   */
  it('flags no pair that is not a near-duplicate, finds every one built from a long conversation, and 77% in all', () => {
    expect(report.duplicates).toBeGreaterThanOrEqual(60);
    expect(report.pairs - report.duplicates).toBeGreaterThanOrEqual(30);
    expect(report.precision, report.falsePositives.join(', ')).toBe(1);
    expect(report.recall, report.misses.join(', ')).toBeGreaterThanOrEqual(51 / 66);
    expect(pairReport(pairs.filter((pair) => !pair.id.startsWith('one-word-short/'))).recall).toBe(1);
  });
});

/** `DUPLICATE_REPORT=file.md npx vitest run test/judge/duplicates.test.ts` writes precision and recall on the labelled pairs to that file. */
describe.runIf(process.env.DUPLICATE_REPORT !== undefined)('the report', () => {
  it('writes precision and recall on the labelled pairs', () => {
    const report = pairReport(labelledPairs());
    const lines = [
      `### near-duplicates (similarity >= ${NEAR_DUPLICATE}): ${report.duplicates} duplicate pairs, ${report.pairs - report.duplicates} others`,
      '',
      `Precision ${report.precision.toFixed(2)}, recall ${report.recall.toFixed(2)}; lowest similarity of a duplicate ${report.lowestDuplicate.toFixed(2)}, highest of another pair ${report.highestOther.toFixed(2)}.`,
      `Missed: ${report.misses.length === 0 ? 'none' : report.misses.join(', ')}. Flagged wrongly: ${report.falsePositives.length === 0 ? 'none' : report.falsePositives.join(', ')}.`,
      '',
    ];
    writeFileSync(process.env.DUPLICATE_REPORT as string, lines.join('\n'));
    expect(lines.length).toBeGreaterThan(0);
  });
});
