// Source for `personaflow noise`: plain text lines or {"text": ..., "persona_features": ...} lines.
import * as z from 'zod';
import type { TextItem } from '../types.js';
import type { ReadLinesOptions } from './ndjson.js';
import { readRecords } from './records.js';

/** A `{"text": ...}` line (a plain text line becomes `{ text }`). */
const textLine = z
  .looseObject({
    id: z.union([z.string(), z.number()]).optional(),
    text: z.string().min(1).optional(),
    original_query: z.string().min(1).optional(),
    persona_features: z.record(z.string(), z.unknown()).optional(),
    features: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((line) => line.text !== undefined || line.original_query !== undefined, { message: 'needs "text" (or "original_query")', path: ['text'] });
type TextLine = z.infer<typeof textLine>;

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
  const plain = (text: string): TextLine => ({ text });
  for await (const { value, where } of readRecords<TextLine>(input, textLine, { ...options, plain })) {
    const { id, persona_features: personaFeatures, features } = value;
    const text = (value.text ?? value.original_query) as string;
    yield { text, persona: personaFeatures ?? features ?? {}, key: id === undefined ? text : `id:${String(id)}`, source: where };
  }
}
