// A queue run's shared state in Redis: its record (settings, fingerprint), global counters, the budget, usage, and how it ended.
import type { Redis } from 'ioredis';
import type { ModelModule, ModelOperation, ModelRef, TokenUsage } from '../chat.js';
import type { RunRecord } from '../sinks/layout.js';
import { priceOf, type PriceTable } from '../sinks/usage.js';

/** What the producer publishes for its workers: run.json's record, and the run's budget. */
export interface QueueRecord extends RunRecord {
  /** `--max-cost`: workers start no conversation once the run's spend (plus what is in flight) reaches it. */
  readonly max_cost: number | null;
}

/** The run's counters, summed over every process. */
export interface RunCounters {
  /** Conversations started by the workers. */
  readonly begun: number;
  /** Conversations that ended (an interaction or a failure). */
  readonly settled: number;
  /** USD spent on priced models. */
  readonly cost: number;
  readonly tokens: number;
  readonly calls: number;
  readonly retries: number;
  /** The budget stopped new conversations. */
  readonly reached: boolean;
  /** A worker hit an error that ends the run (a bad key, a dead model): its message. */
  readonly fatal: string | undefined;
  /** The producer wrote every outcome and closed: workers may leave. */
  readonly done: boolean;
}

/**
 * Begins a conversation unless the budget says no, atomically for all workers: the same rule as the
 * single process's Budget (spent + conversations in flight × average cost so far ≥ max cost → reached,
 * for good). ARGV: max cost (empty: none). Returns 1 to begin, 0 when the budget is reached.
 */
const BEGIN = `
local key = KEYS[1]
local max = tonumber(ARGV[1])
if max then
  local h = redis.call('HMGET', key, 'begun', 'settled', 'cost', 'reached')
  if h[4] == '1' then return 0 end
  local begun = tonumber(h[1]) or 0
  local settled = tonumber(h[2]) or 0
  local cost = tonumber(h[3]) or 0
  local per = 0
  if settled > 0 then per = cost / settled end
  if cost + (begun - settled) * per >= max then
    redis.call('HSET', key, 'reached', 1)
    return 0
  end
end
redis.call('HINCRBY', key, 'begun', 1)
return 1
`;

const SECTIONS = ['by_module', 'by_model', 'by_operation', 'failed_attempts'] as const;
const METRICS = ['input_tokens', 'output_tokens', 'total_tokens', 'call_count'] as const;

/**
 * The shared state of the run named `name`: keys `personaflow-run:<name>:record`, `:state` (counters)
 * and `:usage` (token totals as usage.json counts them).
 */
export class QueueRun {
  readonly #redis: Redis & { personaflowBegin?: (key: string, max: string) => Promise<number> };
  readonly #keys: { readonly record: string; readonly state: string; readonly usage: string };

