// Source for `personaflow noise`: plain text lines or {"text": ..., "persona_features": ...} lines.
import * as z from 'zod';
import type { Features } from '../types.js';
import { badLineReporter, readLines, type ReadLinesOptions } from './ndjson.js';
import { formatIssues } from './personas.js';

/** One text to noise, with the persona it is typed by and the key its random draws are seeded with. */
export interface TextItem {
  readonly text: string;
  readonly persona: Features;
  /** `id` when the line has one, else the text itself: the same text gets the same noise for a seed. */
  readonly key: string;
  /** `file:LINE`, for messages. */
  readonly source: string;
}

const textLine = z
  .looseObject({
    id: z.union([z.string(), z.number()]).optional(),
    text: z.string().min(1).optional(),
    original_query: z.string().min(1).optional(),
    persona_features: z.record(z.string(), z.unknown()).optional(),
    features: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((line) => line.text !== undefined || line.original_query !== undefined, { message: 'needs "text" (or "original_query")', path: ['text'] });

export interface TextOptions extends ReadLinesOptions {
  readonly name: string;
  readonly strict?: boolean;
  readonly onWarning?: (message: string) => void;
}

/**
 * Reads texts to noise: a line that starts with `{` is JSON (`text`, optional `persona_features` and
 * `id`), any other non-blank line is the text itself. Bad lines are reported as `file:LINE: message` and
 * skipped, or end the stream with a ConfigError when `strict`.
 */
export async function* readTexts(input: AsyncIterable<Buffer | string>, options: TextOptions): AsyncGenerator<TextItem> {
  const report = badLineReporter(options);
  for await (const line of readLines(input, options)) {
    const source = `${options.name}:${line.line}`;
    if (line.error !== undefined) {
      report(`${source}: ${line.error}`);
      continue;
    }
    const trimmed = line.text.trim();
    if (trimmed === '') continue;
    if (!trimmed.startsWith('{')) {
      yield { text: line.text, persona: {}, key: line.text, source };
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (error) {
      report(`${source}: invalid JSON: ${(error as Error).message}`);
      continue;
    }
    const parsed = textLine.safeParse(json);
    if (!parsed.success) {
      report(`${source}: ${formatIssues(parsed.error)}`);
      continue;
    }
    const { id, persona_features: personaFeatures, features } = parsed.data;
    const text = (parsed.data.text ?? parsed.data.original_query) as string;
    yield { text, persona: personaFeatures ?? features ?? {}, key: id === undefined ? text : `id:${String(id)}`, source };
  }
}
