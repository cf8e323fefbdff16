// `--out DIR`: interactions.ndjson, failures.ndjson, an append-only running index, and usage.json.
import { mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Interaction, Outcome } from '../types.js';
import { Batcher, lineWriter, type LineWriter } from './batcher.js';
import { replaceJson } from './files.js';
import { FILES, RUN_FILE, type IndexEntry, type RunRecord } from './layout.js';
import type { OutputState } from './resume.js';
import type { Sink } from './sink.js';
import { UsageTotals } from './usage.js';

export { FILES };

/** At most this long between fdatasync calls while a run writes (and once more at the end). */
export const SYNC_INTERVAL_MS = 5000;

export interface DirSinkOptions {
  /** Overwrite what DIR holds (without `resume`). */
  readonly force?: boolean;
  /** Append to what DIR holds, as `readOutput` found it (repaired). */
  readonly resume?: OutputState;
  /** The run's accounting; on resume the previous usage.json is added to it. */
  readonly usage?: UsageTotals;
  /** Written to run.json (on resume, the original record is kept and the resume time added). */
  readonly run?: RunRecord;
}

/**
 * Writes outcomes into a directory. Interactions and their index lines are written in batches, the
 * interactions first: the index is append-only, so it is valid on disk at every moment, never names an
 * interaction that is not yet in the file, and costs O(1) per interaction (no rewrite of a growing file).
 * usage.json is replaced atomically (a temporary file flushed to disk, then a rename) when the sink closes.
 *
 * Durability: each batch is appended with one `write` per file, so a process that is killed leaves whole
 * lines, or one torn last line that the next `--resume` cuts (the kernel keeps what was written). The
 * interactions and the index are fdatasync'ed at most every SYNC_INTERVAL_MS and at close, so a power
 * loss costs at most the last few seconds, which a resume redoes.
 */
export class DirSink implements Sink {
  readonly usage: UsageTotals;
  readonly #handles: Record<'interactions' | 'failures' | 'index', FileHandle>;
  readonly #interactions: Batcher<Interaction>;
  readonly #failures: LineWriter;
  #count = 0;
  #offset = 0;
  #lastSync = Date.now();

  private constructor(readonly dir: string, handles: Record<'interactions' | 'failures' | 'index', FileHandle>, usage: UsageTotals) {
    this.#handles = handles;
    this.usage = usage;
    this.#failures = lineWriter((text) => handles.failures.appendFile(text, 'utf8'));
    this.#interactions = new Batcher((batch) => this.#writeInteractions(batch));
  }

  /**
   * Opens DIR, creating it; a DIR that already holds output is refused unless `force`. `usage` is the
   * run's accounting (fed per call by the pipeline), written to usage.json on close.
   */
  static async open(dir: string, options: DirSinkOptions = {}): Promise<DirSink> {
    await mkdir(dir, { recursive: true });
    const { resume } = options;
    if (resume === undefined) {
      const existing = await outputIn(dir);
      if (existing.length > 0 && options.force !== true) {
        throw new ConfigError(`--out ${dir}: the directory already holds ${existing.join(', ')}; use --resume to continue that run, or --force to overwrite it`);
      }
    }
    const mode = resume === undefined ? 'w' : 'a';
    const file = (name: string): Promise<FileHandle> => open(join(dir, name), mode);
    const handles = { interactions: await file(FILES.interactions), failures: await file(FILES.failures), index: await file(FILES.index) };
    const usage = options.usage ?? new UsageTotals();
    const sink = new DirSink(dir, handles, usage);
    if (resume !== undefined) {
      sink.#count = resume.count;
      sink.#offset = resume.offset;
      if (resume.missingIndex !== '') await handles.index.appendFile(resume.missingIndex, 'utf8');
      usage.merge(resume.usage);
    }
    if (options.run !== undefined) {
      // A resume keeps the original record; providers add up, so a directory forced to mix them says so.
      const providers = [...new Set([...(resume?.run?.providers ?? []), ...(options.run.providers ?? [])])].sort();
      const record: RunRecord = resume?.run === undefined ? options.run : { ...resume.run, ...(providers.length === 0 ? {} : { providers }), resumed_at: [...(resume.run.resumed_at ?? []), new Date().toISOString()] };
      await replaceJson(join(dir, RUN_FILE), record);
    }
    return sink;
  }

  /** Resolves when the outcome (and, for an interaction, its index line) has been written. */
  write(outcome: Outcome): Promise<void> {
    this.usage.outcome(outcome);
    return outcome.ok ? this.#interactions.push(outcome.interaction) : this.#failures.push(JSON.stringify(outcome.failure));
  }

  async #writeInteractions(batch: Interaction[]): Promise<void> {
    let data = '';
    let index = '';
    for (const interaction of batch) {
      const line = `${JSON.stringify(interaction)}\n`;
      const bytes = Buffer.byteLength(line);
      this.#count += 1;
      const entry: IndexEntry = {
        n: this.#count,
        interaction_id: interaction.interaction_id,
        persona_id: interaction.persona_id,
        query_id: interaction.metadata.query_id,
        num_turns: interaction.num_turns,
        offset: this.#offset,
        bytes,
      };
      this.#offset += bytes;
      data += line;
      index += `${JSON.stringify(entry)}\n`;
    }
    await this.#handles.interactions.appendFile(data, 'utf8');
    await this.#handles.index.appendFile(index, 'utf8');
    if (Date.now() - this.#lastSync >= SYNC_INTERVAL_MS) {
      this.#lastSync = Date.now();
      await Promise.all([this.#handles.interactions.datasync(), this.#handles.index.datasync()]);
    }
  }

  /** Writes what is pending, then usage.json, and closes the files. */
  async close(): Promise<void> {
    try {
      await Promise.all([this.#interactions.flush(), this.#failures.flush()]);
      await Promise.all(Object.values(this.#handles).map((handle) => handle.datasync()));
      await replaceJson(join(this.dir, FILES.usage), this.usage);
    } finally {
      await Promise.all(Object.values(this.#handles).map((handle) => handle.close()));
    }
  }
}

/** Our files that DIR already holds (run.json included), even empty ones: they belong to a run. */
export async function outputIn(dir: string): Promise<string[]> {
  const ours = [...(Object.values(FILES) as string[]), RUN_FILE];
  return (await readdir(dir).catch(() => [] as string[])).filter((name) => ours.includes(name)).sort();
}
