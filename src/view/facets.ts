// The filterable facets of every scanned interaction, in typed arrays (tens of bytes an interaction), and the filter that runs over them.
import { NOT_RECORDED, type Filter } from './api.js';
import type { Facets } from './interaction.js';

/** Distinct values kept per persona feature; later new values share one code, OTHER_VALUES. */
export const MAX_FEATURE_VALUES = 1000;
/** Persona features kept as columns; features first seen after this many are not filterable. */
export const MAX_FEATURES = 64;
export const OTHER_VALUES = '(other values)';

/** Strings to small integer codes, 1-based (0 means "none"). A Map, so `__proto__` is an ordinary value. */
export class Dictionary {
  readonly #codes = new Map<string, number>();
  readonly values: string[] = [];

  constructor(readonly limit = Infinity, readonly overflow = OTHER_VALUES) {}

  code(value: string): number {
    const known = this.#codes.get(value);
    if (known !== undefined) return known;
    // Past the limit every new value shares the overflow's code (one entry more than the limit).
    const kept = this.values.length >= this.limit ? this.overflow : value;
    return this.#codes.get(kept) ?? this.#add(kept);
  }

  #add(value: string): number {
    this.values.push(value);
    this.#codes.set(value, this.values.length);
    return this.values.length;
  }

  /** The code of a known value, or undefined. */
  find(value: string): number | undefined {
    return this.#codes.get(value);
  }

  value(code: number): string | undefined {
    return this.values[code - 1];
  }

  get size(): number {
    return this.values.length;
  }
}

type Column = Uint32Array | Float64Array | Float32Array | Uint8Array;

function grown<T extends Column>(column: T, capacity: number): T {
  const next = new (column.constructor as new (n: number) => T)(capacity);
  next.set(column);
  if (next instanceof Float32Array) next.fill(Number.NaN, column.length);
  return next;
}

/**
 * Every scanned interaction as a row of codes: where its line is, its persona, model, end reason,
 * verdict, supplement round, noised or not, its reasons (guard and rejection), a value code per persona
 * feature and its judge scores. Columns grow by doubling; memory is about 40 bytes an interaction plus
 * the distinct strings (one per persona).
 */
