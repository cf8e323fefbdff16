// Progress on stderr: a live line when stderr is a terminal, or JSON lines for machines (--progress json).
import type { LimiterState } from '../limits/limiter.js';

/** The most common failure so far: its reason (short, printable, without secrets) and how many failed so. */
export interface TopFailure {
  readonly reason: string;
  readonly count: number;
}

/** The figures a progress display shows, as `--progress json` prints them. */
export interface ProgressFigures {
  readonly elapsed_s: number;
  readonly interactions: number;
  readonly failures: number;
  /** Conversations the judge rejected (each topped up by supplement rounds). */
  readonly rejected: number;
  readonly retries: number;
  readonly interactions_per_s: number;
  readonly tokens_per_s: number;
  readonly cost_usd: number | null;
  /** Share of the input file read (0..1), when the input is a file. */
  readonly input_read: number | null;
  /**
   * Conversations this run will settle: the input file's tasks as counted before they run (after --shard and
   * --resume), plus supplement tasks as they start; from stdin, known once the whole input is read. Never a
   * guess: null until known.
   */
  readonly total: number | null;
  /** The total is known (kept for readers of the first format, where a total could be an estimate). */
  readonly total_exact: boolean;
  /** The input file's tasks are still being counted (the total comes once they are). */
  readonly counting: boolean;
  /**
   * Seconds left: the conversations left at the rate they have settled lately (a window of recent
   * settlements, not the average since the start), but at least what the longest conversation in flight
   * still needs (see Timings); null until that rate means something: after the first `concurrency`
   * conversations settled (the fast ones come first) and max(16, 2 × concurrency) since, over at least 5 s.
   */
  readonly eta_s: number | null;
  /**
   * What the run will have cost when every conversation is settled: the cost so far over the conversations
   * it paid for (those settled, and those in flight counted as half done) times the total; null without
   * prices, a total, or enough settled conversations for the ETA's rule.
   */
  readonly projected_cost_usd: number | null;
  /** The most common failure reason and its count, once a task failed. */
  readonly top_failure: TopFailure | null;
  /** Models whose calls are waiting for their limiter (rate limit, adaptive limit, pause or breaker). */
  readonly throttled: readonly string[];
}

export interface ProgressSource {
  readonly interactions: () => number;
  /** Conversations begun (taken from the input into the pipeline) in this run, supplement tasks included. */
  readonly begun: () => number;
  readonly failures: () => number;
  readonly rejected: () => number;
  readonly retries: () => number;
  readonly tokens: () => number;
  /** This run's cost, or undefined when a model has no price. */
  readonly cost: () => number | undefined;
  /** Bytes of input read and the input's size, when the input is a file. */
  readonly input: () => { readonly read: number; readonly size: number } | undefined;
  /** Every task of the input has been read (then what began is the main pass's total, for stdin too). */
  readonly exhausted?: () => boolean;
  /** The tasks of the input file as counted ahead of the run (see streams/count.ts); undefined while counting, or for stdin. */
  readonly planned?: () => number | undefined;
  /** The count of `planned` is under way. */
  readonly counting?: () => boolean;
  /** The most common failure so far. */
  readonly topFailure?: () => TopFailure | undefined;
  /** When the conversations in flight began and how long recent ones took (the ETA's end of the run). */
  readonly timings?: Timings;
  readonly limiters: () => ReadonlyMap<string, { readonly name: string; readonly state: LimiterState }>;
}

/** The shortest window the settle rate is measured over, in ms. */
const MIN_WINDOW_MS = 5000;
/** A conversation in flight older than this (stuck in a long retry?) holds the ETA back no longer. */
const MAX_OLDEST_MS = 5 * 60_000;

/** The shortest window worth a rate: 5 s, and twice the age of the oldest conversation in flight (up to 5 minutes). */
const minWindowMs = (oldestMs: number): number => Math.max(MIN_WINDOW_MS, Math.min(2 * oldestMs, MAX_OLDEST_MS));

