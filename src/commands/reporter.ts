// What a command tells the person at the terminal: one prefix for every stderr line, warnings and errors marked, bad input lines up to a cap, --verbose detail.
import { printable } from '../redact.js';

/** Bad input lines shown before only their count is kept. */
export const MAX_WARNINGS = 50;

/**
 * How serious a stderr line is. Every line starts `personaflow: `; a warning (something was skipped or is
 * off, the command goes on) adds `warning: `, an error (the command stops) `error: `, --verbose's per-call
 * detail `verbose: `. Notices, summaries and the `result:` line carry no level.
 */
export type Level = 'notice' | 'warning' | 'error' | 'verbose';

/**
 * A message as stderr shows it: each of its lines prefixed, so `grep '^personaflow: error:'` finds all of
 * an error and no line of stderr is without the program's name.
 *
 * @example
 * stderrLines('error', 'a.yaml:3: x: bad\na.yaml:5: y: bad')
 * // 'personaflow: error: a.yaml:3: x: bad\npersonaflow: error: a.yaml:5: y: bad\n'
 */
export function stderrLines(level: Level, message: string): string {
  const prefix = level === 'notice' ? 'personaflow: ' : `personaflow: ${level}: `;
  return `${message
    .split('\n')
    .map((line) => prefix + line)
    .join('\n')}\n`;
}

/** Writes an error to stderr (for errors before any command runs, and after). */
export const sayError = (message: string): void => void process.stderr.write(stderrLines('error', message));

/**
 * stderr for one command: notices (not with --quiet), warnings and errors (always), bad input lines as
 * warnings (`personaflow: warning: FILE:LINE: field: message`, the first MAX_WARNINGS of them), --verbose
 * detail, and a live line (the progress bar) that is cleared before any of those is written.
 */
export class Reporter {
  #live: { clear(): void } | undefined;
  #warnings = 0;

  constructor(
    readonly quiet: boolean,
    /** --verbose: `detail` lines are written. */
    readonly verbose = false,
  ) {}

  /** Bad input lines reported so far (shown or not). */
  get warnings(): number {
    return this.#warnings;
  }

  /** The live line being drawn (or none): cleared before each message. */
  set live(line: { clear(): void } | undefined) {
    this.#live = line;
  }

  /** Where every line goes: stderr, after clearing the live line. A reporter for another audience (the library's callbacks, validate's findings, an estimate inside a run) overrides this one method. */
  protected write(level: Level, message: string): void {
    this.#live?.clear();
    process.stderr.write(stderrLines(level, message));
  }

  /** A line that is always shown: a stop, the summary of an interrupted run, the `result:` line. */
  say(message: string): void {
    this.write('notice', message);
  }

  /** A notice or a summary: not shown with --quiet. */
  notice(message: string): void {
    if (!this.quiet) this.say(message);
  }

  /** Something was skipped or is off, and the command goes on: always shown. */
  warning(message: string): void {
    this.write('warning', message);
  }

  /** The command stops: always shown. */
  error(message: string): void {
    this.write('error', message);
  }

  /** With --verbose: one line of detail (a model call, a retry, a wait). */
  detail(message: string): void {
    if (this.verbose) this.write('verbose', message);
  }

  /** A bad input line (`FILE:LINE: message`): a warning, shown up to MAX_WARNINGS, then counted. */
  warn(message: string): void {
    this.#warnings += 1;
    // A bad line's message may quote the line itself (JSON.parse does): never raw control characters.
    if (this.#warnings <= MAX_WARNINGS) this.warning(printable(message));
    else if (this.#warnings === MAX_WARNINGS + 1) this.warning('more bad lines follow; only the count is reported from here on');
  }
}
