// Reporter: stderr lines for one command; bad input lines are capped and never carry raw control characters.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_WARNINGS, Reporter } from '../../src/commands/reporter.js';

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
  it('regression: a bad line quoting NUL, a newline or an escape sequence is written as one escaped line', () => {
    capture();
    const report = new Reporter(false);
    report.warn('in.ndjson:3: invalid JSON: Unexpected token \u0000 in "x\ny\u001b[31m"');
    expect(written).toEqual(['in.ndjson:3: invalid JSON: Unexpected token \\u0000 in "x\\u000ay\\u001b[31m"\n']);
  });

  it('shows the first MAX_WARNINGS lines, then says once that only the count is kept', () => {
    capture();
    const report = new Reporter(false);
    for (let i = 0; i < MAX_WARNINGS + 5; i += 1) report.warn(`in:${i + 1}: bad`);
    expect(report.warnings).toBe(MAX_WARNINGS + 5);
    expect(written.length).toBe(MAX_WARNINGS + 1);
    expect(written.at(-1)).toBe('personaflow: more bad lines follow; only the count is reported from here on\n');
  });
});
