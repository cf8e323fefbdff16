// End to end in a real browser: `personaflow view` over a sim-generated directory: filter, open a conversation, see the clean and the noisy turn, and an injected <script> reply shown as text.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserMissing, launchBrowser, type PageWindow } from '../helpers/browser.js';
import { BIN, childEnv, ensureBuilt, runCli } from '../helpers/cli.js';
import { interaction, writeDir } from '../view/fixtures.js';
import { HOSTILE_CLEAN, HOSTILE_FEATURE, HOSTILE_REJECTION, SCRIPT_REPLY, addHostile, simRun, type RunInteraction } from '../helpers/rundir.js';

let work: string;
let dir: string;
let interactions: RunInteraction[];
let hostile: RunInteraction;
let view: { child: ChildProcess; url: string; stderr: () => string } | undefined;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

/** `personaflow view DIR` as a child process; resolves once it has printed its address. */
async function startView(args: string[]): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [BIN, 'view', ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const match = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
      if (match !== null) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`view exited ${code}: ${stderr}`)));
  });
  expect(stdout).toBe('');
  return { child, url, stderr: () => stderr };
}

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The interaction ids of the rows shown. */
const rowIds = (): Promise<string[]> => page.evaluate(() => [...(globalThis as unknown as PageWindow).document.querySelectorAll('tr.row')].map((row) => row.dataset.id ?? ''));

const texts = (selector: string): Promise<string[]> => page.locator(selector).allTextContents();
const status = async (): Promise<string> => (await page.locator('.list .status').textContent()) ?? '';

