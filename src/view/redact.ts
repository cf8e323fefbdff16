// Secrets never leave the viewer: keys, tokens and passwords in run.json, metadata or failures are replaced before anything is served.

/** What a removed secret shows as. */
export const REDACTED = '[redacted]';

/** Field names that hold a secret (`api_key`, `apiKey`, `authorization`, `x-api-key`, `password`, ...). */
const SECRET_NAME = /(api[-_]?key|secret|token(?!s)|password|passwd|authorization|auth[-_]?header|bearer|cookie|credential)/i;
/** Named like a secret but is not one: the simulated user's stop token. (Token counts are numbers, which are never redacted.) */
const NOT_SECRET = /stop_?token/i;

/**
 * Text that looks like a key wherever it stands: OpenAI-style `sk-...`, `Bearer ...`, and the user and
 * password of a URL (`https://user:pass@host`).
 */
const SECRET_TEXT: readonly (readonly [RegExp, string])[] = [
  [/\b(sk|rk|pk)-[A-Za-z0-9_-]{12,}/g, REDACTED],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi, `Bearer ${REDACTED}`],
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+(:[^/\s@]*)?@/gi, `$1${REDACTED}@`],
];

/** `text` with anything that looks like a key replaced. */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_TEXT) out = out.replace(pattern, replacement);
  return out;
}

const isSecretName = (name: string): boolean => SECRET_NAME.test(name) && !NOT_SECRET.test(name);

/**
 * A copy of `value` (parsed JSON) in which every field named like a secret is REDACTED and every string
 * that looks like a key is masked. Objects are rebuilt with `Object.fromEntries`, so a key such as
 * `__proto__` stays a plain field. Depth is bounded: deeper parts are cut (hostile files nest deeply).
 *
 * @example
 * redact({ api_key: 'sk-abc', base_url: 'https://u:p@host/v1' }) // { api_key: '[redacted]', base_url: 'https://[redacted]@host/v1' }
 */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value !== 'object' || value === null) return value;
  if (depth > 32) return '[too deep]';
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, isSecretName(key) && item !== null && typeof item !== 'number' && typeof item !== 'boolean' ? REDACTED : redact(item, depth + 1)]));
}
