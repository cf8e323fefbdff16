// What a command tells the person at the terminal: notices and errors with one prefix, bad input lines up to a cap.
import { printable } from '../redact.js';

/** Bad input lines shown before only their count is kept. */
export const MAX_WARNINGS = 50;

/** Writes a line to stderr with the program's prefix (for errors before any command runs, and after). */
export const sayOnce = (message: string): void => void process.stderr.write(`personaflow: ${message}\n`);

/**
 * stderr for one command: `personaflow: ...` lines (notices unless quiet, and what must be said anyway),
 * input warnings (`file:LINE: ...`, the first MAX_WARNINGS of them), and a live line (the progress bar)
 * that is cleared before any of those is written.
 */
export class Reporter {
  #live: { clear(): void } | undefined;
  #warnings = 0;

  constructor(readonly quiet: boolean) {}

  /** Bad input lines reported so far (shown or not). */
  get warnings(): number {
    return this.#warnings;
  }

  /** The live line being drawn (or none): cleared before each message. */
  set live(line: { clear(): void } | undefined) {
    this.#live = line;
  }

  /** A line that is always shown: an error, a stop, the end of an interrupted run. */
  say(message: string): void {
    this.#live?.clear();
    sayOnce(message);
  }

  /** A notice or a summary: not shown with --quiet. */
  notice(message: string): void {
    if (!this.quiet) this.say(message);
  }

  /** A bad input line: shown up to MAX_WARNINGS, then counted. */
  warn(message: string): void {
    this.#warnings += 1;
    this.#live?.clear();
    // A bad line's message may quote the line itself (JSON.parse does): never raw control characters.
    if (this.#warnings <= MAX_WARNINGS) process.stderr.write(`${printable(message)}\n`);
    else if (this.#warnings === MAX_WARNINGS + 1) this.say('more bad lines follow; only the count is reported from here on');
  }
}
