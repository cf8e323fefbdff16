// The arithmetic of an estimate: renderings of a sample mixed by the pool's weights, carried over to the whole input, priced as a low–high range per model.

/** Calls and tokens of one model. */
export interface Tally {
  readonly calls: number;
  readonly input: number;
  readonly output: number;
}

/** Tallies by model (`provider/model`). */
export type Tallies = ReadonlyMap<string, Tally>;

/** USD per million input and output tokens. */
export interface Price {
  readonly input: number;
  readonly output: number;
}

/** A low and a high figure, low ≤ high. */
export interface Range {
  readonly low: number;
  readonly high: number;
}

/** One model's share of the estimate. */
export interface ModelEstimate {
  /** `provider/model`. */
  readonly model: string;
  readonly calls: Range;
  readonly input: Range;
  readonly output: Range;
  /** Undefined when the model has no price. */
  readonly usd: Range | undefined;
}

/** The estimate of a run: per model, and the total of the priced ones. */
export interface Figures {
  readonly models: readonly ModelEstimate[];
  readonly usd: Range;
  /** Models without a price, sorted (not in the total). */
  readonly unpriced: readonly string[];
}

const ZERO: Tally = { calls: 0, input: 0, output: 0 };

const add = (a: Tally, b: Tally, times = 1): Tally => ({ calls: a.calls + b.calls * times, input: a.input + b.input * times, output: a.output + b.output * times });

/**
 * The expected tallies of conversations drawn from a pool: each rendering's tallies (every task talking
 * to one pool entry) weighted by that entry's weight, the weights normalised. A model missing from a
 * rendering counts as none there.
 *
 * @example
 * mix([{ weight: 3, tallies: new Map([['openai/a', { calls: 4, input: 100, output: 10 }]]) }, { weight: 1, tallies: new Map() }])
 * // Map { 'openai/a' => { calls: 3, input: 75, output: 7.5 } }
 */
export function mix(renderings: readonly { readonly weight: number; readonly tallies: Tallies }[]): Map<string, Tally> {
  for (const { weight } of renderings) {
    if (!Number.isFinite(weight) || weight < 0) throw new TypeError(`Expected each weight to be a finite number ≥ 0, got \`${String(weight)}\``);
  }
  const total = renderings.reduce((sum, { weight }) => sum + weight, 0);
  if (total <= 0) throw new TypeError('Expected at least one rendering with a positive weight');
  const mixed = new Map<string, Tally>();
  for (const { weight, tallies } of renderings) {
    for (const [model, tally] of tallies) mixed.set(model, add(mixed.get(model) ?? ZERO, tally, weight / total));
  }
  return mixed;
}

/**
 * The tallies of `sampled` tasks carried over to `total` tasks (× total / sampled). With no task sampled
 * there is nothing to carry: every tally is zero.
 *
 * @example
 * extrapolate(new Map([['openai/a', { calls: 2, input: 50, output: 4 }]]), 10, 25) // Map { 'openai/a' => { calls: 5, input: 125, output: 10 } }
 */
export function extrapolate(tallies: Tallies, sampled: number, total: number): Map<string, Tally> {
  if (!Number.isSafeInteger(sampled) || sampled < 0) throw new TypeError(`Expected \`sampled\` to be a non-negative integer, got \`${String(sampled)}\``);
  if (!Number.isSafeInteger(total) || total < sampled) throw new TypeError(`Expected \`total\` to be an integer ≥ sampled (${sampled}), got \`${String(total)}\``);
  const factor = sampled === 0 ? 0 : total / sampled;
  return new Map([...tallies].map(([model, tally]) => [model, add(ZERO, tally, factor)]));
}

/** USD of a tally at a price. */
export const usdOf = (tally: Tally, price: Price): number => (tally.input * price.input + tally.output * price.output) / 1e6;

const range = (a: number, b: number): Range => ({ low: Math.min(a, b), high: Math.max(a, b) });

/**
 * The range of each model between the low and the high rendering (calls and tokens rounded to whole
 * ones, each range ordered), priced by `priceOf` (undefined: no price), and the total of the priced
 * models. Models come sorted by name.
 *
 * @example
 * figuresOf(new Map([['openai/a', { calls: 2, input: 1e6, output: 0 }]]), new Map([['openai/a', { calls: 4, input: 3e6, output: 1e6 }]]), () => ({ input: 1, output: 2 }))
 * // { models: [{ model: 'openai/a', calls: { low: 2, high: 4 }, ..., usd: { low: 1, high: 5 } }], usd: { low: 1, high: 5 }, unpriced: [] }
 */
export function figuresOf(low: Tallies, high: Tallies, priceOf: (model: string) => Price | undefined): Figures {
  const names = [...new Set([...low.keys(), ...high.keys()])].sort();
  let usdLow = 0;
  let usdHigh = 0;
  const unpriced: string[] = [];
  const models = names.map((model): ModelEstimate => {
    const a = low.get(model) ?? ZERO;
    const b = high.get(model) ?? ZERO;
    const price = priceOf(model);
    let usd: Range | undefined;
    if (price === undefined) unpriced.push(model);
    else {
      usd = range(usdOf(a, price), usdOf(b, price));
      usdLow += usd.low;
      usdHigh += usd.high;
    }
    return { model, calls: range(Math.round(a.calls), Math.round(b.calls)), input: range(Math.round(a.input), Math.round(b.input)), output: range(Math.round(a.output), Math.round(b.output)), usd };
  });
  return { models, usd: { low: usdLow, high: usdHigh }, unpriced };
}