/**
 * The rate conversations settle at lately, from samples of the settled count. The first `concurrency`
 * settlements are left out (the pipeline fills with conversations started together, and the short ones
 * settle first, faster than the run will go on); after them, the rate is measured over a window that
 * spans the last max(16, 2 × concurrency) settlements and at least 5 s, up to now (so a stall slows it).
 * Memory: one sample per sample call that saw a new settlement, within the window.
 */
export class SettleRate {
  readonly #samples: { at: number; settled: number }[] = [];
  readonly #warm: number;
  readonly #span: number;
  readonly #enough: number;

  /** `concurrency`: conversations at once (unknown with a queue: 16 is assumed). */
  constructor(concurrency: number | undefined) {
    const j = concurrency ?? 16;
    this.#warm = j;
    this.#span = Math.max(256, 8 * j);
    this.#enough = Math.max(64, 4 * j);
  }

  /** Records that `settled` conversations had settled at `now` (ms). */
  sample(now: number, settled: number): void {
    if (settled < this.#warm) return;
    const samples = this.#samples;
    const last = samples.at(-1);
    if (last === undefined || settled > last.settled) samples.push({ at: now, settled });
    // Kept: what the longest window can need (`span` settlements, MAX_OLDEST_MS).
    while (samples.length > 2) {
      const next = samples[1] as { at: number; settled: number };
      if (settled - next.settled >= this.#span && now - next.at >= MAX_OLDEST_MS) samples.shift();
      else break;
    }
  }

  /**
   * The window up to `now`: the shortest that spans `span` settlements and minWindowMs(oldestMs), or all
   * there is; its settlements and its length in ms. None before the first `concurrency` settled.
   */
  window(now: number, settled: number, oldestMs = 0): { readonly count: number; readonly ms: number } | undefined {
    const samples = this.#samples;
    if (samples.length === 0) return undefined;
    const shortest = minWindowMs(oldestMs);
    let start = samples[0] as { at: number; settled: number };
    for (let i = samples.length - 1; i >= 0; i -= 1) {
      const sample = samples[i] as { at: number; settled: number };
      if (settled - sample.settled >= this.#span && now - sample.at >= shortest) {
        start = sample;
        break;
      }
    }
    return { count: settled - start.settled, ms: now - start.at };
  }

  /**
   * Conversations per second up to `now`, or undefined until the window holds max(16, 2 × concurrency)
   * settlements over MIN_WINDOW_MS, and at least twice `oldestMs` (the age of the oldest conversation in
   * flight, up to 5 minutes): a window shorter than the conversations still running has seen only the
   * short ones settle.
   */
  perSecond(now: number, settled: number, oldestMs = 0): number | undefined {
    const window = this.window(now, settled, oldestMs);
    if (window === undefined || window.count < this.#enough || window.ms < minWindowMs(oldestMs)) return undefined;
    return (window.count * 1000) / window.ms;
  }
}

/**
 * When each conversation in flight began, and how long recent ones took (from being taken into the
 * pipeline to being written): what the end of a run waits for. Near the end the rate says little (a few
 * conversations left, maybe the long ones: a rate of 4/s says 1 s for the last conversation, which may be
 * a 20 s one 2 s in); then the time left is what the longest in flight still needs, judged by how long
 * conversations that ran as long as it took in all. Memory: the conversations in flight (at most the
 * pipeline's window) and the last `keep` durations.
 */
export class Timings {
  readonly #started = new Map<string, number>();
  readonly #durations: number[] = [];
  #next = 0;

  constructor(readonly keep = 256) {}

  /** Conversation `key` was taken into the pipeline at `now` (ms). */
  begin(key: string, now: number): void {
    this.#started.set(key, now);
  }

  /** Conversation `key` was settled (or cut short: then `settled` is false and its time is not kept). */
  end(key: string, now: number, settled = true): void {
    const started = this.#started.get(key);
    if (started === undefined) return;
    this.#started.delete(key);
    if (!settled) return;
    if (this.#durations.length < this.keep) this.#durations.push(now - started);
    else this.#durations[this.#next] = now - started;
    this.#next = (this.#next + 1) % this.keep;
  }

  /** The age of the oldest conversation in flight at `now`, in ms (0 with none). */
  oldest(now: number): number {
    let oldest = now;
    for (const started of this.#started.values()) oldest = Math.min(oldest, started);
    return now - oldest;
  }

  /**
   * What the conversation in flight that needs the longest still needs, in ms: for each, the mean of
   * (duration − its age) over the recent durations longer than its age. One older than every recent
   * duration (stuck in a retry?) counts as about to end. Undefined before any conversation settled.
   */
  longestLeft(now: number): number | undefined {
    const durations = this.#durations;
    if (durations.length === 0) return undefined;
    let longest = 0;
    for (const started of this.#started.values()) {
      const age = now - started;
      let sum = 0;
      let count = 0;
      for (const duration of durations) {
        if (duration > age) {
          sum += duration - age;
          count += 1;
        }
      }
      if (count > 0) longest = Math.max(longest, sum / count);
    }
    return longest;
  }
}

/**
 * The figures of a run, sampled as it goes: `figures(now)` reads the source, feeds the settle rate and
 * gives what a display shows. `startedMs` is when the run started; `concurrency` the conversations at once.
 */
export class Progress {
  readonly #rate: SettleRate;

  constructor(
    readonly source: ProgressSource,
    readonly startedMs: number,
    readonly concurrency: number | undefined,
  ) {
    this.#rate = new SettleRate(concurrency);
  }

  /** Feeds the settle rate without building figures (a sampler between the lines of --progress json). */
  sample(nowMs: number): void {
    const s = this.source;
    this.#rate.sample(nowMs, s.interactions() + s.failures() + s.rejected());
  }

  figures(nowMs: number): ProgressFigures {
    const source = this.source;
    this.sample(nowMs);
    const elapsed = Math.max(0.001, (nowMs - this.startedMs) / 1000);
    const interactions = source.interactions();
    const failures = source.failures();
    const input = source.input();
    const settled = interactions + failures + source.rejected();
    const begun = source.begun();
    const read = input === undefined || input.size === 0 ? null : Math.min(1, input.read / input.size);
    const planned = source.planned?.();
    // Counted ahead, or everything read (stdin): what began beyond it are supplement tasks.
    const main = planned ?? (source.exhausted?.() === true ? begun : undefined);
    const total = main === undefined ? null : Math.max(main, begun, settled);
    const perSecond = this.#rate.perSecond(nowMs, settled, source.timings?.oldest(nowMs));
    // The time the rest takes at the recent rate, but never less than what the longest in flight still needs.
    const tail = perSecond === undefined ? undefined : source.timings?.longestLeft(nowMs);
    const eta = total === null || perSecond === undefined ? null : Math.max((total - settled) / perSecond, (tail ?? 0) / 1000);
    const cost = source.cost() ?? null;
    const inFlight = Math.max(0, Math.min(begun - settled, this.concurrency ?? begun - settled));
    const paidFor = settled + inFlight / 2;
    const projected = cost === null || total === null || perSecond === undefined || paidFor === 0 ? null : Math.max(cost, (cost * total) / paidFor);
    const throttled = [...source.limiters().values()].filter((limiter) => limiter.state.throttled).map((limiter) => limiter.name);
    const top = failures === 0 ? undefined : source.topFailure?.();
    return {
      elapsed_s: Math.round(elapsed * 10) / 10,
      interactions,
      failures,
      rejected: source.rejected(),
      retries: source.retries(),
      interactions_per_s: Math.round((interactions / elapsed) * 10) / 10,
      tokens_per_s: Math.round(source.tokens() / elapsed),
      cost_usd: cost,
      input_read: read === null ? null : Math.round(read * 1000) / 1000,
      total,
      total_exact: total !== null,
      counting: total === null && source.counting?.() === true,
      eta_s: eta === null ? null : Math.round(eta),
      projected_cost_usd: projected === null ? null : Math.round(projected * 10_000) / 10_000,
      top_failure: top ?? null,
      throttled: [...new Set(throttled)],
    };
  }
}

const duration = (seconds: number): string => {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};

/**
 * One human line: `[#####-----] 52%  1,204/2,310 done  3 failed  12 retries  18.2/s  9,120 tok/s  $0.41 of ~$0.79
 * ETA 1m05s  top failure: server error (500): overloaded (3)  throttled: openai/gpt-4o`.
 */
export function formatLine(f: ProgressFigures, width = 20): string {
  const parts: string[] = [];
  const settled = f.interactions + f.failures + f.rejected;
  if (f.total !== null) {
    const share = f.total === 0 ? 1 : Math.min(1, settled / f.total);
    const filled = Math.round(share * width);
    parts.push(`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(share * 100)}%`);
    parts.push(`${f.interactions.toLocaleString('en')}/${f.total.toLocaleString('en')} done`);
  } else {
    parts.push(`${f.interactions.toLocaleString('en')} done${f.counting ? ' (counting the input\'s tasks)' : ''}`);
  }
  parts.push(`${f.failures} failed`);
  if (f.rejected > 0) parts.push(`${f.rejected} rejected`);
  parts.push(`${f.retries} retries`, `${f.interactions_per_s}/s`, `${f.tokens_per_s.toLocaleString('en')} tok/s`);
  if (f.cost_usd !== null) parts.push(`$${f.cost_usd.toFixed(2)}${f.projected_cost_usd === null ? '' : ` of ~$${f.projected_cost_usd.toFixed(2)}`}`);
  if (f.eta_s !== null) parts.push(`ETA ${duration(f.eta_s)}`);
  else parts.push(`${duration(f.elapsed_s)} elapsed`);
  if (f.top_failure !== null) parts.push(`top failure: ${f.top_failure.reason} (${f.top_failure.count})`);
  if (f.throttled.length > 0) parts.push(`throttled: ${f.throttled.join(', ')}`);
  return parts.join('  ');
}

/** How progress is shown: a live line on a terminal, JSON lines (`--progress json`), or nothing. */
export type ProgressMode = 'live' | 'json' | 'none';

/** Where a live line is drawn (log-update's stderr writer), so messages can clear it first. */
export interface LiveLine {
  (text: string): void;
  clear(): void;
}

/** How often the figures are sampled (the live line is redrawn at this pace; --progress json samples as often and prints every 5 s). */
const TICK_MS = 250;
const JSON_EVERY_TICKS = 20;

/**
 * Shows progress on stderr until `stop`: with `json`, one JSON line of the figures every 5 s and a last
 * one marked final; with `live`, a line redrawn every 250 ms (log-update), cleared on stop, and handed to
 * `onLive` so that messages clear it before they are written. Either way the settle rate is sampled every
 * 250 ms. Timers are unref'd.
 */
export async function startProgress(mode: ProgressMode, source: ProgressSource, options: { readonly concurrency: number | undefined }, onLive: (line: LiveLine | undefined) => void): Promise<{ stop(): void }> {
  const progress = new Progress(source, Date.now(), options.concurrency);
  if (mode === 'json') {
    const line = (final: boolean): void => void process.stderr.write(`${JSON.stringify({ progress: progress.figures(Date.now()), ...(final ? { final } : {}) })}\n`);
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
      if (ticks % JSON_EVERY_TICKS === 0) line(false);
      else progress.sample(Date.now());
    }, TICK_MS);
    timer.unref();
    return {
      stop: () => {
        clearInterval(timer);
        line(true);
      },
    };
  }
  if (mode === 'none') return { stop: () => undefined };
  const { logUpdateStderr } = await import('log-update');
  onLive(logUpdateStderr);
  const render = (): void => logUpdateStderr(formatLine(progress.figures(Date.now())));
  const timer = setInterval(render, TICK_MS);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      logUpdateStderr.clear();
      onLive(undefined);
    },
  };
}
