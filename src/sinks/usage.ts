// Token totals for the run, in PersonaGym's token_usage shape (summary, by_module, by_model).
import type { ModelModule, ModelOperation, ModelRef, TokenUsage } from '../chat.js';
import { verdictOf, type Outcome } from '../types.js';

interface Totals {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  call_count: number;
}

const empty = (): Totals => ({ input_tokens: 0, output_tokens: 0, total_tokens: 0, call_count: 0 });

function add(into: Record<string, Totals>, key: string, usage: TokenUsage, calls = 1): void {
  const totals = (into[key] ??= empty());
  totals.input_tokens += usage.input;
  totals.output_tokens += usage.output;
  totals.total_tokens += usage.input + usage.output;
  totals.call_count += calls;
}

/** Adds `n` to `into[key]`; names that would reach the prototype are skipped (files read back are not trusted). */
function count(into: Record<string, number>, key: string, n: number): void {
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') return;
  into[key] = (Object.hasOwn(into, key) ? (into[key] as number) : 0) + n;
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
 * One billed call as DIR's usage log (usage.ndjson) keeps it, one line each, appended as it is billed:
 * what a run spent is on disk even if the run never closes (kill -9, OOM, a full disk).
 */
export interface UsageRecord {
  readonly module: ModelModule;
  readonly operation?: ModelOperation | undefined;
  readonly provider: string;
  readonly model: string;
  readonly input: number;
  readonly output: number;
  /** A failed attempt the provider billed. */
  readonly failed?: true;
  /** Tokens counted by personaflow (the server reported none). */
  readonly estimated?: true;
}

/** A usage-log line read back, or undefined when it is not one (a damaged line is skipped, never trusted). */
export function usageRecordOf(value: unknown): UsageRecord | undefined {
  const r = value as Partial<UsageRecord> | null;
  const count = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  if (typeof r !== 'object' || r === null || typeof r.module !== 'string' || typeof r.provider !== 'string' || typeof r.model !== 'string' || !count(r.input) || !count(r.output)) return undefined;
  return r as UsageRecord;
}

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
  /** Interactions written to the dataset (accepted by the judge, when one ran). */
  interactions = 0;
  failures = 0;
  /** Conversations the judge ruled on in this run, and those it rejected, by reason. */
  judged = 0;
  judgeRejected = 0;
  readonly judgeRejectedByReason: Record<string, number> = {};
  /** The judge's counts of earlier runs into the same directory (resume). */
  readonly previousJudge = { judged: 0, rejected: 0, rejected_by_reason: {} as Record<string, number> };
  /** Simulator replies the guards rejected, by reason (this run and earlier ones into the same directory). */
  readonly rejectedReplies: Record<string, number> = {};
  /** Rejected replies in this run, in all and by reason. */
  runRejected = 0;
  readonly runRejectedByReason: Record<string, number> = {};
  /** Counted by earlier runs into the same directory (resume). */
  previousInteractions = 0;
  previousFailures = 0;
  #calls = 0;
  /** Input and output tokens of this run's calls. */
  runTokens = 0;

  /** Told about each call of this run as it is billed (DirSink appends it to the usage log). */
  onCall: ((record: UsageRecord) => void) | undefined;

  /** One billed model call: answered, or a failed attempt that came back with usage (`failed`). */
  call(module: ModelModule, model: ModelRef, usage: TokenUsage, detail: { readonly operation?: ModelOperation; readonly failed?: boolean } = {}): void {
    const record: UsageRecord = {
      module,
      ...(detail.operation === undefined ? {} : { operation: detail.operation }),
      provider: model.provider,
      model: model.model,
      input: usage.input,
      output: usage.output,
      ...(detail.failed === true ? { failed: true } : {}),
      ...(usage.estimated === true ? { estimated: true } : {}),
    };
    this.#calls += 1;
    this.runTokens += usage.input + usage.output;
    const price = priceOf(this.#prices, model.provider, model.model);
    if (price === undefined) this.#unpriced.add(`${model.provider}/${model.model}`);
    else this.#runCost += costOf(price, usage.input, usage.output);
    if (usage.estimated === true) this.runEstimatedCalls += 1;
    this.#add(record);
    this.onCall?.(record);
  }

  /**
   * Calls an earlier run into the same directory billed, read back from its usage log (`calls` of them,
   * their tokens summed in `record`): in the directory's totals, not in this run's figures.
   */
  addLogged(record: UsageRecord, calls = 1): void {
    this.#add(record, calls);
  }

  #add(record: UsageRecord, calls = 1): void {
    const usage = { input: record.input, output: record.output };
    add(this.byModule, record.module, usage, calls);
    add(this.byModel, `${record.provider}/${record.model}`, usage, calls);
    if (record.operation !== undefined) add(this.byOperation, `${record.module}.${record.operation}`, usage, calls);
    if (record.failed === true) add({ failed: this.failedAttempts }, 'failed', usage, calls);
    if (record.estimated === true) add({ estimated: this.estimated }, 'estimated', usage, calls);
  }

  /** Calls of this run whose tokens were counted by personaflow. */
  runEstimatedCalls = 0;

  /**
   * Adds a previous usage.json (a resumed run keeps counting from it); anything else is ignored. With
   * `counts: false` only the tokens and calls are added, not its interaction, failure and judge counts (a merge
   * counts the lines it writes itself). With `thisRun`, its calls, tokens and cost count as this run's
   * (a queue run's usage, counted by its workers).
   */
  merge(previous: unknown, options: { readonly counts?: boolean; readonly thisRun?: boolean } = {}): void {
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
    const rejected = (statistics as { rejected_replies?: unknown } | undefined)?.rejected_replies;
    if (typeof rejected === 'object' && rejected !== null) {
      for (const [reason, count] of Object.entries(rejected as Record<string, unknown>)) {
        if (reason === '__proto__' || reason === 'constructor' || reason === 'prototype') continue;
        this.rejectedReplies[reason] = (Object.hasOwn(this.rejectedReplies, reason) ? (this.rejectedReplies[reason] as number) : 0) + (Number(count) || 0);
      }
    }
    if (options.thisRun === true) {
      const byModel: Record<string, Totals> = {};
      fold(byModel, statistics?.by_model);
      for (const [key, totals] of Object.entries(byModel)) {
        this.#calls += totals.call_count;
        this.runTokens += totals.input_tokens + totals.output_tokens;
        const slash = key.indexOf('/');
        const price = priceOf(this.#prices, key.slice(0, slash), key.slice(slash + 1));
        if (price === undefined) this.#unpriced.add(key);
        else this.#runCost += costOf(price, totals.input_tokens, totals.output_tokens);
      }
    }
    if (options.counts === false) return;
    const judge = (previous as { judge?: { judged?: unknown; rejected?: unknown; rejected_by_reason?: unknown } } | undefined)?.judge;
    this.previousJudge.judged += Number(judge?.judged) || 0;
    this.previousJudge.rejected += Number(judge?.rejected) || 0;
    if (typeof judge?.rejected_by_reason === 'object' && judge.rejected_by_reason !== null) {
      for (const [reason, n] of Object.entries(judge.rejected_by_reason as Record<string, unknown>)) count(this.previousJudge.rejected_by_reason, reason, Number(n) || 0);
    }
    const counts = previous as { interactions?: unknown; failures?: unknown } | undefined;
    this.previousInteractions += Number(counts?.interactions) || 0;
    this.previousFailures += Number(counts?.failures) || 0;
  }

  /** One finished task, and the simulator replies its guards rejected. */
  outcome(outcome: Outcome): void {
    const verdict = outcome.ok ? verdictOf(outcome.interaction) : undefined;
    if (verdict !== undefined) this.judged += 1;
    if (verdict?.verdict === 'reject') {
      this.judgeRejected += 1;
      for (const reason of verdict.reasons) count(this.judgeRejectedByReason, reason, 1);
    } else if (outcome.ok) this.interactions += 1;
    else this.failures += 1;
    for (const rejection of outcome.rejections ?? []) {
      this.runRejected += 1;
      this.runRejectedByReason[rejection.reason] = (Object.hasOwn(this.runRejectedByReason, rejection.reason) ? (this.runRejectedByReason[rejection.reason] as number) : 0) + 1;
      this.rejectedReplies[rejection.reason] = (Object.hasOwn(this.rejectedReplies, rejection.reason) ? (this.rejectedReplies[rejection.reason] as number) : 0) + 1;
    }
  }

  /** Tasks this run settled: written, failed, or rejected by the judge. */
  get settled(): number {
    return this.interactions + this.failures + this.judgeRejected;
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
        rejected_replies: this.rejectedReplies,
      },
      cost: { ...this.cost(), estimated: this.estimated.call_count > 0 },
      interactions: this.previousInteractions + this.interactions,
      failures: this.previousFailures + this.failures,
      ...(this.judged + this.previousJudge.judged === 0
        ? {}
        : {
            judge: {
              judged: this.previousJudge.judged + this.judged,
              rejected: this.previousJudge.rejected + this.judgeRejected,
              rejected_by_reason: Object.entries(this.judgeRejectedByReason).reduce((all, [reason, n]) => (count(all, reason, n), all), { ...this.previousJudge.rejected_by_reason }),
            },
          }),
    };
  }
}
