// countTasks: the progress total counted ahead is exactly the tasks the run then takes, whatever the input holds.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTasks } from '../../src/streams/count.js';
import { readTasks } from '../../src/streams/personas.js';
import { QueryDataset } from '../../src/streams/queries.js';
import { inShard, type Shard } from '../../src/streams/shard.js';
import { skipWritten, type Written } from '../../src/streams/tasks.js';
import { interactionId, type Task } from '../../src/types.js';

let dir: string;
let files = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-count-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = async (content: string): Promise<string> => {
  const path = join(dir, `in-${files++}.ndjson`);
  await writeFile(path, content);
  return path;
};

const OPTIONS = { name: 'in.ndjson', seed: 7, minTurns: 1, maxTurns: 4 };

/** What the run takes from `content`: readTasks, then the shard, then what a resume skips, as generate chains them. */
async function taken(content: string, shard: Shard | undefined, written: Written | undefined): Promise<Task[]> {
  let tasks: AsyncIterable<Task> = readTasks(Readable.from([content]), OPTIONS);
  if (shard !== undefined) tasks = inShard(tasks, shard);
  if (written !== undefined) tasks = skipWritten(written, true, { skipped: 0, retried: 0, compensated: 0 }, tasks);
  const all: Task[] = [];
  for await (const task of tasks) all.push(task);
  return all;
}

/** A persona line, or one of the kinds of bad line an input holds. */
const line = fc.oneof(
  { weight: 6, arbitrary: fc.record({ persona_id: fc.constantFrom('p1', 'p2', 'p3', 'p4', ' p1 ', 5), queries: fc.array(fc.record({ query_id: fc.option(fc.constantFrom('q1', 'q2', 'q3'), { nil: undefined }), original_query: fc.constantFrom('How?', 'Why?', '  ', 'What now?') }), { maxLength: 4 }) }).map((record) => JSON.stringify(record)) },
  { weight: 1, arbitrary: fc.constantFrom('', 'not json', '{"queries": []}', '{"persona_id": "p9"}', '[1, 2]', '{"persona_id": "p5", "queries": [{"text": "ok", "target_turns": 0}]}') },
);

describe('countTasks', () => {
  test.prop([fc.array(line, { maxLength: 40 }), fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }), fc.boolean()], { numRuns: 60 })(
    'counts exactly the tasks the run takes: bad lines, duplicates, shards and a resume left out alike',
    async (lines, shards, resumed) => {
      const content = lines.join('\n') + '\n';
      const shard = shards === undefined ? undefined : { index: 1, count: shards };
      // A resume that holds every other task of the input, and failed one more.
      const all = await taken(content, undefined, undefined);
      const done = new Set(all.filter((_, i) => i % 2 === 0).map((task) => interactionId(task.personaId, task.queryId)));
      const failed = new Set(all.filter((_, i) => i % 4 === 1).map((task) => interactionId(task.personaId, task.queryId)));
      const written = resumed ? { done, failed, compensated: new Map([['p1', 1]]) } : undefined;
      const expected = (await taken(content, shard, written === undefined ? undefined : { ...written, compensated: new Map(written.compensated) })).length;
      expect(await countTasks(await file(content), { tasks: OPTIONS, shard, written })).toBe(expected);
      // The count works on a copy of what the resume was given.
      if (written !== undefined) expect(written.compensated.get('p1')).toBe(1);
    },
  );

  it('assigns the dataset queries the run will, without moving the run\'s round-robin cursor (a fork)', async () => {
    const queries = await file(['{"query": "one"}', '{"query": "two"}', '{"query": "three"}', '{"query": "two"}'].join('\n') + '\n');
    const dataset = await QueryDataset.open(queries);
    try {
      const personas = await file(['{"persona_id": "a"}', '{"persona_id": "b"}', '{"persona_id": "c", "queries": [{"text": "own"}]}', '{"persona_id": "d"}'].join('\n') + '\n');
      const select = (d: QueryDataset) => ({ ...OPTIONS, queries: { dataset: d, perPersona: 2, strategy: 'round_robin' as const } });
      expect(await countTasks(personas, { tasks: select(dataset.fork()) })).toBe(7);
      // The run's own pass starts where it would have: a, b and d get the same queries as without the count.
      const run: string[] = [];
      for await (const task of readTasks(Readable.from([['{"persona_id": "a"}', '{"persona_id": "b"}'].join('\n')]), select(dataset))) run.push(task.originalQuery);
      expect(run).toEqual(['one', 'two', 'three', 'two']);
    } finally {
      await dataset.close();
    }
  });

  it('stops when told, and says so by rejecting', async () => {
    const path = await file(Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ persona_id: `p${i}`, queries: [{ text: 'q' }] })).join('\n'));
    const controller = new AbortController();
    const counting = countTasks(path, { tasks: OPTIONS, signal: controller.signal });
    controller.abort();
    await expect(counting).rejects.toThrow(/stopped/);
  });
});
