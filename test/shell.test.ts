// shellWord: what personaflow prints for a person to paste reads back, through a real POSIX shell, as the word it quoted.
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shellWord } from '../src/shell.js';

/** The words a real `sh` reads from `printf '%s\0' WORDS…` (NUL-separated: a word may hold newlines). */
function throughShell(words: string[]): string[] {
  const run = spawnSync('sh', ['-c', `printf '%s\\0' ${words.join(' ')}`], { encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.split('\0').slice(0, -1);
}

describe('shellWord', () => {
  it('a real sh reads every quoted word back as it was (property; any text without NUL)', () => {
    // Many words to one shell: one spawn per 200 generated words, not per word.
    const word = fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...` '"\\$\`!*?;&|<>(){}[]~#\n\t=%@,.:/-+aZ09é`) }));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 200 }), (words) => {
        const clean = words.map((w) => w.replaceAll('\0', ''));
        expect(throughShell(clean.map(shellWord))).toEqual(clean);
      }),
      { numRuns: 25 },
    );
  });

  it('leaves a plain word bare, and quotes one the shell would split, expand or glob', () => {
    expect(shellWord('runs/2026-12-08_a.b@v1:x=1,%2')).toBe('runs/2026-12-08_a.b@v1:x=1,%2');
    expect(shellWord('My Runs/out')).toBe("'My Runs/out'");
    expect(shellWord("it's")).toBe("'it'\\''s'");
    expect(shellWord('*.ndjson')).toBe("'*.ndjson'");
    expect(shellWord('')).toBe("''");
  });
});
