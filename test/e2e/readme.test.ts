// The README shows what its own command produces: the example interaction and the end-of-run summary are
// checked against a run of the set-up command, as a newcomer types it (no key in the environment: sim).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt, runCli, type Run } from '../helpers/cli.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced blocks of the README, in order, with their language. */
const blocks = [...readme.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((match) => ({ lang: match[1] ?? '', body: match[2] ?? '' }));

/** The arguments of the README's main command: `npm ci && node bin/personaflow.js ARGS > interactions.ndjson`. */
function mainCommand(): string[] {
  const setup = blocks.find((block) => block.lang === 'sh')?.body.split('\n')[0] ?? '';
  const match = /^npm ci && node bin\/personaflow\.js (.+?) > interactions\.ndjson$/.exec(setup);
  if (match === null) throw new Error(`the README's first command is not the main job: ${setup}`);
  return (match[1] ?? '').split(' ');
}

/** What changes from run to run: the clock. */
const TIMES = new Set(['timestamp', 'created_at']);
const timeless = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(timeless);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).filter(([key]) => !TIMES.has(key)).map(([key, field]) => [key, timeless(field)]));
  return value;
};

describe("the README's example", () => {
  let run: Run;
  beforeAll(async () => {
    ensureBuilt();
    run = await runCli(mainCommand(), { env: { OPENAI_API_KEY: undefined } });
  });

  it('the main command completes', () => {
    expect(run.code).toBe(0);
  });

  it('the example interaction is one the command writes, field for field', () => {
    const shown = JSON.parse(blocks.find((block) => block.lang === 'json')?.body ?? 'null') as { interaction_id: string };
    const written = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { interaction_id: string });
    const same = written.find((interaction) => interaction.interaction_id === shown.interaction_id);
    expect(same, `no interaction ${shown.interaction_id} in the output`).toBeDefined();
    expect(timeless(shown)).toEqual(timeless(same));
  });

  it('the summary is what the command says on stderr (durations aside)', () => {
    const summary = blocks.find((block) => block.lang === '' && block.body.includes('personaflow: result:'))?.body ?? '';
    const seconds = (text: string): string => text.replace(/\d+(\.\d+)? s\b/g, 'N s');
    expect(seconds(summary).trim()).toBe(seconds(run.stderr).trim());
  });
});
