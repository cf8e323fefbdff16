// What an --out directory already holds: repaired after a crash, read for resume.
import { createReadStream } from 'node:fs';
import { open, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { DEFAULT_MAX_LINE_BYTES, byteLines } from '../streams/ndjson.js';
import { KeySet } from '../streams/seen.js';
import { interactionId } from '../types.js';
import { FILES, RUN_FILE, type IndexEntry, type RunRecord } from './layout.js';
import { usageRecordOf, type UsageRecord } from './usage.js';

/** What DIR holds, as the next run needs it. */
export interface OutputState {
  /** Interaction ids already written (to the dataset, or to rejected.ndjson by the judge). */
  readonly done: KeySet;
  /** Interaction ids in failures.ndjson that are not written as interactions. */
  readonly failed: KeySet;
  readonly failedCount: number;
  /** Supplement interactions per persona (`supplement_r*` query ids) less its rejected conversations: failures they already made up for. */
  readonly compensated: Map<string, number>;
  /** Interactions in the file and the file's size: where the next interaction and index line go. */
  readonly count: number;
  readonly offset: number;
  /** Index lines to append for interactions the index did not name (a crash between the two writes). */
  readonly missingIndex: string;
  /** What was repaired, for the user. */
  readonly repairs: readonly string[];
  /** The previous run's record (configuration fingerprint, seed), when there is one. */
  readonly run: RunRecord | undefined;
  /** The previous usage.json, to keep adding to. */
  readonly usage: unknown;
  /**
   * What the usage log holds past the point usage.json has folded in (`log_bytes`): the calls a run
   * billed but did not live to write into usage.json (a kill -9), summed by kind, and the log's end.
   */
  readonly logged: { readonly records: readonly { readonly record: UsageRecord; readonly calls: number }[]; readonly end: number };
  /** failures.ndjson as it should be: the last line of each failed task not written since, in file order. */
  readonly failureLines: readonly string[];
  /** The providers that wrote the directory: run.json's, else those of its first interaction (directories from before run.json recorded them). */
  readonly providers: readonly string[] | undefined;
}

/** The providers of the first interaction in `path` (assistant and user model), or undefined when there is none to read. */
async function firstProviders(path: string): Promise<string[] | undefined> {
  for await (const line of linesFrom(path, 0, undefined)) {
    try {
      const metadata = (JSON.parse(line.text ?? '') as { metadata?: { assistant_model?: { provider?: unknown }; user_model?: { provider?: unknown } } }).metadata;
      const found = [metadata?.assistant_model?.provider, metadata?.user_model?.provider].filter((p): p is string => typeof p === 'string');
      return found.length === 0 ? undefined : [...new Set(found)].sort();
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Cuts a torn last line (a write the process did not finish: kill -9, power loss) so the file holds whole
 * lines only. Returns the number of bytes removed.
 */
export async function cutTornLine(path: string): Promise<number> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return 0;
  }
  if (size === 0) return 0;
  const handle = await open(path, 'r');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - chunk.length);
      const { bytesRead } = await handle.read(chunk, 0, end - start, start);
      const at = chunk.subarray(0, bytesRead).lastIndexOf(10);
      if (at >= 0) {
        const keep = start + at + 1;
        if (keep === size) return 0;
        await truncate(path, keep);
        return size - keep;
      }
      end = start;
    }
    await truncate(path, 0);
    return size;
  } finally {
    await handle.close();
  }
}

/** One line of an output file, for resume. */
interface OutputLine {
  /** The line as text (no newline), or undefined when it is not valid UTF-8 or is over the limit (`overlong`). */
  readonly text: string | undefined;
  readonly overlong: boolean;
  /** Byte offset of the line, and the bytes it takes, its newline included. */
  readonly offset: number;
  readonly bytes: number;
}

/**
 * Lines of a file from byte `from`, as text with the byte offset and length (newline included) of
 * each, split by byteLines: a line that is not valid UTF-8 comes as `text: undefined` with its true
 * length, and so does one longer than `maxLineBytes`, flagged `overlong` and never held whole. A missing
 * file has no lines. After cutTornLine every file ends with a newline; a remainder would come as a
 * line without one.
 */
async function* linesFrom(path: string, from: number, maxLineBytes: number | undefined): AsyncGenerator<OutputLine> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decode = (bytes: Buffer): string | undefined => {
    try {
      return decoder.decode(bytes);
    } catch {
      return undefined;
    }
  };
  let stream;
  try {
    stream = createReadStream(path, { start: from });
    for await (const line of byteLines(stream, { start: from, maxLineBytes })) {
      yield { text: line.overlong ? undefined : decode(line.bytes), overlong: line.overlong, offset: line.offset, bytes: line.length };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  } finally {
    stream?.destroy();
  }
}

export interface ReadOutputOptions {
  /** Longest line read from DIR's files, in bytes, as for input files (readLines). Default 16 MiB. */
  readonly maxLineBytes?: number;
}

