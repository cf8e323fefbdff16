// Reporter: one prefix for every stderr line, warnings and errors marked, bad input lines capped and never carrying raw control characters.
import { fc, test } from '@fast-check/vitest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_WARNINGS, Reporter, stderrLines } from '../../src/commands/reporter.js';

let written: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  written = [];
});
const capture = (): void => {
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
};

describe('Reporter.warn', () => {
  it('regression: a bad line quoting NUL, a newline or an escape sequence is written as one escaped warning line', () => {
    capture();
    const report = new Reporter(false);
    report.warn('in.ndjson:3: invalid JSON: Unexpected token \u0000 in "x\ny\u001b[31m"');
    expect(written).toEqual(['personaflow: warning: in.ndjson:3: invalid JSON: Unexpected token \\u0000 in "x\\u000ay\\u001b[31m"\n']);
  });

  it('shows the first MAX_WARNINGS lines, then says once that only the count is kept', () => {
    capture();
    const report = new Reporter(false);
    for (let i = 0; i < MAX_WARNINGS + 5; i += 1) report.warn(`in:${i + 1}: bad`);
    expect(report.warnings).toBe(MAX_WARNINGS + 5);
    expect(written.length).toBe(MAX_WARNINGS + 1);
    expect(written[0]).toBe('personaflow: warning: in:1: bad\n');
    expect(written.at(-1)).toBe('personaflow: warning: more bad lines follow; only the count is reported from here on\n');
  });
});

describe('stderr levels', () => {
  it('marks warnings and errors, keeps notices plain, hides notices and verbose detail unless asked', () => {
    capture();
    const quiet = new Reporter(true);
    quiet.notice('a notice');
    quiet.detail('a call');
    quiet.warning('a warning');
    quiet.error('an error');
    quiet.say('result: complete (exit 0)');
    expect(written).toEqual(['personaflow: warning: a warning\n', 'personaflow: error: an error\n', 'personaflow: result: complete (exit 0)\n']);
    written = [];
    const verbose = new Reporter(false, true);
    verbose.notice('a notice');
    verbose.detail('call assistant sim/m (reply, attempt 1): ok in 3 ms');
    expect(written).toEqual(['personaflow: a notice\n', 'personaflow: verbose: call assistant sim/m (reply, attempt 1): ok in 3 ms\n']);
  });

  it('prefixes every line of a message with several (a config with several errors)', () => {
    expect(stderrLines('error', 'a.yaml:3: x: bad\na.yaml:5: y: bad')).toBe('personaflow: error: a.yaml:3: x: bad\npersonaflow: error: a.yaml:5: y: bad\n');
  });

  it('clears the live line before writing', () => {
    capture();
    const report = new Reporter(false);
    const cleared: string[] = [];
    report.live = { clear: () => cleared.push(`cleared before ${written.length}`) };
    report.warning('w');
    report.error('e');
    expect(cleared).toEqual(['cleared before 0', 'cleared before 1']);
  });

  test.prop([fc.constantFrom('notice' as const, 'warning' as const, 'error' as const, 'verbose' as const), fc.string()])('every line it writes starts with the prefix of its level', (level, message) => {
    const lines = stderrLines(level, message).slice(0, -1).split('\n');
    expect(lines).toHaveLength(message.split('\n').length);
    for (const line of lines) expect(line.startsWith(level === 'notice' ? 'personaflow: ' : `personaflow: ${level}: `)).toBe(true);
  });
});
