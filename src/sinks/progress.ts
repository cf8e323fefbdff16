// Progress on stderr: a live line when stderr is a terminal, or JSON lines for machines (--progress json).
import type { LimiterState } from '../limits/limiter.js';

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
   * Conversations this run will settle: exact once the whole input file is read (`total_exact`), before that
   * estimated from the tasks begun per byte read; null when reading stdin (its size is unknown).
   */
  readonly total: number | null;
  readonly total_exact: boolean;
  /** Seconds left at the rate conversations have been settling, when the total is known or estimated. */
  readonly eta_s: number | null;
  /** Models whose calls are waiting for their limiter (rate limit, adaptive limit, pause or breaker). */
  readonly throttled: readonly string[];
}

export interface ProgressSource {
  readonly interactions: () => number;
  /** Conversations begun (taken from the input into the pipeline) in this run. */
  readonly begun: () => number;
  readonly failures: () => number;
  readonly rejected: () => number;
  readonly retries: () => number;
  readonly tokens: () => number;
  /** This run's cost, or undefined when a model has no price. */
  readonly cost: () => number | undefined;
  /** Bytes of input read and the input's size, when the input is a file. */
  readonly input: () => { readonly read: number; readonly size: number } | undefined;
  /** Every task of the input has been read: the total is exact from then on (not when the bytes are read: a small file is read at once). */
  readonly exhausted?: () => boolean;
  readonly limiters: () => ReadonlyMap<string, { readonly name: string; readonly state: LimiterState }>;
}

/** The figures now, `startedMs` being when the run started. */
export function figures(source: ProgressSource, startedMs: number, nowMs: number): ProgressFigures {
  const elapsed = Math.max(0.001, (nowMs - startedMs) / 1000);
  const interactions = source.interactions();
  const input = source.input();
  const settled = interactions + source.failures() + source.rejected();
  const read = input === undefined || input.size === 0 ? null : Math.min(1, input.read / input.size);
  // Bytes are not conversations: the share done is conversations settled over conversations to settle,
  // where that total is the tasks begun so far scaled up by the bytes still unread.
  const exact = source.exhausted?.() === true;
  const begun = source.begun();
  // Bytes all read but tasks still to come (a small file is read in one chunk): no better guess than what began.
  const estimate = exact ? begun : read === null || read === 0 || begun === 0 ? null : Math.round(begun / read);
  const total = estimate === null ? null : Math.max(estimate, settled);
  const eta = total === null || settled === 0 ? null : ((total - settled) * elapsed) / settled;
  const throttled = [...source.limiters().values()].filter((limiter) => limiter.state.throttled).map((limiter) => limiter.name);
  return {
    elapsed_s: Math.round(elapsed * 10) / 10,
    interactions,
    failures: source.failures(),
    rejected: source.rejected(),
    retries: source.retries(),
    interactions_per_s: Math.round((interactions / elapsed) * 10) / 10,
    tokens_per_s: Math.round(source.tokens() / elapsed),
    cost_usd: source.cost() ?? null,
    input_read: read === null ? null : Math.round(read * 1000) / 1000,
    total,
    total_exact: exact,
    eta_s: eta === null ? null : Math.round(eta),
    throttled: [...new Set(throttled)],
  };
}

const duration = (seconds: number): string => {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};

/** One human line: `[#####-----] 52% 1,204/~2,310 done 3 failed 12 retries 18.2/s 9,120 tok/s $0.41 ETA 1m05s throttled: openai/gpt-4o`. */
export function formatLine(f: ProgressFigures, width = 20): string {
  const parts: string[] = [];
  const settled = f.interactions + f.failures + f.rejected;
  if (f.total !== null) {
    const share = f.total === 0 ? 1 : Math.min(1, settled / f.total);
    const filled = Math.round(share * width);
    parts.push(`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(share * 100)}%`);
    parts.push(`${f.interactions.toLocaleString('en')}/${f.total_exact ? '' : '~'}${f.total.toLocaleString('en')} done`);
  } else {
    parts.push(`${f.interactions.toLocaleString('en')} done`);
  }
  parts.push(`${f.failures} failed`);
  if (f.rejected > 0) parts.push(`${f.rejected} rejected`);
  parts.push(`${f.retries} retries`, `${f.interactions_per_s}/s`, `${f.tokens_per_s.toLocaleString('en')} tok/s`);
  if (f.cost_usd !== null) parts.push(`$${f.cost_usd.toFixed(2)}`);
  if (f.eta_s !== null) parts.push(`ETA ${duration(f.eta_s)}`);
  else parts.push(`${duration(f.elapsed_s)} elapsed`);
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

/**
 * Shows progress on stderr until `stop`: with `json`, one JSON line of the figures every 5 s and a last
 * one marked final; with `live`, a line redrawn every 250 ms (log-update), cleared on stop, and handed to
 * `onLive` so that messages clear it before they are written. Timers are unref'd.
 */
export async function startProgress(mode: ProgressMode, source: ProgressSource, onLive: (line: LiveLine | undefined) => void): Promise<{ stop(): void }> {
  const started = Date.now();
  if (mode === 'json') {
    const line = (final: boolean): void => void process.stderr.write(`${JSON.stringify({ progress: figures(source, started, Date.now()), ...(final ? { final } : {}) })}\n`);
    const timer = setInterval(() => line(false), 5000);
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
  const render = (): void => logUpdateStderr(formatLine(figures(source, started, Date.now())));
  const timer = setInterval(render, 250);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      logUpdateStderr.clear();
      onLive(undefined);
    },
  };
}