/**
 * Reads DIR for resume: repairs torn last lines, drops index lines that point past the interactions
 * file, rebuilds index lines for interactions the index missed, and collects the ids already written
 * (from the index, ~100 bytes a line, rather than from the interactions themselves) and those that
 * failed. Memory: 16 bytes an id (KeySet).
 */
export async function readOutput(dir: string, options: ReadOutputOptions = {}): Promise<OutputState> {
  const path = (name: string): string => join(dir, name);
  const repairs: string[] = [];
  for (const name of [FILES.interactions, FILES.index, FILES.failures, FILES.usageLog, FILES.rejected]) {
    const cut = await cutTornLine(path(name));
    if (cut > 0) repairs.push(`${name}: removed a torn last line (${cut} bytes) left by an interrupted run`);
  }
  const size = await stat(path(FILES.interactions)).then(
    (info) => info.size,
    () => 0,
  );
  const done = new KeySet();
  const compensated = new Map<string, number>();
  let count = 0;
  let end = 0;
  let indexBytes = 0;
  let badIndex = false;
  // By the id this version gives the pair, not the id on the line: a directory written before ids were
  // made injective holds `interaction_p_1_q` for persona p × query 1_q, now `interaction_p_1%5Fq`.
  const remember = (personaId: string, queryId: string): void => {
    done.add(interactionId(personaId, queryId));
    if (queryId.startsWith('supplement_r')) compensated.set(personaId, (compensated.get(personaId) ?? 0) + 1);
  };
  for await (const line of linesFrom(path(FILES.index), 0, options.maxLineBytes)) {
    if (line.text !== undefined && line.text.trim() === '') {
      indexBytes += line.bytes;
      continue;
    }
    // A line that is not UTF-8 or is over the limit (`text` undefined) is garbage like one that is not an entry.
    let entry: IndexEntry | undefined;
    try {
      const parsed: unknown = line.text === undefined ? undefined : JSON.parse(line.text);
      entry = typeof parsed === 'object' && parsed !== null ? (parsed as IndexEntry) : undefined;
    } catch {
      entry = undefined;
    }
    // An entry must follow on from the previous one and lie inside the interactions file.
    if (entry === undefined || typeof entry.persona_id !== 'string' || typeof entry.query_id !== 'string' || entry.n !== count + 1 || entry.offset !== end || entry.offset + entry.bytes > size) {
      badIndex = true;
      break;
    }
    remember(entry.persona_id, entry.query_id);
    count = entry.n;
    end = entry.offset + entry.bytes;
    indexBytes += line.bytes;
  }
  if (badIndex) {
    await truncate(path(FILES.index), indexBytes).catch(() => undefined);
    repairs.push(`index.ndjson: cut after entry ${count}, the last one that matches interactions.ndjson`);
  }
  // Interactions written after the last index line (a crash between the two appends): index them now.
  let missingIndex = '';
  if (end < size) {
    let rebuilt = 0;
    for await (const line of linesFrom(path(FILES.interactions), end, options.maxLineBytes)) {
      // Too long to read within the memory bound: its id cannot be known, so, as for a line that is not JSON, resuming could write it twice.
      if (line.overlong) {
        throw new ConfigError(`${path(FILES.interactions)}: the line at byte ${line.offset} takes ${line.bytes} bytes, over the limit of ${options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES} a line, so its interaction cannot be read and resuming could write it twice. Remove that line, then resume`);
      }
      if (line.text !== undefined && line.text.trim() === '') {
        end += line.bytes;
        continue;
      }
      let interaction: { interaction_id: string; persona_id: string; num_turns: number; metadata: { query_id: string } };
      try {
        // Not UTF-8 (text undefined) is refused like not JSON: skipping it would let its interaction be written again.
        if (line.text === undefined) throw new SyntaxError('not UTF-8');
        interaction = JSON.parse(line.text) as typeof interaction;
        if (typeof interaction?.persona_id !== 'string' || typeof interaction.metadata?.query_id !== 'string') throw new SyntaxError('not an interaction');
      } catch {
        throw new ConfigError(`${path(FILES.interactions)}: the line at byte ${line.offset} is not JSON (or not UTF-8); the file was changed by something else, so resuming could write an interaction twice. Fix or remove that line, then resume`);
      }
      count += 1;
      rebuilt += 1;
      const entry: IndexEntry = { n: count, interaction_id: interaction.interaction_id, persona_id: interaction.persona_id, query_id: interaction.metadata.query_id, num_turns: interaction.num_turns, offset: end, bytes: line.bytes };
      missingIndex += `${JSON.stringify(entry)}\n`;
      remember(entry.persona_id, entry.query_id);
      end += line.bytes;
    }
    repairs.push(`index.ndjson: ${rebuilt} interaction(s) were not indexed yet; their index lines are added`);
  }
  // Conversations the judge rejected were written too (not to be run again); each was a miss that a
  // supplement interaction made up for before any failure.
  for await (const line of linesFrom(path(FILES.rejected), 0, options.maxLineBytes)) {
    if (line.text === undefined || line.text.trim() === '') continue;
    let conversation: { interaction_id?: unknown; persona_id?: unknown; metadata?: { query_id?: unknown } } | null;
    try {
      conversation = JSON.parse(line.text) as typeof conversation;
    } catch {
      continue;
    }
    if (typeof conversation?.interaction_id !== 'string' || typeof conversation.persona_id !== 'string') continue;
    done.add(conversation.interaction_id);
    // Tasks are matched by the id this version gives the pair (see `remember`).
    const queryId = conversation.metadata?.query_id;
    if (typeof queryId === 'string') done.add(interactionId(conversation.persona_id, queryId));
    const madeUp = compensated.get(conversation.persona_id) ?? 0;
    if (madeUp > 0) compensated.set(conversation.persona_id, madeUp - 1);
  }
  const { lines: failureLines, ids: failed } = await stillFailed(path(FILES.failures), (id) => done.has(id), options.maxLineBytes);
  const failedCount = failureLines.length;
  const json = async (name: string): Promise<unknown> => {
    try {
      return JSON.parse(await readFile(path(name), 'utf8')) as unknown;
    } catch {
      return undefined;
    }
  };
  const run = (await json(RUN_FILE)) as RunRecord | undefined;
  const providers = Array.isArray(run?.providers) ? run.providers : await firstProviders(path(FILES.interactions));
  const usage = await json(FILES.usage);
  return { done, failed, failedCount, compensated, count, offset: end, missingIndex, repairs, run, usage, providers, failureLines, logged: await readUsageLog(path(FILES.usageLog), usage, options.maxLineBytes) };
}

