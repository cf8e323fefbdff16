#!/usr/bin/env node
// Takes the README's screenshots of `personaflow view` (docs/view-dashboard.png, docs/view-conversation.png)
// from a directory that sim writes here and now: `npm run build && node scripts/screenshots.js`.
// Needs Debian's Chromium (/usr/bin/chromium, or PERSONAFLOW_CHROMIUM) and the playwright-core devDependency.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'personaflow.js');
const roles = ['nurse', 'backend engineer', 'high school teacher', 'student', 'accountant'];
const styles = ['casual', 'formal', 'concise', 'friendly'];
const lengths = ['very_short', 'short', 'medium', 'long'];
const queries = ['How do I deduplicate a CSV file by email?', 'Explain Rust lifetimes with an example', 'Plan a weekly schedule for night shifts', 'Write a menu description for a Greek restaurant', 'How can I track grades in a spreadsheet?'];

const work = await mkdtemp(join(tmpdir(), 'personaflow-shots-'));
try {
  const lines = Array.from({ length: 60 }, (_, i) =>
    JSON.stringify({
      persona_id: `persona_${String(i).padStart(3, '0')}`,
      persona_features: { role: roles[i % roles.length], communication_style: styles[i % styles.length], query_length_pref: lengths[(i * 7) % lengths.length] },
      queries: [0, 1].map((q) => ({ query_id: `q${q + 1}`, original_query: queries[(i + q * 2) % queries.length] })),
    }),
  );
  await writeFile(join(work, 'personas.ndjson'), `${lines.join('\n')}\n`);
  const dir = join(work, 'run1');
  execFileSync(process.execPath, [BIN, 'generate', join(work, 'personas.ndjson'), '--provider', 'sim', '--noise', 'rules', '--seed', '11', '--out', dir, '-q'], { stdio: 'inherit' });
  const child = spawn(process.execPath, [BIN, 'view', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      stderr += chunk;
      const match = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
      if (match !== null) resolve(match[1]);
    });
  });
  const browser = await chromium.launch({ executablePath: process.env.PERSONAFLOW_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    await page.goto(`${url}#dashboard`);
    await page.waitForSelector('body[data-scanned="true"]');
    await page.waitForSelector('[data-chart="turns"] canvas');
    await page.screenshot({ path: join(ROOT, 'docs', 'view-dashboard.png') });
    await page.goto(`${url}#list?noised=yes`);
    await page.waitForSelector('tr.row');
    await page.click('tr.row >> nth=1');
    await page.waitForSelector('.conversation .versions');
    await page.screenshot({ path: join(ROOT, 'docs', 'view-conversation.png') });
  } finally {
    await browser.close();
    child.kill('SIGINT');
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
