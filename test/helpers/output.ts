// Reading a generate --out directory in tests: interactions by id without timestamps, the index checked, two runs compared.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';

/** The non-empty lines of a file (none when it is missing). */
export async function linesOf(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line !== '');
}

/** The interactions of a directory, timestamps removed, by id; fails on a torn line or an id written twice. */
export async function interactionsOf(out: string): Promise<Map<string, string>> {
  const text = await readFile(join(out, 'interactions.ndjson'), 'utf8').catch(() => '');
  expect(text === '' || text.endsWith('\n')).toBe(true);
  const byId = new Map<string, string>();
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const interaction = JSON.parse(line) as { interaction_id: string; metadata: Record<string, unknown>; messages: Record<string, unknown>[] };
    delete interaction.metadata.created_at;
    for (const message of interaction.messages) delete message.timestamp;
    expect(byId.has(interaction.interaction_id), `${interaction.interaction_id} written twice`).toBe(false);
    byId.set(interaction.interaction_id, JSON.stringify(interaction));
  }
  return byId;
}

/** The failures of a directory by interaction id, their time removed. */
export async function failuresOf(out: string): Promise<Map<string, string>> {
  const byId = new Map<string, string>();
  for (const line of await linesOf(join(out, 'failures.ndjson'))) {
    const failure = JSON.parse(line) as { interaction_id: string; time?: string };
    delete failure.time;
    expect(byId.has(failure.interaction_id), `${failure.interaction_id} failed twice`).toBe(false);
    byId.set(failure.interaction_id, JSON.stringify(failure));
  }
  return byId;
}

/** The index names exactly the interactions in the file, at their offsets, in order. */
export async function expectIndexMatches(out: string): Promise<void> {
  const data = await readFile(join(out, 'interactions.ndjson'));
  const index = (await linesOf(join(out, 'index.ndjson'))).map((line) => JSON.parse(line) as { n: number; interaction_id: string; offset: number; bytes: number });
  let offset = 0;
  for (const [i, entry] of index.entries()) {
    expect(entry.n).toBe(i + 1);
    expect(entry.offset).toBe(offset);
    const line = JSON.parse(data.subarray(entry.offset, entry.offset + entry.bytes).toString('utf8')) as { interaction_id: string };
    expect(line.interaction_id).toBe(entry.interaction_id);
    offset += entry.bytes;
  }
  expect(offset).toBe(data.length);
}

/** Two directories hold the same run: interactions (timestamps aside), failures, a matching index, the same usage statistics. */
export async function expectSameRun(actual: string, expected: string): Promise<void> {
  const got = await interactionsOf(actual);
  const want = await interactionsOf(expected);
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [id, interaction] of want) expect(got.get(id), id).toBe(interaction);
  expect(Object.fromEntries(await failuresOf(actual))).toEqual(Object.fromEntries(await failuresOf(expected)));
  await expectIndexMatches(actual);
  const usage = async (out: string) => {
    const json = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: unknown; interactions: number; failures: number; cost: unknown };
    return { statistics: json.statistics, interactions: json.interactions, failures: json.failures, cost: json.cost };
  };
  expect(await usage(actual)).toEqual(await usage(expected));
}