describe.skipIf(browserMissing !== undefined)(`personaflow view in Chromium${browserMissing === undefined ? '' : ` (skipped: ${browserMissing})`}`, () => {
  beforeAll(async () => {
    ensureBuilt();
    work = await mkdtemp(join(tmpdir(), 'personaflow-view-e2e-'));
    let generated: RunInteraction[];
    ({ dir, interactions: generated } = await simRun(work, 16));
    // A reply from a hostile model, in a conversation of a hostile persona file, with a rejected reply of its own.
    hostile = await addHostile(dir, generated[0]!);
    interactions = [...generated, hostile];
    view = await startView([dir]);
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await page.goto(view.url);
    await page.waitForSelector('body[data-scanned="true"]');
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    view?.child.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  });

  it('opens the directory and lists every conversation', async () => {
    expect(await status()).toBe(`${interactions.length} conversations`);
    expect(await page.locator('tr.row').count()).toBe(Math.min(50, interactions.length));
    expect(await page.locator('header .headline').textContent()).toContain(`${interactions.length} interactions · 0 failures · 1 rejected replies`);
  });

  it('filters by a persona feature, then by noise', async () => {
    await page.selectOption('select[data-filter="feature:role"]', 'nurse');
    const nurses = interactions.filter((i) => i.persona_features.role === 'nurse');
    await page.waitForFunction((n) => (globalThis as unknown as PageWindow).document.querySelector('.list .status')?.textContent === `${n} matching conversations`, nurses.length);
    expect((await rowIds()).sort()).toEqual(nurses.map((i) => i.interaction_id).sort());
    expect(page.url()).toContain('f.role=nurse');

    await page.selectOption('select[data-filter="noised"]', 'no');
    const clean = nurses.filter((i) => !i.messages.some((m) => m.role === 'user' && m.metadata.was_noised === true));
    await page.waitForFunction((n) => (globalThis as unknown as PageWindow).document.querySelector('.list .status')?.textContent === `${n} matching conversation${n === 1 ? '' : 's'}`, clean.length);
    expect(await rowIds()).toEqual(clean.map((i) => i.interaction_id));
    await page.click('button.clear');
    await page.waitForFunction((n) => (globalThis as unknown as PageWindow).document.querySelector('.list .status')?.textContent === `${n} conversations`, interactions.length);
  });

  it('opens a conversation and shows a noised user turn beside its clean version', async () => {
    const noisy = interactions.find((i) => i !== hostile && i.messages.some((m) => m.role === 'user' && m.metadata.was_noised === true && m.metadata.clean_version !== m.content))!;
    // The persona filter matches a part of the id: persona_1 also shows persona_10, persona_11...
    const shown = interactions.filter((i) => i.persona_id.includes(noisy.persona_id)).length;
    await page.fill('input[data-filter="persona"]', noisy.persona_id);
    await page.waitForFunction(
      ([id, n]) => {
        const rows = [...(globalThis as unknown as PageWindow).document.querySelectorAll('tr.row')];
        return rows.some((row) => row.dataset.id === id) && rows.length === n;
      },
      [noisy.interaction_id, shown] as const,
    );
    await page.click(`tr.row[data-id="${noisy.interaction_id}"]`);
    await page.waitForSelector(`.conversation h2:text-is("${noisy.interaction_id}")`);
    const users = noisy.messages.filter((m) => m.role === 'user');
    const noised = users.filter((m) => m.metadata.was_noised === true);
    expect(await texts('.conversation [data-part="noisy"]')).toEqual(noised.map((m) => m.content));
    expect(await texts('.conversation [data-part="clean"]')).toEqual(noised.map((m) => m.metadata.clean_version));
    expect(await texts('.conversation .msg.assistant .text')).toEqual(noisy.messages.filter((m) => m.role === 'assistant').map((m) => m.content));
    expect(await page.locator('.conversation .features dd').allTextContents()).toEqual(Object.values(noisy.persona_features));
  });

  it('shows an injected <script> reply, and every other hostile text, as text', async () => {
    await page.fill('input[data-filter="persona"]', 'hostile');
    await page.waitForFunction(() => (globalThis as unknown as PageWindow).document.querySelectorAll('tr.row').length === 1);
    await page.click('tr.row');
    await page.waitForSelector('.conversation h2:text-is("interaction_persona_hostile_x")');
    const replies = await texts('.conversation .msg.assistant .text');
    expect(replies.length).toBeGreaterThan(0);
    expect(replies.every((text) => text === SCRIPT_REPLY)).toBe(true);
    expect(await texts('.conversation [data-part="clean"]')).toEqual([HOSTILE_CLEAN]);
    expect(await texts('.conversation .features dd')).toContain(HOSTILE_FEATURE);
    expect(await texts('.conversation .rejection .text')).toEqual([HOSTILE_REJECTION]);
    expect(await texts('.conversation .badge.end')).toEqual(['end: <b>max_turns</b>']);
    // Nothing ran and nothing became an element: the page's one script, and no img, svg, iframe or b.
    expect(await page.evaluate(() => (globalThis as unknown as PageWindow).__pwned)).toBeUndefined();
    expect(await page.evaluate(() => (globalThis as unknown as PageWindow).document.querySelectorAll('script').length)).toBe(1);
    expect(await page.locator('img, svg, iframe, b').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('draws the dashboard with Chart.js on canvases', async () => {
    await page.click('a.tab:text("Dashboard")');
    await page.waitForSelector('[data-chart="turns"] canvas');
    const drawn = await page.evaluate(() => [...(globalThis as unknown as PageWindow).document.querySelectorAll('.card canvas')].map((canvas) => [canvas.closest('.card')?.dataset.chart ?? '', canvas.width > 0 && canvas.height > 0] as const));
    expect(Object.fromEntries(drawn)).toMatchObject({ turns: true, 'user-words': true, 'end-reasons': true, reasons: true, noise: true, models: true, 'tokens-by-model': true, 'tokens-by-module': true });
    expect(pageErrors).toEqual([]);
  });

  it('stops on SIGINT with exit code 0', async () => {
    const child = view!.child;
    const exited = once(child, 'exit');
    child.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    view = undefined;
  });
});

describe('personaflow view, as a command', () => {
  it('listens on --port and opens the page with the system opener under --open', async () => {
    ensureBuilt();
    const bin = await mkdtemp(join(tmpdir(), 'personaflow-opener-'));
    try {
      const { dir: run } = await writeDir({ interactions: [interaction({ persona: 'p' })] }, bin);
      // A stand-in for xdg-open that notes the address it was asked to open.
      await writeFile(join(bin, 'xdg-open'), `#!/bin/sh\necho "$1" > "${join(bin, 'opened')}"\n`, { mode: 0o755 });
      const port = await freePort();
      const child = spawn(process.execPath, [BIN, 'view', run, '--port', String(port), '--open'], { env: childEnv({ PATH: `${bin}:${process.env.PATH ?? ''}` }), stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const url = `http://127.0.0.1:${port}/`;
      let opened = '';
      for (let i = 0; i < 200 && opened === ''; i += 1) {
        await sleep(50);
        opened = (await readFile(join(bin, 'opened'), 'utf8').catch(() => '')).trim();
      }
      expect(opened).toBe(url);
      expect(stderr).toContain(`at ${url} (read-only`);
      expect((await fetch(`${url}api/summary`)).status).toBe(200);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('refuses what is not a generate --out directory, with exit 2', async () => {
    ensureBuilt();
    const run = await runCli(['view', '/nonexistent/run']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('personaflow: error: /nonexistent/run: cannot open (ENOENT)\n');
  });
});
