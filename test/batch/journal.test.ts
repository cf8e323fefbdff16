// BatchJournal: what a resume finds in --out after a kill at any moment.
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchJournal, JOURNAL_FILE, RESULTS_FILE } from '../../src/batch/journal.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-journal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const at = '2026-01-01T00:00:00.000Z';

describe('BatchJournal', () => {
  it('lists the batches left unsettled: created and not downloaded, and asked for with no id heard', async () => {
    const journal = await BatchJournal.open(dir, false);
    await journal.record({ event: 'uploaded', round: 1, provider: 'p', file_id: 'f1', requests: 2, bytes: 10, at });
    await journal.record({ event: 'creating', provider: 'p', file_id: 'f1', at });
    await journal.record({ event: 'created', provider: 'p', file_id: 'f1', batch_id: 'b1', at });
    await journal.record({ event: 'downloaded', batch_id: 'b1', lines: 2, at });
    await journal.record({ event: 'uploaded', round: 2, provider: 'p', file_id: 'f2', requests: 1, bytes: 5, at });
    await journal.record({ event: 'creating', provider: 'p', file_id: 'f2', at });
    await journal.record({ event: 'created', provider: 'p', file_id: 'f2', batch_id: 'b2', at });
    await journal.record({ event: 'uploaded', round: 2, provider: 'p', file_id: 'f3', requests: 1, bytes: 5, at });
    await journal.record({ event: 'creating', provider: 'p', file_id: 'f3', at });
    await journal.results(['{"custom_id":"x","response":{"status_code":200,"body":{}}}']);
    await journal.close();
    const resumed = await BatchJournal.open(dir, true);
    expect(resumed.unsettled).toEqual([
      { provider: 'p', fileId: 'f3', batchId: undefined },
      { provider: 'p', fileId: 'f2', batchId: 'b2' },
    ]);
    expect(resumed.rounds).toBe(2);
    expect(resumed.previousCount).toBe(1);
    expect(resumed.takePrevious('x')).toBe('{"custom_id":"x","response":{"status_code":200,"body":{}}}');
    expect(resumed.takePrevious('x')).toBeUndefined();
    await resumed.close();
  });

  it('cuts a torn last line, so the next append starts on a line of its own', async () => {
    await writeFile(join(dir, JOURNAL_FILE), `${JSON.stringify({ event: 'created', provider: 'p', file_id: 'f', batch_id: 'b', at })}\n{"event":"downl`);
    await writeFile(join(dir, RESULTS_FILE), '{"custom_id":"a","response":null}\n{"custom_id":"b","resp');
    const journal = await BatchJournal.open(dir, true);
    expect(journal.unsettled).toEqual([{ provider: 'p', fileId: 'f', batchId: 'b' }]);
    expect(journal.previousCount).toBe(1);
    expect(journal.takePrevious('a')).toBe('{"custom_id":"a","response":null}');
    await journal.record({ event: 'downloaded', batch_id: 'b', lines: 0, at });
    await journal.close();
    const lines = (await readFile(join(dir, JOURNAL_FILE), 'utf8')).trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as { event: string }).event)).toEqual(['created', 'downloaded']);
    expect(await readFile(join(dir, RESULTS_FILE), 'utf8')).toBe('{"custom_id":"a","response":null}\n');
  });

  it('starts empty when not resuming, whatever DIR held', async () => {
    await appendFile(join(dir, JOURNAL_FILE), `${JSON.stringify({ event: 'created', provider: 'p', file_id: 'f', batch_id: 'b', at })}\n`);
    const journal = await BatchJournal.open(dir, false);
    expect(journal.unsettled).toEqual([]);
    await journal.close();
    expect(await readFile(join(dir, JOURNAL_FILE), 'utf8')).toBe('');
  });
});
