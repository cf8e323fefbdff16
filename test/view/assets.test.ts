// The report's HTML: data embedded so that no string can end its script element, titles escaped, and a CSP naming exactly the inline script and style.
import { createHash } from 'node:crypto';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { embedJson, escapeHtml, reportHtml } from '../../src/view/assets.js';
import { HOSTILE } from './fixtures.js';

const anyText = fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom(...HOSTILE), fc.string({ unit: fc.constantFrom('<', '/', 's', 'c', 'r', 'i', 'p', 't', '>', '!', '-', '&', '"', "'", '\u2028') }));

const decodeEntities = (html: string): string => html.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));

describe('embedJson', () => {
  test.prop([fc.jsonValue(), anyText])('gives the value back through JSON.parse and holds no < > &', (value, text) => {
    const data = { value, text, nested: [text, { [text]: text }] };
    const embedded = embedJson(data);
    expect(embedded).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(embedded)).toEqual(JSON.parse(JSON.stringify(data)));
  });
});

describe('escapeHtml', () => {
  test.prop([anyText])('leaves no markup character and decodes back to the text', (text) => {
    const escaped = escapeHtml(text);
    expect(escaped).not.toMatch(/[<>"']/);
    expect(escaped.replace(/&#\d+;/g, '')).not.toContain('&');
    expect(decodeEntities(escaped)).toBe(text);
  });
});

describe('reportHtml', () => {
  const assets = { script: 'document.body.dataset.ok = "1";', style: 'body { color: red; }' };

  it('inlines the script and style under a CSP that names their hashes and allows no connection', () => {
    const html = reportHtml(assets, { hostile: HOSTILE }, '<b>title</b>');
    const hash = (text: string): string => createHash('sha256').update(text).digest('base64');
    const csp = decodeEntities(/<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html)?.[1] ?? '');
    expect(csp).toContain(`script-src 'sha256-${hash(assets.script)}'`);
    expect(csp).toContain(`style-src 'sha256-${hash(assets.style)}'`);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).not.toMatch(/connect-src/);
    expect(html).toContain('<title>&#60;b&#62;title&#60;/b&#62;</title>');
    // One script element of data and one of code, whatever the data held.
    expect(html.match(/<script/g)).toHaveLength(2);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
  });

  it('refuses a script that would close its own element', () => {
    expect(() => reportHtml({ script: 'var s = "</script>";', style: '' }, {}, 't')).toThrow(/closing tag/);
  });
});
