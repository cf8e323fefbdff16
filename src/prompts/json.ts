// Reading models' answers: a code fence taken off, a JSON object found in the text around it.

/** The text without a Markdown code fence around it (an opening ```lang line and a closing ```, each if present). */
export const stripFence = (text: string): string =>
  text
    .trim()
    .replace(/^```[a-z]*\s*/i, '')
    .replace(/\s*```$/, '')
    .trim();

/**
 * The JSON object in an answer (a code fence and text around it tolerated), or why there is none:
 * `missing` (no braces), `cut` (an opening brace first and no closing one), `invalid` (braces around
 * something that does not parse as an object).
 */
export function jsonIn(content: string): { readonly object: Record<string, unknown>; readonly start: number } | { readonly problem: 'missing' | 'cut' | 'invalid'; readonly start: number } {
  const body = stripFence(content);
  const start = body.indexOf('{');
  const end = body.lastIndexOf('}');
  if (start < 0 || end <= start) return { problem: start === 0 ? 'cut' : 'missing', start };
  try {
    const parsed: unknown = JSON.parse(body.slice(start, end + 1));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? { object: parsed as Record<string, unknown>, start } : { problem: 'invalid', start };
  } catch {
    return { problem: 'invalid', start };
  }
}

/** The JSON object in an answer, or undefined. */
export function jsonObjectIn(content: string): Record<string, unknown> | undefined {
  const found = jsonIn(content);
  return 'object' in found ? found.object : undefined;
}
