// Numeric command-line options: decimal numbers only, so an unset variable or a typo is an error, not a value.
import { fc, test } from '@fast-check/vitest';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { BOUNDS, integerOption, positiveNumberOption } from '../src/options.js';

describe('integerOption', () => {
  test.prop([fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })])('reads any decimal integer at or above the minimum', (n) => {
    expect(integerOption(0)(String(n))).toBe(n);
  });

  it.each(['', ' ', ' 7', '0x10', '1e3', '1.5', 'seven', '9007199254740993'])('refuses %j', (text) => {
    expect(() => integerOption(0)(text)).toThrow(InvalidArgumentError);
  });

  it('refuses a value below the minimum, naming it', () => {
    expect(() => integerOption(1)('0')).toThrow('expected an integer ≥ 1, got `0`');
  });

  it('regression: refuses a value over the maximum (-j 100000 overflowed the stack)', () => {
    expect(() => integerOption(1, BOUNDS.concurrency)('100000')).toThrow('expected an integer from 1 to 1024, got `100000`');
    expect(integerOption(1, BOUNDS.concurrency)('1024')).toBe(1024);
  });
});

describe('positiveNumberOption', () => {
  it.each([['5', 5], ['0.25', 0.25], ['.5', 0.5], ['2e-3', 0.002], ['+3', 3]])('reads %j', (text, value) => {
    expect(positiveNumberOption(text)).toBe(value);
  });

  it.each(['', '0', '-1', '0x10', 'Infinity', '1e400', 'NaN', '5 '])('refuses %j', (text) => {
    expect(() => positiveNumberOption(text)).toThrow(InvalidArgumentError);
  });
});
