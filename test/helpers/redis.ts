// A real redis-server for the tests that need one: started on 127.0.0.1 at a free port, stopped after.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unusedPort } from './openai-server.js';

/** Whether redis-server can be run here (CI installs it; see .ci/run). Under CI its absence is an error, not a skip. */
export const HAVE_REDIS = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
if (!HAVE_REDIS && process.env.CI !== undefined) throw new Error('redis-server is not installed, and CI must run the queue tests: apt-get install -y redis-server (.ci/run does)');

/** What a describe says when it is skipped for want of redis-server. */
export const NO_REDIS = HAVE_REDIS ? '' : ' (SKIPPED: redis-server is not installed; apt-get install -y redis-server)';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts redis-server on 127.0.0.1 at a free port, nothing saved to disk; resolves once it answers. */
export async function startRedis(): Promise<RedisServer> {
  for (let attempt = 0; ; attempt += 1) {
    const port = await unusedPort();
    const dir = await mkdtemp(join(tmpdir(), 'personaflow-redis-'));
    const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    };
    if (ready) return { port, url: `redis://127.0.0.1:${port}`, stop };
    await stop();
    // Another process may have taken the port between the probe and the start.
    if (attempt >= 3) throw new Error(`redis-server did not start:\n${output}`);
  }
}
