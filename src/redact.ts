// What may be shown of untrusted or secret text: control characters escaped, ids quoted, URLs without credentials, secrets masked.
/**
 * `text` with every character a terminal would act on escaped as `\uXXXX`: C0 controls (NUL, newline,
 * ESC, ...), DEL, C1 controls, line and paragraph separators and bidirectional overrides. For data
 * echoed on stderr (ids, input snippets), so an input line cannot forge a log line or move the cursor.
 *
 * @example
 * printable('a\nb\u0000') // 'a\\u000ab\\u0000'
 */
export const printable = (text: string): string =>
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** An id as messages show it: in double quotes, printable, a quote inside escaped (`"a\"b"`). */
export const quoted = (id: string): string => `"${printable(id.replaceAll('\\', '\\\\').replaceAll('"', '\\"'))}"`;

/**
 * A URL as messages and run.json may show it: no user name or password, and every query value replaced
 * by `***` (proxies and Azure-style endpoints carry keys there). Text that is not a URL is shown as
 * `(not a URL)`, since it may be anything, a key pasted in the wrong place included.
 *
 * @example
 * safeUrl('https://user:pw@proxy.example/v1?api-key=abc') // 'https://proxy.example/v1?api-key=***'
 */
export function safeUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '(not a URL)';
  }
  url.username = '';
  url.password = '';
  for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, '***');
  return url.href.replaceAll('%2A%2A%2A', '***');
}

/** The secrets a URL carries (its password, user name and query values), for `redact`. */
export function urlSecrets(text: string | undefined): string[] {
  if (text === undefined) return [];
  try {
    const url = new URL(text);
    return [decodeURIComponent(url.password), decodeURIComponent(url.username), ...url.searchParams.values()].filter((secret) => secret !== '');
  } catch {
    return [];
  }
}

/** Replaces every occurrence of each secret (4 characters or more) in `text` with `***`. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) if (secret !== undefined && secret.length >= 4) out = out.split(secret).join('***');
  return out;
}
