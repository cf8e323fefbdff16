// The lines a generate run ends with: the result line and its exit code, and the targets line.
import { describe, expect, it } from 'vitest';
import { resultOf, targetsLine } from '../../src/commands/summary.js';

describe('resultOf', () => {
  it.each([
    [{}, 0, 'result: complete (exit 0)'],
    [{ failures: 2, shortfall: { personas: 0, missing: 0 } }, 0, 'result: complete (exit 0): 2 failed task(s) made up by supplement'],
    [{ failures: 3, shortfall: { personas: 2, missing: 3 } }, 3, 'result: incomplete (exit 3): 2 persona(s) short of their target by 3 interaction(s) (3 task(s) failed)'],
    [{ badLines: 4 }, 3, 'result: incomplete (exit 3): 4 bad input line(s) skipped'],
    [{ noTasks: true }, 3, 'result: incomplete (exit 3): the input held no task'],
    [{ budgetReached: true, badLines: 1 }, 3, 'result: incomplete (exit 3): 1 bad input line(s) skipped; --max-cost reached before every task started'],
    [{ interrupted: true, badLines: 1 }, 130, 'result: interrupted (exit 130)'],
    [{ fatal: true }, 1, 'result: stopped (exit 1): see the error above'],
  ])('regression: %j → exit %i (bad lines and empty input exited 0; a run whose failures supplement made up exited 3)', (ended, code, line) => {
    expect(resultOf(ended)).toEqual({ code, line });
  });
});

describe('targetsLine', () => {
  it('regression: after a resume it counts the directory\'s personas, not only those this run touched', () => {
    expect(targetsLine(400, [{ round: 0, personasShort: 0, missing: 0, tasks: 0, short: [] }], 3, { dir: 'run1', personasShort: 2, missing: 3 })).toBe('targets met: 398/400 personas in run1; 2 still short by 3 interaction(s)');
  });

  it('tells round by round how a fresh run met its targets', () => {
    expect(targetsLine(100, [{ round: 0, personasShort: 3, missing: 3, tasks: 0, short: [] }, { round: 1, personasShort: 0, missing: 0, tasks: 3, short: [] }], 3)).toBe('targets met: 97/100 personas after the main pass, 100/100 personas after round 1 (3 supplement tasks)');
  });
});
