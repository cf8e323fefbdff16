// A scratch area for an end-to-end test file: a temp directory, files written into it, fake OpenAI servers closed after each test.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { TEST_KEY, ensureBuilt } from './cli.js';
import { startOpenAIServer, type FakeOpenAIOptions, type FakeOpenAIServer } from './openai-server.js';

export interface Scratch {
  /** The temp directory (removed after the file's tests). */
  readonly dir: string;
  /** A new path in it, unique in this file: `NAME-N`. */
  readonly fresh: (name?: string) => string;
  /** Writes `text` to a fresh path and returns the path. */
  readonly file: (text: string, name?: string) => Promise<string>;
  /** Starts a fake OpenAI server (the test key required), closed after the test. */
  readonly serve: (options?: FakeOpenAIOptions) => Promise<FakeOpenAIServer>;
}

/** Registers the hooks (build the CLI, make the directory, close servers, remove the directory) and hands back the area. */
export function scratchArea(prefix: string): Scratch {
  let dir = '';
  let files = 0;
  let servers: FakeOpenAIServer[] = [];
  beforeAll(ensureBuilt, 120_000);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `personaflow-${prefix}-`));
  });
  afterEach(async () => {
    await Promise.all(servers.map((server) => server.close()));
    servers = [];
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const fresh = (name = 'f'): string => join(dir, `${name}-${(files += 1)}`);
  return {
    get dir() {
      return dir;
    },
    fresh,
    file: async (text, name) => {
      const path = fresh(name);
      await writeFile(path, text);
      return path;
    },
    serve: async (options = {}) => {
      const server = await startOpenAIServer({ apiKey: TEST_KEY, ...options });
      servers.push(server);
      return server;
    },
  };
}

/** `count` personas with one query each (`Help me with case <i>`), explicit ids, as NDJSON. */
export const personasOf = (count: number): string =>
  Array.from({ length: count }, (_, i) => JSON.stringify({ persona_id: `p${i}`, persona_features: { role: 'tester' }, queries: [{ query_id: 'q1', original_query: `Help me with case ${i}` }] })).join('\n') + '\n';
