// End to end: one writer per --out directory (two processes racing on it leave one run's data), `-o -` is stdout, a bad --out exits 2 naming it.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, TEST_KEY, against, childEnv, ensureBuilt, runCli, type Run } from '../helpers/cli.js';
import { startOpenAIServer, type FakeOpenAIServer } from '../helpers/openai-server.js';

let dir: string;
const PERSONAS = 6;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-outdir-'));
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An input whose personas are `<name>0`, `<name>1`, ...: whose data a directory holds shows in its ids. */
async function input(name: string): Promise<string> {
  const path = join(dir, `${name}.ndjson`);
  const lines = Array.from({ length: PERSONAS }, (_, p) => JSON.stringify({ persona_id: `${name}${p}`, persona_features: { role: 'tester' }, queries: [{ query_id: 'q1', original_query: `${name} question ${p}`, target_turns: 2 }] }));
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

const personasIn = async (out: string): Promise<string[]> =>
  (await readFile(join(out, 'interactions.ndjson'), 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { persona_id: string }).persona_id)
    .sort();

/**
 * Starts two runs at once on one --out directory while the server holds every answer, so neither can
 * finish before the other has had its chance at the directory. Answers are released once one run has
 * ended, or once both have sent requests (both writing: the defect), and both are awaited.
 */
async function race(server: FakeOpenAIServer, first: readonly string[], second: readonly string[], both: () => boolean): Promise<[Run, Run]> {
  server.hold();
  const runs = [runCli(first, { killAfterMs: 60_000 }), runCli(second, { killAfterMs: 60_000 })] as const;
  let ended = false;
  void Promise.race(runs).then(() => (ended = true));
  while (!ended && !both()) await new Promise((resolve) => setTimeout(resolve, 5));
  server.release();
  return Promise.all(runs);
}

describe('one writer per --out DIR', () => {
  it('regression: two runs started at once on one directory leave one run\'s data, the other refused with exit 2 (both wrote everything before)', async () => {
    // --force, so that no check of what DIR holds can stand in for the lock: only the lock keeps them apart.
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      const [alpha, bravo] = [await input('alpha'), await input('bravo')];
      const out = join(dir, 'raced');
      const args = (file: string): string[] => ['generate', file, ...against(server), '--out', out, '--force', '--supplement-rounds', '0', '-q'];
      const asked = (text: string): boolean => server.requests.some((request) => JSON.stringify(request.body).includes(text));
      const runs = await race(server, args(alpha), args(bravo), () => asked('alpha question') && asked('bravo question'));
      const codes = runs.map((run) => run.code).sort();
      expect(codes, runs.map((run) => run.stderr).join('\n---\n')).toEqual([0, 2]);
      const loser = runs.find((run) => run.code === 2) as Run;
      expect(loser.stderr).toMatch(new RegExp(`^personaflow: error: --out ${out}: another run \\(pid \\d+ on host "[^"]+", since [^)]+\\) is writing this directory; one run writes a directory at a time`));
      const winner = runs[0].code === 0 ? 'alpha' : 'bravo';
      expect(await personasIn(out)).toEqual(Array.from({ length: PERSONAS }, (_, p) => `${winner}${p}`).sort());
    } finally {
      await server.close();
    }
  }, 90_000);

  it('regression: two --resume at once: one continues, the other is refused; every task is in the directory once (both wrote every task)', async () => {
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      const alpha = await input('alpha');
      const out = join(dir, 'resumed');
      // A first run killed after its first call: the directory holds run.json and little else.
      const args = ['generate', alpha, ...against(server), '--out', out, '-j', '2', '--supplement-rounds', '0', '-q'];
      const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv({ OPENAI_API_KEY: TEST_KEY }), stdio: 'ignore' });
      const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
      server.hold();
      while (server.count === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      child.kill('SIGKILL');
      await closed;
      server.release();
      const start = server.count;
      // Requests do not say which resume sent them: with answers held, one run at -j 2 (from run.json) has at most 2 calls out; more means both are writing.
      const runs = await race(server, [...args, '--resume'], [...args, '--resume'], () => server.count - start > 2);
      const codes = runs.map((run) => run.code).sort();
      expect(codes, runs.map((run) => run.stderr).join('\n---\n')).toEqual([0, 2]);
      expect(await personasIn(out)).toEqual(Array.from({ length: PERSONAS }, (_, p) => `alpha${p}`).sort());
      expect((await readFile(join(out, 'failures.ndjson'), 'utf8')).trim()).toBe('');
    } finally {
      await server.close();
    }
  }, 90_000);
});

describe('--out', () => {
  it('regression: `-o -` writes interactions to stdout, not into a folder named `-`', async () => {
    const alpha = await input('alpha');
    const run = await runCli(['generate', alpha, '--provider', 'sim', '-o', '-', '-q']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split('\n').filter((line) => line !== '')).toHaveLength(PERSONAS);
    expect(await readdir(ROOT)).not.toContain('-');
  });

  it('regression: --out naming a file exits 2 with one line naming it (was "internal error", exit 1)', async () => {
    const alpha = await input('alpha');
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory\n');
    const run = await runCli(['generate', alpha, '--provider', 'sim', '--out', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`personaflow: error: --out ${file}: is a file, or lies under one; --out names a directory (give -o - for stdout)\n`);
    const under = await runCli(['generate', alpha, '--provider', 'sim', '--out', join(file, 'sub')]);
    expect(under.code).toBe(2);
    expect(under.stderr).toContain(`--out ${join(file, 'sub')}: is a file`);
    expect(await readFile(file, 'utf8')).toBe('not a directory\n');
  });

  it('regression: never writes through a symbolic link planted in --out; exit 2, the link\'s target untouched', async () => {
    const alpha = await input('alpha');
    const out = join(dir, 'planted');
    await mkdir(out, { recursive: true });
    const target = join(dir, 'precious.txt');
    await writeFile(target, 'keep me\n');
    await symlink(target, join(out, 'interactions.ndjson'));
    const run = await runCli(['generate', alpha, '--provider', 'sim', '--out', out, '--force']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${join(out, 'interactions.ndjson')} is a symbolic link`);
    expect(await readFile(target, 'utf8')).toBe('keep me\n');
  });
});
