// The page's files (the script and style that scripts/bundle.js builds into dist/page/, Chart.js inside), the viewer's HTML, and the self-contained report's.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FatalError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';

/** Where the built page lives: dist/page/app.js and app.css (scripts/bundle.js). */
export const ASSETS_DIR = join(PACKAGE_ROOT, 'dist', 'page');

export interface Assets {
  readonly script: string;
  readonly style: string;
}

let cached: Promise<Assets> | undefined;

/** The built page script and style (read once). */
export function loadAssets(dir = ASSETS_DIR): Promise<Assets> {
  if (dir !== ASSETS_DIR) return read(dir);
  return (cached ??= read(dir).catch((error: unknown) => {
    cached = undefined;
    throw error;
  }));
}

async function read(dir: string): Promise<Assets> {
  try {
    const [script, style] = await Promise.all([readFile(join(dir, 'app.js'), 'utf8'), readFile(join(dir, 'app.css'), 'utf8')]);
    return { script, style };
  } catch (error) {
    throw new FatalError(`the viewer's page is missing from ${dir} (${(error as NodeJS.ErrnoException).code ?? 'error'}); run npm run build`);
  }
}

/** `text` safe between tags and inside a quoted attribute: & < > " ' as entities. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * `value` as JSON that can stand inside `<script type="application/json">`: every `<` (so no `</script>`
 * or `<!--` can end or bend the element), `>` and `&` as \u escapes, and U+2028/U+2029 too. JSON.parse
 * of the element's text gives `value` back.
 */
export function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The Content-Security-Policy of the viewer: its own script, style and API, nothing else (no inline script, no frames, no forms). */
export const VIEW_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The viewer's page: a shell that loads /app.js, which asks the API for everything. */
export const VIEW_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>personaflow view</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<noscript>The viewer needs JavaScript.</noscript>
<script src="/app.js"></script>
</body>
</html>
`;

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * One self-contained HTML file: the page's style and script inline, the report's data as JSON in a
 * `<script type="application/json">` the script reads. No network is needed to open it: its CSP allows
 * no connection at all, and only the inline script and style whose hashes it names, so even text that
 * escaped its escaping could not run.
 */
export function reportHtml(assets: Assets, data: unknown, title: string): string {
  if (/<\/(script|style)/i.test(assets.script) || /<!--/.test(assets.script) || /<\/style/i.test(assets.style)) {
    throw new FatalError('the built page script contains a closing tag and cannot be inlined; rebuild it');
  }
  const csp = `default-src 'none'; script-src ${sha256(assets.script)}; style-src ${sha256(assets.style)}; img-src data:; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<title>${escapeHtml(title)}</title>
<style>${assets.style}</style>
</head>
<body>
<script type="application/json" id="personaflow-data">${embedJson(data)}</script>
<script>${assets.script}</script>
</body>
</html>
`;
}
