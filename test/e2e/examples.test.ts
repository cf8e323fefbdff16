// The library as its users see it: the documented TypeScript compiles in a project that has installed
// personaflow alone (scripts/check-examples.js), and examples/library.ts runs and prints interactions.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, childEnv, ensureBuilt } from '../helpers/cli.js';

const SCRIPT = join(ROOT, 'scripts', 'check-examples.js');

/** Runs scripts/check-examples.js with the package as built. */
function checkExamples(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [SCRIPT, '--built', ...args], { cwd: ROOT, env: childEnv({ OPENAI_API_KEY: undefined }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The user-facing Markdown files that hold TypeScript: README.md and the docs/ pages. */
function markdownWithTs(): string[] {
  const docs = existsSync(join(ROOT, 'docs')) ? readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => join('docs', name)) : [];
  return ['README.md', ...docs].filter((file) => /^```(?:ts|typescript)\s*$/m.test(readFileSync(join(ROOT, file), 'utf8')));
}

describe('the library as a user project sees it', () => {
  let dir: string;
  beforeAll(async () => {
    ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'personaflow-examples-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a snippet that imports rxjs, which such a project has not installed (the README snippet of issue 23)', async () => {
    const markdown = join(dir, 'old-snippet.md');
    await writeFile(markdown, "# Library\n\n```ts\nimport { from } from 'rxjs';\nimport { createPool, createSimModel, lockModel, converse, readTasks, pullThrough } from 'personaflow';\n```\n");
    const result = await checkExamples([markdown]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/old-snippet\.md:4:22: error TS2307: Cannot find module 'rxjs'/);
    expect(result.stderr).not.toMatch(/personaflow'/);
  }, 180_000);

  it('runs examples/library.ts: every persona\'s interaction by for-await, and the same conversations by subscribing', async () => {
    const result = await checkExamples(['--run', 'examples/library.ts']);
    expect(result.stderr).toMatch(/1 file\(s\) type-check as a user's project/);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n').filter((line) => line !== '');
    const interactions = lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { persona_id: string; num_turns: number; messages: { role: string; content: string }[]; metadata: { end_reason: string; assistant_model: { provider: string } } });
    expect(interactions.map((interaction) => interaction.persona_id).sort()).toEqual(['dev_02', 'teacher_01']);
    for (const interaction of interactions) {
      expect(interaction.metadata.assistant_model.provider).toBe('sim');
      expect(interaction.messages.length).toBe(2 * interaction.num_turns + (interaction.metadata.end_reason === 'user_stop' ? 1 : 0));
    }
    // The Observable variant: a run of its own, with the same seed the same conversations.
    const summaries = lines.filter((line) => !line.startsWith('{')).sort();
    expect(summaries).toEqual(interactions.map((interaction) => `${interaction.persona_id}: ${interaction.num_turns} turns, ended by ${interaction.metadata.end_reason}`).sort());
  }, 180_000);

  it("type-checks every ```ts block of README.md and docs/*.md as a user's project", async () => {
    const files = markdownWithTs();
    expect(files.length, 'no ```ts block in README.md or docs/: the library section has no example').toBeGreaterThan(0);
    const result = await checkExamples(files);
    // Until the docs' library snippet stops importing rxjs (issue 23), this names that block's file and line.
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/type-check as a user's project/);
  }, 180_000);
});