  constructor(
    redis: Redis,
    readonly name: string,
  ) {
    this.#redis = redis;
    const base = `personaflow-run:${name}`;
    this.#keys = { record: `${base}:record`, state: `${base}:state`, usage: `${base}:usage` };
    if (this.#redis.personaflowBegin === undefined) redis.defineCommand('personaflowBegin', { numberOfKeys: 1, lua: BEGIN });
  }

  /** The record the producer published, or undefined before there is one. */
  async record(): Promise<QueueRecord | undefined> {
    const text = await this.#redis.get(this.#keys.record);
    return text === null ? undefined : (JSON.parse(text) as QueueRecord);
  }

  /**
   * Publishes the producer's record. A run of this name with the same fingerprint is continued (its
   * counters and usage kept, the new budget taken) unless `replace`; any other run is replaced and starts
   * over (the producer refuses that without --force before it gets here): `created` says which. Either
   * way the run is open again (not done, no fatal error, the budget judged anew).
   */
  async publish(record: QueueRecord, replace: boolean): Promise<{ readonly created: boolean; readonly previous: QueueRecord | undefined }> {
    const previous = await this.record();
    const same = previous !== undefined && previous.config_fingerprint === record.config_fingerprint && !replace;
    if (!same) {
      await this.#redis.multi().set(this.#keys.record, JSON.stringify(record)).del(this.#keys.state, this.#keys.usage).exec();
    } else {
      // The budget may have changed: keep the first record's settings and creation time, take the new budget.
      await this.#redis.set(this.#keys.record, JSON.stringify({ ...previous, max_cost: record.max_cost }));
    }
    await this.#redis.hdel(this.#keys.state, 'done', 'fatal', 'reached');
    return { created: !same, previous };
  }

  /** Starts one conversation, unless the run's budget is reached (then false, and nothing is counted). */
  async begin(maxCost: number | null): Promise<boolean> {
    const begin = this.#redis.personaflowBegin as (key: string, max: string) => Promise<number>;
    return (await begin.call(this.#redis, this.#keys.state, maxCost === null ? '' : String(maxCost))) === 1;
  }

  /** A conversation ended. */
  async settle(): Promise<void> {
    await this.#redis.hincrby(this.#keys.state, 'settled', 1);
  }

  async retry(): Promise<void> {
    await this.#redis.hincrby(this.#keys.state, 'retries', 1);
  }

  async fail(message: string): Promise<void> {
    await this.#redis.hsetnx(this.#keys.state, 'fatal', message);
  }

  async finish(): Promise<void> {
    await this.#redis.hset(this.#keys.state, 'done', 1);
  }

  async counters(): Promise<RunCounters> {
    const h = await this.#redis.hgetall(this.#keys.state);
    const n = (field: string): number => Number(h[field] ?? 0) || 0;
    return { begun: n('begun'), settled: n('settled'), cost: n('cost'), tokens: n('tokens'), calls: n('calls'), retries: n('retries'), reached: h.reached === '1', fatal: h.fatal, done: h.done === '1' };
  }

  /** Adds usage counted in one process (see UsageRecorder). */
  async addUsage(delta: UsageDelta): Promise<void> {
    if (delta.calls === 0) return;
    const multi = this.#redis.multi();
    for (const [field, value] of delta.fields) multi.hincrby(this.#keys.usage, field, value);
    multi.hincrby(this.#keys.state, 'calls', delta.calls).hincrby(this.#keys.state, 'tokens', delta.tokens);
    if (delta.cost > 0) multi.hincrbyfloat(this.#keys.state, 'cost', delta.cost);
    await multi.exec();
  }

  /** The run's usage in usage.json's shape (`statistics.by_module`, ...), for UsageTotals.merge. */
  async usage(): Promise<{ statistics: Record<string, unknown> }> {
    const fields = await this.#redis.hgetall(this.#keys.usage);
    const statistics: Record<string, Record<string, Record<string, number>>> = { by_module: {}, by_model: {}, by_operation: {} };
    const failed: Record<string, number> = {};
    for (const [field, value] of Object.entries(fields)) {
      const first = field.indexOf('|');
      const last = field.lastIndexOf('|');
      const section = field.slice(0, first);
      const key = field.slice(first + 1, last);
      const metric = field.slice(last + 1);
      if (section === 'failed_attempts') failed[metric] = Number(value);
      else if (statistics[section] !== undefined) ((statistics[section])[key] ??= {})[metric] = Number(value);
    }
    return { statistics: { ...statistics, failed_attempts: failed } };
  }
}

/** Usage counted since the last flush, as Redis hash increments. */
export interface UsageDelta {
  readonly fields: ReadonlyMap<string, number>;
  readonly calls: number;
  readonly tokens: number;
  readonly cost: number;
}

/**
 * Counts each billed call of this process and adds it to the run's usage in Redis in small batches
 * (`flush`, every `intervalMs`): a process killed between two flushes loses at most that much of its
 * accounting, never a line of output.
 */
export class UsageRecorder {
  #fields = new Map<string, number>();
  #calls = 0;
  #tokens = 0;
  #cost = 0;
  #flushing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly run: QueueRun,
    readonly prices: PriceTable,
    intervalMs = 250,
  ) {
    this.#timer = setInterval(() => void this.flush().catch(() => undefined), intervalMs);
    this.#timer.unref();
  }

  /** A UsageListener: one billed call. */
  readonly call = (module: ModelModule, model: ModelRef, usage: TokenUsage, detail: { readonly operation?: ModelOperation; readonly failed?: boolean } = {}): void => {
    const add = (section: string, key: string): void => {
      const values = [usage.input, usage.output, usage.input + usage.output, 1];
      for (const [i, metric] of METRICS.entries()) {
        const field = `${section}|${key}|${metric}`;
        this.#fields.set(field, (this.#fields.get(field) ?? 0) + (values[i] as number));
      }
    };
    add(SECTIONS[0], module);
    add(SECTIONS[1], `${model.provider}/${model.model}`);
    if (detail.operation !== undefined) add(SECTIONS[2], `${module}.${detail.operation}`);
    if (detail.failed === true) add(SECTIONS[3], '');
    this.#calls += 1;
    this.#tokens += usage.input + usage.output;
    const price = priceOf(this.prices, model.provider, model.model);
    if (price !== undefined) this.#cost += (usage.input * price.input + usage.output * price.output) / 1e6;
  };

  /** Sends what was counted since the last flush; resolves when Redis has it. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#calls === 0) return;
      const delta: UsageDelta = { fields: this.#fields, calls: this.#calls, tokens: this.#tokens, cost: this.#cost };
      this.#fields = new Map();
      this.#calls = 0;
      this.#tokens = 0;
      this.#cost = 0;
      await this.run.addUsage(delta);
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
