// The quality report of an export (statistics.json's `quality`): diversity of the simulated user, near-duplicates, endings, guards, turn lengths by persona feature, the judge's scores and verdicts.
import { NEAR_DUPLICATE, NearDuplicates } from '../judge/duplicates.js';
import { DistinctCounter, STANDARD_ERROR, wordsOf } from './distinct.js';
import { qualityOf, scoresOf } from './quality.js';
import { featuresOf, type InteractionInput } from './samples.js';

/** Distinct labels kept per count (end reasons, guard reasons, verdict reasons, tags); the rest count as `(other)`. */
export const MAX_LABELS = 100;
/** Persona feature keys whose turn lengths are reported; further keys are left out (`feature_keys_left_out`). */
export const MAX_FEATURE_KEYS = 50;
/** Values per feature key whose turn lengths are reported; the rest are pooled as `(other)`. */
export const MAX_FEATURE_VALUES = 50;
/** Turn lengths are kept as a histogram up to this many words; a longer turn counts as this many in p50/p90 (not in the mean). */
export const MAX_WORDS = 256;
/** Personas whose conversations' signatures are kept for the near-duplicate rate (the most recently seen). */
export const NEAR_DUPLICATE_PERSONAS = 1024;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const round = (value: number): number => Number(value.toFixed(4));
const OTHER = '(other)';

/** Counts by label, at most `cap` labels; later new labels count under `(other)`. Map-backed, so any string is a label. */
class Tally {
  readonly #counts = new Map<string, number>();
  constructor(readonly cap: number) {}

  add(label: string, by = 1): void {
    const key = this.#counts.has(label) || this.#counts.size < this.cap ? label : OTHER;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + by);
  }

  /** Largest count first, then by label. */
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)));
  }
}

/** Turn lengths in words: the count and sum exactly, quantiles from a histogram capped at MAX_WORDS. */
class Lengths {
  turns = 0;
  #words = 0;
  readonly #histogram = new Uint32Array(MAX_WORDS + 1);

  add(words: number): void {
    this.turns += 1;
    this.#words += words;
    const bucket = Math.min(words, MAX_WORDS);
    this.#histogram[bucket] = (this.#histogram[bucket] as number) + 1;
  }

