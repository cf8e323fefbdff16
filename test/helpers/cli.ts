// Runs the built CLI as a child process, with a clean environment: shared by the end-to-end tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'personaflow.js');
export const TEST_KEY = 'sk-e2e-test-key-4242';

/** Builds the CLI (its bundle is what bin/personaflow.js runs) when a test file runs before any build. */
export function ensureBuilt(): void {
  if (existsSync(join(ROOT, 'dist', 'bundle', 'cli.js'))) return;
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', shell: process.platform === 'win32' });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
}

export interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  readonly ms: number;
}

export interface RunOptions {
  /** Extra environment; OPENAI_API_KEY defaults to TEST_KEY (undefined removes it). */
  readonly env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is then closed (otherwise stdin is /dev/null). */
  readonly input?: string;
  /** The child is killed after this long (the test then fails on the signal). */
  readonly killAfterMs?: number;
}

/** The child's environment: no real keys or endpoints leak in from the developer's shell. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(OPENAI_|OPENROUTER_|PERSONAFLOW_)/.test(name)) continue;
    env[name] = value;
  }
  const merged: Record<string, string | undefined> = { OPENAI_API_KEY: TEST_KEY, ...extra };
  for (const [name, value] of Object.entries(merged)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Runs `personaflow ...args` asynchronously (the fake server lives in this process, so never spawnSync). */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  return startCli(args, options).done;
}

/** Starts `personaflow ...args` and hands back the child (to kill it at a chosen moment) and its end. */
export function startCli(args: readonly string[], options: RunOptions = {}): { readonly child: ChildProcess; readonly done: Promise<Run> } {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: childEnv(options.env),
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (options.input !== undefined && child.stdin !== null) {
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
  }
  const killer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 25_000);
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
  return { child, done };
}

/** `--provider openai --base-url ... --model test-model` for a fake server. */
export const against = (server: { baseURL: string }): string[] => ['--provider', 'openai', '--base-url', server.baseURL, '--model', 'test-model'];
