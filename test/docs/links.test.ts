// The documentation's links: every relative link in README.md, ARCHITECTURE.md and docs/*.md names a file
// that exists, and every #anchor a heading of that file (as GitHub renders it).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const pages = ['README.md', 'ARCHITECTURE.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => join('docs', name))];

/** Markdown outside fenced code blocks (a link-looking text in a code sample is not a link). */
const prose = (text: string): string => text.split(/^```.*$/m).filter((_part, index) => index % 2 === 0).join('\n');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, '').replace(/ /g, '-');

const anchorsOf = (file: string): Set<string> => new Set([...prose(readFileSync(file, 'utf8')).matchAll(/^#{1,6} (.+)$/gm)].map((match) => slug(match[1] ?? '')));

describe('documentation links', () => {
  it.each(pages)('%s: every relative link and anchor resolves', (page) => {
    const file = join(ROOT, page);
    const broken: string[] = [];
    for (const match of prose(readFileSync(file, 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1] ?? '';
      if (/^[a-z]+:/i.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const linked = path === '' ? file : join(dirname(file), path);
      if (!existsSync(linked)) broken.push(`${target}: no file ${relative(ROOT, linked)}`);
      else if (anchor !== undefined && linked.endsWith('.md') && !anchorsOf(linked).has(anchor)) broken.push(`${target}: no heading #${anchor} in ${relative(ROOT, linked)}`);
    }
    expect(broken).toEqual([]);
  });

  it('the README links every page of docs/', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const unlinked = pages.filter((page) => page.startsWith('docs/') && !readme.includes(`](${page})`) && !readme.includes(`](${page}#`));
    expect(unlinked).toEqual([]);
  });
});