/**
 * The tasks of a failures file that still failed: a task whose interaction was written since (`written`)
 * is left out, and one listed more than once (a resume retried it and it failed again, or a kill came
 * before a run could tidy the file) keeps its last line. Lines come in the order of those last lines;
 * a line that is not a failure record is dropped. Memory: the kept lines (failures are the few).
 */
export async function stillFailed(file: string, written: (id: string) => boolean, maxLineBytes?: number): Promise<{ lines: string[]; ids: KeySet; byPersona: Map<string, number> }> {
  const last = new Map<string, { text: string; persona: string }>();
  for await (const line of linesFrom(file, 0, maxLineBytes)) {
    if (line.text === undefined || line.text.trim() === '') continue;
    let failure: { interaction_id?: unknown; persona_id?: unknown; query_id?: unknown } | null;
    try {
      failure = JSON.parse(line.text) as typeof failure;
    } catch {
      continue;
    }
    const persona = failure?.persona_id;
    const id = typeof persona === 'string' && typeof failure?.query_id === 'string' ? interactionId(persona, failure.query_id) : failure?.interaction_id;
    if (typeof id !== 'string' || written(id)) continue;
    // Deleted first, so that the map's order is the order of the last lines.
    last.delete(id);
    last.set(id, { text: line.text, persona: typeof persona === 'string' ? persona : '' });
  }
  const ids = new KeySet();
  const byPersona = new Map<string, number>();
  const lines: string[] = [];
  for (const [id, { text, persona }] of last) {
    ids.add(id);
    lines.push(text);
    byPersona.set(persona, (byPersona.get(persona) ?? 0) + 1);
  }
  return { lines, ids, byPersona };
}

/**
 * The usage log past what usage.json folded in (its `log_bytes`), summed by kind of call. A log shorter
 * than `log_bytes` (removed by hand) holds nothing new; a line that is not a usage record is skipped.
 */
async function readUsageLog(file: string, usage: unknown, maxLineBytes: number | undefined): Promise<OutputState['logged']> {
  const size = await stat(file).then(
    (info) => info.size,
    () => 0,
  );
  const folded = Number((usage as { log_bytes?: unknown } | undefined)?.log_bytes) || 0;
  const from = folded <= size ? folded : size;
  const sums = new Map<string, { record: UsageRecord; calls: number }>();
  for await (const line of linesFrom(file, from, maxLineBytes)) {
    let record: UsageRecord | undefined;
    try {
      record = usageRecordOf(line.text === undefined ? undefined : JSON.parse(line.text));
    } catch {
      record = undefined;
    }
    if (record === undefined) continue;
    const key = JSON.stringify([record.module, record.operation, record.provider, record.model, record.failed, record.estimated]);
    const sum = sums.get(key);
    if (sum === undefined) sums.set(key, { record: { ...record }, calls: 1 });
    else {
      sum.record = { ...sum.record, input: sum.record.input + record.input, output: sum.record.output + record.output };
      sum.calls += 1;
    }
  }
  return { records: [...sums.values()], end: size };
}
