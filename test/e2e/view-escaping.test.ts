// Property, in a real browser: whatever text a model or a persona file wrote, the page shows it as that text, and none of it becomes an element or runs.
import { rm } from 'node:fs/promises';
import { fc } from '@fast-check/vitest';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataset } from '../../src/view/dataset.js';
import { startViewer, type Viewer } from '../../src/view/server.js';
import { browserMissing, launchBrowser, type PageWindow } from '../helpers/browser.js';
import { ensureBuilt } from '../helpers/cli.js';
import { HOSTILE, interaction, writeDir } from '../view/fixtures.js';

/** Strings of every kind: any code point (well-formed), markup characters piled up, and known breakouts. */
const text = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s && s.trim() !== ''),
  fc.string({ unit: fc.constantFrom('<', '>', '/', '"', "'", '&', '=', ' ', 'a', 'on', 'script', 'img', 'err', '!--', '\n'), minLength: 1, maxLength: 30 }).filter((s) => s.trim() !== ''),
  fc.constantFrom(...HOSTILE),
);

interface Case {
  readonly persona: string;
  readonly feature: string;
  readonly user: string;
  readonly clean: string;
  readonly assistant: string;
  readonly endReason: string;
  readonly guard: string;
  readonly verdict: string;
  readonly rejection: string;
}

const cases: Case[] = fc.sample(fc.record({ persona: text, feature: text, user: text, clean: text, assistant: text, endReason: text, guard: text, verdict: text, rejection: text }), { numRuns: 24, seed: 24 });

let dir: string;
let offsets: number[];
let dataset: Dataset | undefined;
let viewer: Viewer | undefined;
let browser: Browser | undefined;
let page: Page;

describe.skipIf(browserMissing !== undefined)(`every text shown as text, in Chromium${browserMissing === undefined ? '' : ` (skipped: ${browserMissing})`}`, () => {
  beforeAll(async () => {
    ensureBuilt();
    ({ dir, offsets } = await writeDir({
      interactions: cases.map((c, i) =>
        interaction({ persona: c.persona, query: `q${i}`, features: { role: c.feature }, turns: [{ user: `${c.user}!`, clean: c.clean, assistant: c.assistant }], endReason: c.endReason, guard: { [c.guard]: 1 }, quality: { verdict: c.verdict, scores: { s: i % 5 } } }),
      ),
      rejections: cases.map((c, i) => ({ persona_id: c.persona, query_id: `q${i}`, reason: c.guard, text: c.rejection })),
    }));
    dataset = await Dataset.open(dir);
    await dataset.start();
    viewer = await startViewer(dataset);
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
    await page.goto(viewer.url);
    await page.waitForSelector('body[data-scanned="true"]');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await viewer?.close();
    await dataset?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('in the list and in each conversation', async () => {
    expect(await page.locator('tr.row .persona').allTextContents()).toEqual(cases.map((c) => c.persona));
    for (const [i, c] of cases.entries()) {
      await page.goto(`${viewer!.url}#list?at=${offsets[i]}`);
      await page.waitForSelector(`.conversation[data-at="${offsets[i]}"]`);
      const shown = await page.evaluate(() => {
        const { document } = globalThis as unknown as PageWindow;
        const all = (selector: string): string[] => [...document.querySelectorAll(selector)].map((e) => e.textContent ?? '');
        return {
          id: all('.conversation h2'),
          persona: all('.conversation .persona-id'),
          feature: all('.conversation .features dd'),
          noisy: all('.conversation [data-part="noisy"]'),
          clean: all('.conversation [data-part="clean"]'),
          assistant: all('.conversation .msg.assistant .text'),
          end: all('.conversation .badge.end'),
          verdict: all('.conversation .badge.verdict'),
          rejection: all('.conversation .rejection .text'),
          reasons: all('.conversation .rejection .badge.reason'),
          // Only the page's own kinds of element exist, and nothing the data wrote ran.
          tags: [...new Set([...document.body.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()))].sort(),
          scripts: document.querySelectorAll('script').length,
          handlers: [...document.body.querySelectorAll('*')].flatMap((e) => e.getAttributeNames().filter((name) => name.startsWith('on'))),
          pwned: (globalThis as unknown as PageWindow).__pwned,
        };
      });
      expect(shown).toMatchObject({
        id: [`interaction_${c.persona}_q${i}`],
        persona: [c.persona],
        feature: [c.feature],
        noisy: [`${c.user}!`],
        clean: [c.clean],
        assistant: [c.assistant],
        end: [`end: ${c.endReason}`],
        verdict: [`verdict: ${c.verdict}`],
        rejection: [c.rejection],
        reasons: [c.guard],
        scripts: 1,
        handlers: [],
        pwned: undefined,
      });
      const allowed = ['a', 'article', 'button', 'dd', 'details', 'div', 'dl', 'dt', 'form', 'h1', 'h2', 'h3', 'header', 'input', 'label', 'li', 'main', 'nav', 'noscript', 'ol', 'option', 'p', 'pre', 'script', 'section', 'select', 'span', 'strong', 'summary', 'table', 'tbody', 'td', 'th', 'thead', 'tr'];
      expect(shown.tags.filter((tag) => !allowed.includes(tag))).toEqual([]);
    }
  }, 120_000);
});
