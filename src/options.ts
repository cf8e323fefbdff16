// Parsers for numeric command-line options, shared by every command: strict, so a typo is an error, not a value.
import { InvalidArgumentError } from 'commander';

/**
 * An integer option ≥ `min`, written in decimal digits. `Number()` alone would take `''` (an unset
 * `"$SEED"`) as 0 and `0x10` as 16 without a word.
 *
 * @example
 * command.option('--seed <n>', 'run seed', integerOption(0)) // --seed 7 → 7; --seed '' → error: expected an integer ≥ 0, got ``
 */
export function integerOption(min: number): (value: string) => number {
  return (value: string): number => {
    const n = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got \`${value}\``);
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