export class FacetStore {
  count = 0;
  #capacity = 1024;
  at = new Float64Array(this.#capacity);
  bytes = new Uint32Array(this.#capacity);
  persona = new Uint32Array(this.#capacity);
  model = new Uint32Array(this.#capacity);
  endReason = new Uint32Array(this.#capacity);
  verdict = new Uint32Array(this.#capacity);
  /** Supplement round + 1; 0 for the main pass. */
  round = new Uint32Array(this.#capacity);
  noised = new Uint8Array(this.#capacity);
  /** Position → reason codes, only for interactions that have any. */
  readonly reasons = new Map<number, readonly number[]>();
  readonly features = new Map<number, Uint32Array>();
  readonly scores = new Map<number, Float32Array>();

  readonly personas = new Dictionary();
  readonly models = new Dictionary();
  readonly endReasons = new Dictionary();
  readonly verdicts = new Dictionary();
  readonly reasonNames = new Dictionary();
  readonly featureNames = new Dictionary(MAX_FEATURES);
  readonly featureValues = new Map<number, Dictionary>();
  readonly scoreNames = new Dictionary(64);

  #grow(): void {
    this.#capacity *= 2;
    const c = this.#capacity;
    this.at = grown(this.at, c);
    this.bytes = grown(this.bytes, c);
    this.persona = grown(this.persona, c);
    this.model = grown(this.model, c);
    this.endReason = grown(this.endReason, c);
    this.verdict = grown(this.verdict, c);
    this.round = grown(this.round, c);
    this.noised = grown(this.noised, c);
    for (const [key, column] of this.features) this.features.set(key, grown(column, c));
    for (const [key, column] of this.scores) this.scores.set(key, grown(column, c));
  }

  /** Adds one interaction at byte offset `at` (its line `bytes` long, newline included), with extra reasons (rejections). */
  add(facets: Facets, at: number, bytes: number, rejectionReasons: readonly string[] = []): number {
    if (this.count === this.#capacity) this.#grow();
    const i = this.count;
    this.at[i] = at;
    this.bytes[i] = bytes;
    this.persona[i] = this.personas.code(facets.persona);
    this.model[i] = this.models.code(facets.model);
    this.endReason[i] = facets.endReason === null ? 0 : this.endReasons.code(facets.endReason);
    this.verdict[i] = facets.verdict === null ? 0 : this.verdicts.code(facets.verdict);
    this.round[i] = facets.round === null ? 0 : Math.max(0, Math.min(65_535, Math.trunc(facets.round))) + 1;
    this.noised[i] = facets.noised ? 1 : 0;
    const reasons = new Set<number>();
    for (const [reason] of facets.guard) reasons.add(this.reasonNames.code(reason));
    for (const reason of rejectionReasons) reasons.add(this.reasonNames.code(reason));
    if (reasons.size > 0) this.reasons.set(i, [...reasons]);
    for (const [name, value] of facets.features) {
      const key = this.featureNames.find(name) ?? (this.featureNames.size < MAX_FEATURES ? this.featureNames.code(name) : undefined);
      if (key === undefined) continue;
      let column = this.features.get(key);
      if (column === undefined) this.features.set(key, (column = new Uint32Array(this.#capacity)));
      let values = this.featureValues.get(key);
      if (values === undefined) this.featureValues.set(key, (values = new Dictionary(MAX_FEATURE_VALUES)));
      column[i] = values.code(value);
    }
    for (const [name, value] of facets.scores) {
      const key = this.scoreNames.find(name) ?? (this.scoreNames.size < 64 ? this.scoreNames.code(name) : undefined);
      if (key === undefined) continue;
      let column = this.scores.get(key);
      if (column === undefined) this.scores.set(key, (column = new Float32Array(this.#capacity).fill(Number.NaN)));
      column[i] = value;
    }
    this.count += 1;
    return i;
  }

  /** Whether the filter asks for anything. */
  static isEmpty(filter: Filter): boolean {
    return Object.values(filter).every((value) => value === undefined || (typeof value === 'object' && Object.keys(value as object).length === 0));
  }

  /**
   * A test of position i against `filter`, or undefined when nothing can match (a value never seen).
   * Every condition is a comparison of codes, so a million positions take milliseconds.
   */
  matcher(filter: Filter): ((i: number) => boolean) | undefined {
    const tests: ((i: number) => boolean)[] = [];
    const byCode = (dictionary: Dictionary, column: Uint32Array, value: string | undefined): boolean => {
      if (value === undefined) return true;
      const code = value === NOT_RECORDED ? 0 : dictionary.find(value);
      if (code === undefined) return false;
      tests.push((i) => column[i] === code);
      return true;
    };
    if (!byCode(this.models, this.model, filter.model)) return undefined;
    if (!byCode(this.endReasons, this.endReason, filter.endReason)) return undefined;
    if (!byCode(this.verdicts, this.verdict, filter.verdict)) return undefined;
    if (filter.persona !== undefined && filter.persona !== '') {
      const needle = filter.persona.toLowerCase();
      const codes = new Set<number>();
      this.personas.values.forEach((id, index) => {
        if (id.toLowerCase().includes(needle)) codes.add(index + 1);
      });
      if (codes.size === 0) return undefined;
      const persona = this.persona;
      tests.push((i) => codes.has(persona[i] as number));
    }
    if (filter.noised !== undefined) {
      const want = filter.noised === 'yes' ? 1 : 0;
      const noised = this.noised;
      tests.push((i) => noised[i] === want);
    }
    if (filter.round !== undefined) {
      const want = filter.round === 'main' ? 0 : /^\d+$/.test(filter.round) ? Number(filter.round) + 1 : -1;
      if (want < 0) return undefined;
      const round = this.round;
      tests.push((i) => round[i] === want);
    }
    if (filter.reason !== undefined) {
      const code = this.reasonNames.find(filter.reason);
      if (code === undefined) return undefined;
      tests.push((i) => this.reasons.get(i)?.includes(code) === true);
    }
    for (const [name, value] of Object.entries(filter.features ?? {})) {
      const key = this.featureNames.find(name);
      const column = key === undefined ? undefined : this.features.get(key);
      const code = key === undefined ? undefined : this.featureValues.get(key)?.find(value);
      if (column === undefined || code === undefined) return undefined;
      tests.push((i) => column[i] === code);
    }
    if (filter.score !== undefined) {
      const key = this.scoreNames.find(filter.score);
      const column = key === undefined ? undefined : this.scores.get(key);
      if (column === undefined) return undefined;
      const min = filter.scoreMin ?? -Infinity;
      const max = filter.scoreMax ?? Infinity;
      // A Float32Array holds the score rounded to float32: compare the bounds at the same precision.
      const lo = Math.fround(min);
      const hi = Math.fround(max);
      tests.push((i) => {
        const score = column[i] as number;
        return score >= lo && score <= hi;
      });
    }
    return (i) => tests.every((test) => test(i));
  }

  /** Positions matching `filter` from `skip` on (at most `take`), and how many match in all. */
  select(filter: Filter, skip: number, take: number): { positions: number[]; matches: number } {
    const test = this.matcher(filter);
    if (test === undefined) return { positions: [], matches: 0 };
    const positions: number[] = [];
    let matches = 0;
    for (let i = 0; i < this.count; i += 1) {
      if (!test(i)) continue;
      if (matches >= skip && positions.length < take) positions.push(i);
      matches += 1;
    }
    return { positions, matches };
  }

  /** Reason names of position i. */
  reasonsOf(i: number): string[] {
    return (this.reasons.get(i) ?? []).map((code) => this.reasonNames.value(code) ?? '?');
  }

  /** Feature → its values, for the filter's choices. */
  featureChoices(): Record<string, string[]> {
    return Object.fromEntries(this.featureNames.values.map((name, index) => [name, [...(this.featureValues.get(index + 1)?.values ?? [])].sort()]));
  }
}
