// NDJSON records: each line read, parsed and checked against a schema; a bad line reported as FILE:LINE or, strict, fatal.
import type * as z from 'zod';
import { badLineReporter, readLines, type ReadLinesOptions } from './ndjson.js';

/**
 * Deepest nesting of arrays and objects a record may have (a persona's features, an interaction's
 * metadata are a few levels deep). Deeper ones are refused as bad lines: JSON.stringify, zod and every
 * walk over a value recurse, and 200,000 levels of `[[[...]]]` overflowed the stack mid-run.
 */
export const MAX_NESTING = 64;

/** Whether `value` nests at most `max` levels of arrays and objects, found without recursion. */
export function nestsWithin(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= max) return false;
    for (const child of Array.isArray(current) ? current : Object.values(current)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return true;
}

/** A zod error as one line: `queries[0].original_query: Invalid input; persona_id: Required`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '');
      return path === '' ? issue.message : `${path}: ${issue.message}`;
    })
    .join('; ');
}

export interface RecordOptions<T> extends ReadLinesOptions {
  /** The input's name in messages (`personas.ndjson`, `stdin`). */
  readonly name: string;
  /** Stop at the first bad line (a ConfigError) instead of reporting it and going on. */
  readonly strict?: boolean | undefined;
  readonly onWarning?: ((message: string) => void) | undefined;
  /** Said before a schema's issues (`not an interaction: `). */
  readonly what?: string;
  /** A non-blank line that does not open with `{` as a record of its own (a plain text line), instead of invalid JSON. */
  readonly plain?: (text: string) => T;
  /** Counts each line read (blank ones too), and each bad one. */
  readonly onLine?: () => void;
  readonly onBadLine?: () => void;
  /** Checked before each line: true ends the records there. */
  readonly stopped?: () => boolean;
}

/** One good record and where it came from. */
export interface Record<T> {
  readonly value: T;
  /** `file:LINE`. */
  readonly where: string;
  /** Reports a problem with this record the way bad lines are reported (strict: fatal). */
  readonly report: (message: string) => void;
}

/**
 * Reads `input` line by line, on demand, and yields each line that parses as JSON and passes `schema`.
 * Blank lines are skipped; a line that is not UTF-8, not JSON or not valid is reported as
 * `file:LINE: message` through `onWarning` and skipped, or, `strict`, ends the records with a ConfigError.
 */
export async function* readRecords<T>(input: AsyncIterable<Buffer | string>, schema: z.ZodType<T>, options: RecordOptions<T>): AsyncGenerator<Record<T>> {
  const report = badLineReporter(options);
  const bad = (message: string): void => {
    options.onBadLine?.();
    report(message);
  };
  for await (const line of readLines(input, options)) {
    if (options.stopped?.() === true) return;
    options.onLine?.();
    const where = `${options.name}:${line.line}`;
    if (line.error !== undefined) {
      bad(`${where}: ${line.error}`);
      continue;
    }
    const text = line.text.trim();
    if (text === '') continue;
    if (options.plain !== undefined && !text.startsWith('{')) {
      yield { value: options.plain(line.text), where, report };
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      bad(`${where}: invalid JSON: ${(error as Error).message}`);
      continue;
    }
    if (!nestsWithin(json, MAX_NESTING)) {
      bad(`${where}: nested more than ${MAX_NESTING} levels deep`);
      continue;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      bad(`${where}: ${options.what ?? ''}${formatIssues(parsed.error)}`);
      continue;
    }
    yield { value: parsed.data, where, report };
  }
}
