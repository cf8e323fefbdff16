// What batch calls cost: each model's `batch` price, else half its online price where the provider documents that discount.

/** Providers whose batch API is documented at half the online price (OpenAI's Batch API). */
const HALF_PRICE = /^(openai\/)?(gpt-|o\d|chatgpt-)/;

/** USD per million input and output tokens by model (the shape of sinks/usage's PriceTable). */
export type PriceTable = Readonly<Record<string, { readonly input: number; readonly output: number }>>;

/** A price entry as the config holds it: online input/output, and optionally its own batch price. */
export type PriceEntry = { readonly input: number; readonly output: number; readonly batch?: { readonly input: number; readonly output: number } | undefined };

/**
 * The price table of a batch run: each entry's `batch` price when the config gives one, else half the
 * online price for OpenAI's models (its documented Batch API discount), else the online price (no
 * discount is assumed where none is documented).
 *
 * @example
 * batchPrices({ 'gpt-4o-mini': { input: 0.15, output: 0.6 } }) // { 'gpt-4o-mini': { input: 0.075, output: 0.3 } }
 */
export function batchPrices(prices: Readonly<Record<string, PriceEntry>>): PriceTable {
  return Object.fromEntries(
    Object.entries(prices).map(([model, price]) => [model, price.batch ?? (HALF_PRICE.test(model) ? { input: price.input / 2, output: price.output / 2 } : { input: price.input, output: price.output })]),
  );
}
