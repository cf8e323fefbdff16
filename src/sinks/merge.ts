// Merging `--out` directories (shards, or a run's pieces) into one: interactions, judge-rejected conversations and failures once each, the guards' rejected replies, a new index, usage summed.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { byteLines } from '../streams/ndjson.js';
import { KeySet } from '../streams/seen.js';
import type { Failure, Interaction } from '../types.js';
import type { DirSink } from './dir.js';
import { FILES, RUN_FILE, type RunRecord } from './layout.js';

/** What one input directory holds that decides whether it may join the others. */
export interface MergeInput {
  readonly dir: string;
  readonly run: RunRecord | undefined;
  /** Its usage.json, or undefined when it has none (a run that was killed before it closed). */
  readonly usage: unknown;
}

/** What a merge wrote and passed over. */
export interface MergeCounts {
  interactions: number;
  failures: number;
  /** Conversations the judge rejected (rejected.ndjson), once each. */
  rejected: number;
  /** Interactions whose id an earlier directory (or an earlier line) already had. */
  duplicates: number;
  /** Failures left out: their task was written as an interaction in some directory, or failed twice. */
  failuresResolved: number;
  /** Lines that were not whole JSON lines (a torn last line of a killed run, or damage). */
  skipped: number;
}

const readJson = async (path: string): Promise<unknown> => {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
};

/** Reads what decides a merge: run.json and usage.json of `dir`. */
export async function mergeInput(dir: string): Promise<MergeInput> {
  return { dir, run: (await readJson(join(dir, RUN_FILE))) as RunRecord | undefined, usage: await readJson(join(dir, FILES.usage)) };
}

/** Each whole JSON line of `path` as a value, with its line number; a torn or damaged line goes to `onBad`. */
async function* jsonLines(path: string, onBad: (line: number, why: string) => void): AsyncGenerator<unknown> {
  const stream = createReadStream(path);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    for await (const line of byteLines(stream)) {
      if (line.overlong) {
        onBad(line.line, 'line too long, skipped');
        continue;
      }
      let value: unknown;
      try {
        const text = decoder.decode(line.bytes);
        if (text.trim() === '') continue;
        value = JSON.parse(text);
      } catch {
        onBad(line.line, line.terminated ? 'not JSON, skipped' : 'a torn last line (the run was killed while writing it), skipped');
        continue;
      }
      if (!line.terminated) {
        onBad(line.line, 'a last line without its newline (the run was killed while writing it), skipped');
        continue;
      }
      yield value;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  } finally {
    stream.destroy();
  }
}

/** Pending writes kept before waiting for them: the sink batches them, and memory stays bounded. */
const IN_FLIGHT = 512;

/**
 * Copies the interactions of every directory of `inputs` into `sink` (which indexes them), the first of
 * each interaction id only, then the conversations the judge rejected and the guards' rejected replies, then their failures, leaving out a failure whose task some directory wrote as
 * an interaction and one already written. Memory: 16 bytes per id (KeySet), whatever the sizes.
 * Usage is the sink's to sum (see `mergeUsage`); this writes lines only.
 */
export async function mergeInto(sink: DirSink, inputs: readonly MergeInput[], onBad: (message: string) => void): Promise<MergeCounts> {
  const counts: MergeCounts = { interactions: 0, rejected: 0, failures: 0, duplicates: 0, failuresResolved: 0, skipped: 0 };
  const written = new KeySet();
  let pending: Promise<void>[] = [];
  const write = async (promise: Promise<void>): Promise<void> => {
    pending.push(promise);
    if (pending.length >= IN_FLIGHT) {
      const batch = pending;
      pending = [];
      await Promise.all(batch);
    }
  };
  const bad = (path: string) => (line: number, why: string) => {
    counts.skipped += 1;
    onBad(`${path}:${line}: ${why}`);
  };
  // Accepted interactions, then what the judge rejected: each id once, and never a rejected conversation
  // beside the same one accepted.
  for (const [file, count] of [[FILES.interactions, 'interactions'], [FILES.rejected, 'rejected']] as const) {
    for (const input of inputs) {
      const path = join(input.dir, file);
      for await (const value of jsonLines(path, bad(path))) {
        const interaction = value as Interaction;
        if (typeof interaction?.interaction_id !== 'string') {
          bad(path)(0, 'a line without interaction_id, skipped');
          continue;
        }
        if (!written.add(interaction.interaction_id)) {
          counts.duplicates += 1;
          continue;
        }
        counts[count] += 1;
        await write(sink.write({ ok: true, interaction }));
      }
    }
  }
  // The guards' rejected replies, as they are: each belongs to the run that asked for it.
  for (const input of inputs) {
    const path = join(input.dir, FILES.rejections);
    for await (const value of jsonLines(path, bad(path))) await write(sink.writeRejection(value));
  }
  const failed = new KeySet();
  for (const input of inputs) {
    const path = join(input.dir, FILES.failures);
    for await (const value of jsonLines(path, bad(path))) {
      const failure = value as Failure;
      if (typeof failure?.interaction_id !== 'string') continue;
      if (written.has(failure.interaction_id) || !failed.add(failure.interaction_id)) {
        counts.failuresResolved += 1;
        continue;
      }
      counts.failures += 1;
      await write(sink.write({ ok: false, failure }));
    }
  }
  await Promise.all(pending);
  return counts;
}
