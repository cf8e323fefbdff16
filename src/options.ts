// Parsers for numeric command-line options, shared by every command: strict, so a typo is an error, not a value.
import { InvalidArgumentError } from 'commander';

/**
 * Upper bounds of the numbers that size a run, for flags and configuration alike. Past them a value is
 * a typo or an attack, and it would overflow something: a stack (100,000 conversations in flight), the
 * process's open files (a socket per call in flight; the usual limit is 1,024), a timer (Node fires a
 * delay over 2^31 ms at once), or a task that retries forever.
 */
export const BOUNDS = {
  /** Conversations in flight (-j, max_workers). */
  concurrency: 1024,
  /** min_turns, max_turns. */
  turns: 100,
  /** max_retries per call. */
  retries: 20,
  /** retry_delay, seconds (the backoff itself is capped at 60 s). */
  retryDelaySeconds: 600,
  /** max_supplement_rounds. */
  supplementRounds: 20,
  /** api.timeout, seconds per call. */
  timeoutSeconds: 3600,
  /** Threads per llama model. */
  threads: 256,
} as const;

/**
 * An integer option ≥ `min`, written in decimal digits. `Number()` alone would take `''` (an unset
 * `"$SEED"`) as 0 and `0x10` as 16 without a word.
 *
 * @example
 * command.option('--seed <n>', 'run seed', integerOption(0)) // --seed 7 → 7; --seed '' → error: expected an integer ≥ 0, got ``
 */
export function integerOption(min: number, max?: number): (value: string) => number {
  return (value: string): number => {
    const n = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) throw new InvalidArgumentError(`expected an integer ${max === undefined ? `≥ ${min}` : `from ${min} to ${max}`}, got \`${value}\``);
    return n;
  };
}

/** A positive decimal number (`5`, `0.25`, `.5`); not `''`, `0x10`, `Infinity` or `1e400`. */
export function positiveNumberOption(value: string): number {
  const n = /^\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got \`${value}\``);
  return n;
}

/** `--shard i/n`: shard i (1-based) of n. */
export function shardOption(value: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (match === null || !Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index < 1 || index > count) {
    throw new InvalidArgumentError(`expected i/n with 1 ≤ i ≤ n (like 1/4), got \`${value}\``);
  }
  return { index, count };
}
