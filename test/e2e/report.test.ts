// End to end: `personaflow report` writes one HTML file that opens in a browser with no network, draws the dashboard, and shows hostile text as text.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserMissing, launchBrowser, type PageWindow } from '../helpers/browser.js';
import { ensureBuilt, runCli } from '../helpers/cli.js';
import { HOSTILE_FEATURE, SCRIPT_REPLY, addHostile, simRun, type RunInteraction } from '../helpers/rundir.js';

let work: string;
let dir: string;
let interactions: RunInteraction[];

beforeAll(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'personaflow-report-e2e-'));
  let generated: RunInteraction[];
  ({ dir, interactions: generated } = await simRun(work, 8, 3));
  interactions = [...generated, await addHostile(dir, generated[1]!)];
}, 60_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The sampled interaction ids a report embeds. */
const sampled = (html: string): string[] => {
  const json = /<script type="application\/json" id="personaflow-data">(.*?)<\/script>/s.exec(html)?.[1] ?? 'null';
  return (JSON.parse(json) as { conversations: { id: string }[] }).conversations.map((c) => c.id);
};

describe('personaflow report', () => {
  it('writes the dashboard of every interaction and a seeded sample; the same seed, the same sample', async () => {
    const out = join(work, 'a.html');
    const run = await runCli(['report', dir, '--out', out, '--sample', '5', '--seed', '9']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(new RegExp(`^personaflow: report of ${interactions.length} interactions with 5 sampled conversations \\(\\d+ KiB\\) in [\\d.]+ s → ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
    const html = await readFile(out, 'utf8');
    expect(sampled(html)).toHaveLength(5);
    const again = await runCli(['report', dir, '--sample', '5', '--seed', '9', '-q']);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    expect(again.stdout.startsWith('<!doctype html>')).toBe(true);
    expect(sampled(again.stdout)).toEqual(sampled(html));
    const other = await runCli(['report', dir, '--sample', '5', '--seed', '10', '-q']);
    expect(sampled(other.stdout)).not.toEqual(sampled(html));
  });

  it('refuses what is not a generate --out directory, with exit 2', async () => {
    const run = await runCli(['report', join(work, 'nope'), '--out', join(work, 'x.html')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('cannot open (ENOENT)');
  });

  describe.skipIf(browserMissing !== undefined)(`in Chromium, offline${browserMissing === undefined ? '' : ` (skipped: ${browserMissing})`}`, () => {
    let browser: Browser | undefined;
    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('opens with no network, draws the dashboard, and shows every sampled conversation with hostile text as text', async () => {
      const out = join(work, 'all.html');
      const run = await runCli(['report', dir, '--out', out, '--sample', '1000']);
      expect(run.code, run.stderr).toBe(0);
      const context = await browser!.newContext({ offline: true });
      const page = await context.newPage();
      const requests: string[] = [];
      const problems: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      page.on('pageerror', (error) => problems.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
      });
      const url = pathToFileURL(out).href;
      await page.goto(url);
      await page.waitForSelector('body[data-ready]');
      expect(await page.locator('tr.row').count()).toBe(interactions.length);
      expect(await page.locator('.banner').textContent()).toContain(`all ${interactions.length} interactions`);

      await page.fill('input[data-filter="persona"]', 'hostile');
      await page.waitForFunction(() => (globalThis as unknown as PageWindow).document.querySelectorAll('tr.row').length === 1);
      await page.click('tr.row');
      await page.waitForSelector('.conversation h2:text-is("interaction_persona_hostile_x")');
      const replies = await page.locator('.conversation .msg.assistant .text').allTextContents();
      expect(replies.length).toBeGreaterThan(0);
      expect(replies.every((text) => text === SCRIPT_REPLY)).toBe(true);
      expect(await page.locator('.conversation .features dd').allTextContents()).toContain(HOSTILE_FEATURE);
      expect(await page.evaluate(() => (globalThis as unknown as PageWindow).__pwned)).toBeUndefined();
      expect(await page.locator('img, svg, iframe, b').count()).toBe(0);

      await page.click('a.tab:text("Dashboard")');
      await page.waitForSelector('[data-chart="noise"] canvas');
      expect(await page.locator('.card canvas').count()).toBeGreaterThanOrEqual(8);
      // One request: the file itself. No CSP violation, no error.
      expect(requests).toEqual([url]);
      expect(problems).toEqual([]);
      await context.close();
    });
  });
});