  /** Nearest rank: the smallest length with at least `p` of the turns at or below it. */
  #quantile(p: number): number {
    const rank = Math.max(1, Math.ceil(p * this.turns));
    let seen = 0;
    for (let words = 0; words <= MAX_WORDS; words += 1) {
      seen += this.#histogram[words] as number;
      if (seen >= rank) return words;
    }
    return MAX_WORDS;
  }

  toJSON(): LengthsJSON {
    if (this.turns === 0) return { turns: 0, mean: 0, p50: 0, p90: 0 };
    return { turns: this.turns, mean: round(this.#words / this.turns), p50: this.#quantile(0.5), p90: this.#quantile(0.9) };
  }
}

export interface LengthsJSON {
  readonly turns: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
}

export interface DistinctJSON {
  /** Distinct n-grams (an estimate when `estimated`). */
  readonly unique: number;
  /** n-grams in all. */
  readonly total: number;
  /** unique / total: distinct-n. */
  readonly ratio: number;
  readonly estimated: boolean;
}

export interface QualityReportJSON {
  /** Simulated user turns read: every user message after the first, as the user meant it. */
  readonly user_turns: number;
  readonly distinct_1: DistinctJSON;
  readonly distinct_2: DistinctJSON;
  /** Standard error of an estimated distinct count. */
  readonly distinct_standard_error: number;
  readonly near_duplicates: { readonly compared: number; readonly near_duplicates: number; readonly rate: number; readonly threshold: number };
  readonly end_reasons: Record<string, number>;
  readonly guard_rejections: { readonly conversations: number; readonly rejections: number; readonly by_reason: Record<string, number> };
  readonly user_turn_words: LengthsJSON & { readonly by_feature: Record<string, Record<string, LengthsJSON>>; readonly feature_keys_left_out: boolean };
  readonly judge: {
    readonly verdicts: { readonly accept: number; readonly reject: number; readonly not_judged: number; readonly unreadable: number };
    readonly reviewed: number;
    readonly reasons: Record<string, number>;
    readonly tags: Record<string, number>;
    readonly scores: Record<string, Record<'0' | '1' | '2' | '3' | '4', number>>;
    readonly rubric_versions: Record<string, number>;
    readonly accepted_per_persona: Record<string, number>;
  };
}

/**
 * The simulated user's turns: every user message after the first, as the user meant it
 * (`metadata.clean_version`, else the text). The opening message is the dataset's query (or style
 * transfer's rewrite of it), not the simulator's, so it is left out, as the judge's checks and
 * near-duplicate signatures leave it out.
 */
export function simulatedUserTurns(interaction: InteractionInput): string[] {
  const turns: string[] = [];
  let opening = true;
  for (const message of interaction.messages) {
    if (message.role !== 'user') continue;
    if (opening) {
      opening = false;
      continue;
    }
    const clean = message.metadata?.clean_version;
    turns.push(typeof clean === 'string' ? clean : message.content);
  }
  return turns;
}

const featureValue = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

/**
 * Running quality figures of the exported conversations; `add` one at a time. Memory is bounded by the
 * caps above whatever the input's size (distinct-n: at most ~5 MB a counter, then 16 KB; turn lengths:
 * 1 KB per feature value reported, at most 50 × 51 of them), except for two per-persona structures: the
 * accepted count of every persona with a judged conversation (a Map entry, ~100 bytes a persona), and the
 * near-duplicate signatures (~4.5 KB per conversation, of the NEAR_DUPLICATE_PERSONAS most recently seen
 * personas only: input grouped by persona, as generate writes it, is compared in full).
 */
export class QualityReport {
  #userTurns = 0;
  readonly #unigrams = new DistinctCounter();
  readonly #bigrams = new DistinctCounter();
  readonly #duplicates = new NearDuplicates(NEAR_DUPLICATE_PERSONAS);
  #compared = 0;
  #nearDuplicates = 0;
  readonly #endReasons = new Tally(MAX_LABELS);
  #guarded = 0;
  #rejections = 0;
  readonly #guardReasons = new Tally(MAX_LABELS);
  readonly #lengths = new Lengths();
  readonly #byFeature = new Map<string, Map<string, Lengths>>();
  #keysLeftOut = false;
  readonly #verdicts = { accept: 0, reject: 0, not_judged: 0, unreadable: 0 };
  #reviewed = 0;
  readonly #reasons = new Tally(MAX_LABELS);
  readonly #tags = new Tally(MAX_LABELS);
  readonly #scores = new Map<string, number[]>();
  readonly #rubrics = new Tally(MAX_LABELS);
  readonly #accepted = new Map<string, number>();

  add(interaction: InteractionInput): void {
    const turns = simulatedUserTurns(interaction);
    const features = Object.entries(featuresOf(interaction))
      .filter(([, value]) => value !== undefined && value !== null)
      .map(([key, value]): [string, string] => [key, featureValue(value)]);
    let words = 0;
    for (const turn of turns) {
      const tokens = wordsOf(turn);
      words += tokens.length;
      this.#userTurns += 1;
      for (let i = 0; i < tokens.length; i += 1) {
        this.#unigrams.add(tokens[i] as string);
        if (i > 0) this.#bigrams.add(`${tokens[i - 1] as string} ${tokens[i] as string}`);
      }
      this.#lengths.add(tokens.length);
      for (const [key, value] of features) this.#lengthsOf(key, value)?.add(tokens.length);
    }
    if (words > 0) {
      this.#compared += 1;
      if (this.#duplicates.check(interaction.persona_id, interaction.interaction_id, turns) !== undefined) this.#nearDuplicates += 1;
    }

    const metadata = interaction.metadata ?? {};
    this.#endReasons.add(typeof metadata.end_reason === 'string' ? metadata.end_reason : '(none)');
    if (isRecord(metadata.guard)) {
      let any = false;
      for (const [reason, count] of Object.entries(metadata.guard)) {
        if (typeof count !== 'number' || !Number.isFinite(count) || count <= 0) continue;
        any = true;
        this.#rejections += count;
        this.#guardReasons.add(reason, count);
      }
      if (any) this.#guarded += 1;
    }
    this.#addJudged(interaction);
  }

  #addJudged(interaction: InteractionInput): void {
    const read = qualityOf(interaction);
    if (read.state === 'none') {
      this.#verdicts.not_judged += 1;
      return;
    }
    if (read.state === 'unreadable') {
      this.#verdicts.unreadable += 1;
      return;
    }
    const { quality } = read;
    this.#verdicts[quality.verdict] += 1;
    this.#accepted.set(interaction.persona_id, (this.#accepted.get(interaction.persona_id) ?? 0) + (quality.verdict === 'accept' ? 1 : 0));
    for (const reason of new Set(quality.reasons)) this.#reasons.add(reason);
    for (const tag of new Set([...quality.checks.map((check) => check.tag), ...(quality.review?.tags ?? [])])) this.#tags.add(tag);
    if (quality.rubric_version !== undefined) this.#rubrics.add(quality.rubric_version);
    if (quality.review === null) return;
    this.#reviewed += 1;
    for (const [criterion, score] of scoresOf(quality.review)) {
      let counts = this.#scores.get(criterion);
      if (counts === undefined) {
        if (this.#scores.size >= MAX_LABELS) continue;
        this.#scores.set(criterion, (counts = [0, 0, 0, 0, 0]));
      }
      counts[score] = (counts[score] as number) + 1;
    }
  }

  /** The lengths of `key`=`value`, the value pooled as `(other)` past the cap; undefined past the cap of keys. */
  #lengthsOf(key: string, value: string): Lengths | undefined {
    let values = this.#byFeature.get(key);
    if (values === undefined) {
      if (this.#byFeature.size >= MAX_FEATURE_KEYS) {
        this.#keysLeftOut = true;
        return undefined;
      }
      this.#byFeature.set(key, (values = new Map<string, Lengths>()));
    }
    let lengths = values.get(value);
    if (lengths === undefined) {
      const real = values.size - (values.has(OTHER) ? 1 : 0);
      const slot = real < MAX_FEATURE_VALUES ? value : OTHER;
      lengths = values.get(slot);
      if (lengths === undefined) values.set(slot, (lengths = new Lengths()));
    }
    return lengths;
  }

  toJSON(): QualityReportJSON {
    const distinct = (counter: DistinctCounter): DistinctJSON => ({ unique: counter.unique, total: counter.total, ratio: counter.total === 0 ? 0 : round(counter.unique / counter.total), estimated: counter.estimated });
    const perPersona = new Map<number, number>();
    for (const accepted of this.#accepted.values()) perPersona.set(accepted, (perPersona.get(accepted) ?? 0) + 1);
    const lengthsOf = (values: Map<string, Lengths>): Record<string, LengthsJSON> => Object.fromEntries([...values].sort(([a, x], [b, y]) => y.turns - x.turns || a.localeCompare(b)).map(([value, lengths]) => [value, lengths.toJSON()]));
    return {
      user_turns: this.#userTurns,
      distinct_1: distinct(this.#unigrams),
      distinct_2: distinct(this.#bigrams),
      distinct_standard_error: round(STANDARD_ERROR),
      near_duplicates: { compared: this.#compared, near_duplicates: this.#nearDuplicates, rate: this.#compared === 0 ? 0 : round(this.#nearDuplicates / this.#compared), threshold: NEAR_DUPLICATE },
      end_reasons: this.#endReasons.toJSON(),
      guard_rejections: { conversations: this.#guarded, rejections: this.#rejections, by_reason: this.#guardReasons.toJSON() },
      user_turn_words: { ...this.#lengths.toJSON(), by_feature: Object.fromEntries([...this.#byFeature].map(([key, values]) => [key, lengthsOf(values)])), feature_keys_left_out: this.#keysLeftOut },
      judge: {
        verdicts: { ...this.#verdicts },
        reviewed: this.#reviewed,
        reasons: this.#reasons.toJSON(),
        tags: this.#tags.toJSON(),
        scores: Object.fromEntries([...this.#scores].map(([criterion, counts]) => [criterion, { 0: counts[0] ?? 0, 1: counts[1] ?? 0, 2: counts[2] ?? 0, 3: counts[3] ?? 0, 4: counts[4] ?? 0 }])),
        rubric_versions: this.#rubrics.toJSON(),
        accepted_per_persona: Object.fromEntries([...perPersona].sort(([a], [b]) => a - b).map(([accepted, personas]) => [String(accepted), personas])),
      },
    };
  }
}
