// Token totals for the run, in PersonaGym's token_usage shape (summary, by_module, by_model).
import type { ModelModule, ModelOperation, ModelRef, TokenUsage } from '../chat.js';
import type { Outcome } from '../types.js';

interface Totals {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  call_count: number;
}

const empty = (): Totals => ({ input_tokens: 0, output_tokens: 0, total_tokens: 0, call_count: 0 });

function add(into: Record<string, Totals>, key: string, usage: TokenUsage): void {
  const totals = (into[key] ??= empty());
  totals.input_tokens += usage.input;
  totals.output_tokens += usage.output;
  totals.total_tokens += usage.input + usage.output;
  totals.call_count += 1;
}

/** USD per million input and output tokens, by `model` or `provider/model` (the longer key wins). */
export type PriceTable = Readonly<Record<string, { readonly input: number; readonly output: number }>>;

/** The price of a model: `provider/model` first, then the bare model name; sim and local llama models are free. */
export function priceOf(prices: PriceTable, provider: string, model: string): { input: number; output: number } | undefined {
  if (provider === 'sim' || provider === 'llama') return { input: 0, output: 0 };
  return prices[`${provider}/${model}`] ?? prices[model];
}

const costOf = (price: { input: number; output: number }, input: number, output: number): number => (input * price.input + output * price.output) / 1e6;

/**
 * What the run has used, counted per answered call (`call`), so calls of tasks that later fail or are
 * cancelled count too: they were billed. Memory is per model and module, not per interaction. Cost
 * comes from a price table; a model without a price is listed as unpriced, never counted as free.
 */
export class UsageTotals {
  readonly #prices: PriceTable;
  #runCost = 0;
  readonly #unpriced = new Set<string>();

  constructor(prices: PriceTable = {}) {
    this.#prices = prices;
  }

  readonly byModule: Record<string, Totals> = {};
  readonly byModel: Record<string, Totals> = {};
  /** By `module.operation` (`user_simulator.guard_retry`, `distractor.validation_retry`, ...). */
  readonly byOperation: Record<string, Totals> = {};
  /** Attempts that failed but were billed (a 200 whose answer was unusable), already inside every total. */
  readonly failedAttempts: Totals = empty();
  /** Calls whose tokens personaflow counted because the server reported none (or an implausible figure), already inside every total. */
  readonly estimated: Totals = empty();
  interactions = 0;
  failures = 0;
  /** Counted by earlier runs into the same directory (resume). */
  previousInteractions = 0;
  previousFailures = 0;
  #calls = 0;
  /** Input and output tokens of this run's calls. */
  runTokens = 0;

  /** One billed model call: answered, or a failed attempt that came back with usage (`failed`). */
  call(module: ModelModule, model: ModelRef, usage: TokenUsage, detail: { readonly operation?: ModelOperation; readonly failed?: boolean } = {}): void {
    this.#calls += 1;
    this.runTokens += usage.input + usage.output;
    const price = priceOf(this.#prices, model.provider, model.model);
    if (price === undefined) this.#unpriced.add(`${model.provider}/${model.model}`);
    else this.#runCost += costOf(price, usage.input, usage.output);
    add(this.byModule, module, usage);
    add(this.byModel, `${model.provider}/${model.model}`, usage);
    if (detail.operation !== undefined) add(this.byOperation, `${module}.${detail.operation}`, usage);
    if (detail.failed === true) add({ failed: this.failedAttempts }, 'failed', usage);
    if (usage.estimated === true) {
      add({ estimated: this.estimated }, 'estimated', usage);
      this.runEstimatedCalls += 1;
    }
  }

  /** Calls of this run whose tokens were counted by personaflow. */
  runEstimatedCalls = 0;

  /** Adds a previous usage.json (a resumed run keeps counting from it); anything else is ignored. */
  merge(previous: unknown): void {
    const statistics = (previous as { statistics?: { by_module?: unknown; by_model?: unknown; by_operation?: unknown; failed_attempts?: unknown } } | undefined)?.statistics;
    const fold = (into: Record<string, Totals>, from: unknown): void => {
      if (typeof from !== 'object' || from === null) return;
      for (const [key, value] of Object.entries(from as Record<string, unknown>)) {
        // Only plain records under ordinary names: a damaged or hostile file must not reach the prototype.
        if (typeof value !== 'object' || value === null || key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
        const totals = Object.hasOwn(into, key) ? (into[key] as Totals) : (into[key] = empty());
        const counts = value as Partial<Totals>;
        totals.input_tokens += Number(counts.input_tokens) || 0;
        totals.output_tokens += Number(counts.output_tokens) || 0;
        totals.total_tokens += Number(counts.total_tokens) || 0;
        totals.call_count += Number(counts.call_count) || 0;
      }
    };
    fold(this.byModule, statistics?.by_module);
    fold(this.byModel, statistics?.by_model);
    fold(this.byOperation, statistics?.by_operation);
    fold({ failed: this.failedAttempts }, { failed: statistics?.failed_attempts });
    fold({ estimated: this.estimated }, { estimated: (statistics as { estimated?: unknown } | undefined)?.estimated });
    const counts = previous as { interactions?: unknown; failures?: unknown } | undefined;
    this.previousInteractions += Number(counts?.interactions) || 0;
    this.previousFailures += Number(counts?.failures) || 0;
  }

  /** One finished task. */
  outcome(outcome: Outcome): void {
    if (outcome.ok) this.interactions += 1;
    else this.failures += 1;
  }

  /** USD this run has spent on priced models. */
  get runCost(): number {
    return this.#runCost;
  }

  /** Models this run called that have no price. */
  get unpriced(): readonly string[] {
    return [...this.#unpriced].sort();
  }

  /** Cost of everything in the totals (earlier runs into the same directory included), by model. */
  cost(): { currency: 'USD'; total: number; by_model: Record<string, number>; unpriced_models: string[] } {
    const byModel: Record<string, number> = {};
    const unpriced: string[] = [];
    let total = 0;
    for (const [key, totals] of Object.entries(this.byModel)) {
      const slash = key.indexOf('/');
      const price = priceOf(this.#prices, key.slice(0, slash), key.slice(slash + 1));
      if (price === undefined) {
        unpriced.push(key);
        continue;
      }
      byModel[key] = costOf(price, totals.input_tokens, totals.output_tokens);
      total += byModel[key];
    }
    return { currency: 'USD', total, by_model: byModel, unpriced_models: unpriced.sort() };
  }

  /** Calls answered in this run (usage.json also holds earlier runs' into the same directory). */
  get calls(): number {
    return this.#calls;
  }

  /** PersonaGym's token_usage file (`exported_at`, `statistics.{summary, by_module, by_model}`). */
  toJSON(): unknown {
    const all = Object.values(this.byModule).reduce((sum, t) => {
      sum.input_tokens += t.input_tokens;
      sum.output_tokens += t.output_tokens;
      sum.call_count += t.call_count;
      return sum;
    }, empty());
    return {
      exported_at: new Date().toISOString(),
      statistics: {
        summary: {
          total_calls: all.call_count,
          total_input_tokens: all.input_tokens,
          total_output_tokens: all.output_tokens,
          total_tokens: all.input_tokens + all.output_tokens,
        },
        by_module: this.byModule,
        by_model: this.byModel,
        by_operation: this.byOperation,
        failed_attempts: this.failedAttempts,
        estimated: this.estimated,
      },
      cost: { ...this.cost(), estimated: this.estimated.call_count > 0 },
      interactions: this.previousInteractions + this.interactions,
      failures: this.previousFailures + this.failures,
    };
  }
}
