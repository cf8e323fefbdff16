// `--out DIR`: interactions.ndjson, failures.ndjson, an append-only running index, the usage log, usage.json, and what was rejected.
import { mkdir, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, FatalError } from '../errors.js';
import { KeySet } from '../streams/seen.js';
import { interactionId, judgedRejected, type Interaction, type Outcome } from '../types.js';
import { Batcher, lineWriter, type LineWriter } from './batcher.js';
import { NO_FOLLOW, fsError, openOwn, refuseLinks, replaceFile, replaceJson } from './files.js';
import { FILES, RUN_FILE, type IndexEntry, type RunRecord } from './layout.js';
import { LOCK_FILE } from './lock.js';
import { stillFailed, type OutputState } from './resume.js';
import type { Sink } from './sink.js';
import { UsageTotals, type UsageRecord } from './usage.js';

export { FILES };

/** At most this long between fdatasync calls while a run writes (and once more at the end); usage.json is refreshed as often. */
export const SYNC_INTERVAL_MS = 5000;

export interface DirSinkOptions {
  /** Overwrite what DIR holds (without `resume`). */
  readonly force?: boolean;
  /** Append to what DIR holds, as `readOutput` found it (repaired). */
  readonly resume?: OutputState;
  /** The run's accounting; on resume the directory's earlier usage is added to it. */
  readonly usage?: UsageTotals;
  /** Written to run.json (on resume, the original record is kept and the resume time added). */
  readonly run?: RunRecord;
}

/** Where the directory stands once the sink is closed: what failed for good, and the personas still short of their target. */
export interface DirState {
  readonly interactions: number;
  /** Tasks in failures.ndjson: failed, and not written since. */
  readonly failures: number;
  /** Personas with more failed tasks than supplement interactions, and the interactions they miss in all. */
  readonly personasShort: number;
  readonly missing: number;
}

/**
 * Creates DIR (and its parents) for writing, or says what is wrong with it as a ConfigError (exit 2):
 * `--out` naming a file, a directory that cannot be created.
 */
export async function prepareDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new ConfigError(`--out ${dir}: is a file, or lies under one; --out names a directory (give -o - for stdout)`);
    throw new ConfigError(`--out ${dir}: ${fsError(error, 'create the directory', dir).message.replace(/^cannot create the directory \S+ /, 'cannot create the directory ')}`);
  }
  const info = await stat(dir).catch(() => undefined);
  if (info?.isDirectory() !== true) throw new ConfigError(`--out ${dir}: is not a directory`);
}

/** The paths of our files in DIR, the lock included: none may be a symbolic link. */
export const ownFiles = (dir: string): string[] => [...Object.values(FILES), RUN_FILE, LOCK_FILE].map((name) => join(dir, name));

/**
 * Writes outcomes into a directory. Interactions and their index lines are written in batches, the
 * interactions first: the index is append-only, so it is valid on disk at every moment, never names an
 * interaction that is not yet in the file, and costs O(1) per interaction (no rewrite of a growing file).
 *
 * Spend: every billed call is appended to the usage log (usage.ndjson) as it is billed, so what a run
 * spent is on disk even if it never closes; usage.json is the log folded up (its `log_bytes` says how
 * much of the log it holds), replaced atomically at open, every SYNC_INTERVAL_MS and at close.
 *
 * Failures: failures.ndjson lists each task that failed and was not written since, once. It is tidied at
 * open (on resume) and at close; a run killed in between may leave a task listed that it later wrote, or
 * twice, which the next run tidies.
 *
 * Durability: each batch is appended with one `write` per file, so a process that is killed leaves whole
 * lines, or one torn last line that the next `--resume` cuts (the kernel keeps what was written). The
 * files are fdatasync'ed at most every SYNC_INTERVAL_MS and at close, so a power loss costs at most the
 * last few seconds, which a resume redoes. Files are opened without following symbolic links, and a file
 * system error names its path and what was being done.
 */
type Handles = Record<'interactions' | 'failures' | 'index' | 'usageLog' | 'rejections' | 'rejected', FileHandle>;

export class DirSink implements Sink {
  readonly usage: UsageTotals;
  readonly #handles: Handles;
  #state: DirState | undefined;
  readonly #interactions: Batcher<Interaction>;
  readonly #failures: LineWriter;
  readonly #usageLog: LineWriter;
  readonly #rejections: LineWriter;
  readonly #rejected: LineWriter;
  #count = 0;
  #offset = 0;
  #logBytes = 0;
  #failureLines = 0;
  #lastSync = Date.now();
  /** The first error of a write that was not awaited (the usage log): the next write or close reports it. */
  #broken: FatalError | undefined;
  /** Interactions written by this run, to take their tasks out of failures.ndjson at close. */
  readonly #written = new KeySet();
  /** Supplement interactions per persona, in the whole directory: failures they make up for. */
  readonly #supplements: Map<string, number>;

  private constructor(readonly dir: string, handles: Handles, usage: UsageTotals, supplements: Map<string, number>) {
    this.#handles = handles;
    this.usage = usage;
    this.#supplements = supplements;
    const failuresPath = this.#path(FILES.failures);
    this.#failures = lineWriter(async (text) => {
      await this.#append(handles.failures, text, failuresPath);
    });
    const logPath = this.#path(FILES.usageLog);
    this.#usageLog = lineWriter(async (text) => {
      await this.#append(handles.usageLog, text, logPath);
      this.#logBytes += Buffer.byteLength(text);
    });
    const rejectionsPath = this.#path(FILES.rejections);
    this.#rejections = lineWriter(async (text) => {
      await this.#append(handles.rejections, text, rejectionsPath);
    });
    const rejectedPath = this.#path(FILES.rejected);
    this.#rejected = lineWriter(async (text) => {
      await this.#append(handles.rejected, text, rejectedPath);
    });
    this.#interactions = new Batcher((batch) => this.#writeInteractions(batch));
    usage.onCall = (record: UsageRecord) => {
      this.#usageLog.push(JSON.stringify(record)).catch((error: unknown) => (this.#broken ??= fsError(error, 'append to', logPath)));
    };
  }

  #path(name: string): string {
    return join(this.dir, name);
  }

  async #append(handle: FileHandle, text: string, path: string): Promise<void> {
    try {
      await handle.appendFile(text, 'utf8');
    } catch (error) {
      throw fsError(error, 'append to', path);
    }
  }

  /**
   * Opens DIR, creating it; a DIR that already holds output is refused unless `force`. `usage` is the
   * run's accounting (fed per call by the pipeline): with `resume`, the directory's earlier usage.json
   * and what its usage log holds past it are added first, and usage.json is rewritten before anything is
   * appended. The caller holds DIR's lock (DirLock).
   */
  static async open(dir: string, options: DirSinkOptions = {}): Promise<DirSink> {
    await prepareDirectory(dir);
    await refuseLinks(ownFiles(dir));
    const { resume } = options;
    if (resume === undefined) {
      const existing = await outputIn(dir);
      if (existing.length > 0 && options.force !== true) {
        throw new ConfigError(`--out ${dir}: the directory already holds ${existing.join(', ')}; use --resume to continue that run, or --force to overwrite it`);
      }
    }
    const path = (name: string): string => join(dir, name);
    const usage = options.usage ?? new UsageTotals();
    if (resume !== undefined) {
      usage.merge(resume.usage);
      for (const { record, calls } of resume.logged.records) usage.addLogged(record, calls);
      // The failures as they stand: each failed task once, none that was written since.
      await replaceFile(path(FILES.failures), resume.failureLines.map((line) => `${line}\n`).join(''));
    }
    const flags = resume === undefined ? NO_FOLLOW.truncate : NO_FOLLOW.append;
    const handles = {
      interactions: await openOwn(path(FILES.interactions), flags, 'open'),
      failures: await openOwn(path(FILES.failures), flags, 'open'),
      index: await openOwn(path(FILES.index), flags, 'open'),
      usageLog: await openOwn(path(FILES.usageLog), flags, 'open'),
      rejections: await openOwn(path(FILES.rejections), flags, 'open'),
      rejected: await openOwn(path(FILES.rejected), flags, 'open'),
    };
    const sink = new DirSink(dir, handles, usage, new Map(resume?.compensated ?? []));
    if (resume !== undefined) {
      sink.#count = resume.count;
      sink.#offset = resume.offset;
      sink.#logBytes = resume.logged.end;
      sink.#failureLines = resume.failureLines.length;
      if (resume.missingIndex !== '') await sink.#append(handles.index, resume.missingIndex, path(FILES.index));
    }
    if (options.run !== undefined) {
      // A resume keeps the original record; providers add up, so a directory forced to mix them says so.
      // The limit is the latest one (`--resume --limit 20`, `--no-limit`): the next plain --resume keeps to it.
      const providers = [...new Set([...(resume?.run?.providers ?? []), ...(options.run.providers ?? [])])].sort();
      const invocation = resume?.run?.invocation === undefined || options.run.invocation === undefined ? resume?.run?.invocation : { ...resume.run.invocation, limit: options.run.invocation.limit ?? null };
      const record: RunRecord =
        resume?.run === undefined ? options.run : { ...resume.run, ...(providers.length === 0 ? {} : { providers }), ...(invocation === undefined ? {} : { invocation }), resumed_at: [...(resume.run.resumed_at ?? []), new Date().toISOString()] };
      await replaceJson(path(RUN_FILE), record);
    }
    // usage.json now holds the whole log: a run killed from here on loses none of what it bills.
    await sink.#writeUsage();
    return sink;
  }

  /**
   * Resolves when the outcome (and, for an interaction, its index line) has been written. A conversation
   * the judge rejected goes to rejected.ndjson, not into the dataset.
   */
  async write(outcome: Outcome): Promise<void> {
    if (this.#broken !== undefined) throw this.#broken;
    this.usage.outcome(outcome);
    const rejected = (outcome.rejections ?? []).map((rejection) => this.#rejections.push(JSON.stringify(rejection)));
    let written: Promise<void>;
    if (outcome.ok) {
      const { interaction } = outcome;
      this.#written.add(interactionId(interaction.persona_id, interaction.metadata.query_id));
      const persona = interaction.persona_id;
      if (judgedRejected(outcome)) {
        // A miss of its persona, which a supplement interaction may make up for.
        this.#supplements.set(persona, (this.#supplements.get(persona) ?? 0) - 1);
        written = this.#rejected.push(JSON.stringify(interaction));
      } else {
        if (interaction.metadata.query_id.startsWith('supplement_r')) this.#supplements.set(persona, (this.#supplements.get(persona) ?? 0) + 1);
        written = this.#interactions.push(interaction);
      }
    } else {
      this.#failureLines += 1;
      written = this.#failures.push(JSON.stringify(outcome.failure));
    }
    await Promise.all([written, ...rejected]);
  }

  /** A simulator reply the guards rejected, as another directory recorded it (`personaflow merge`). */
  writeRejection(rejection: unknown): Promise<void> {
    return this.#rejections.push(JSON.stringify(rejection));
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
    await this.#append(this.#handles.interactions, data, this.#path(FILES.interactions));
    await this.#append(this.#handles.index, index, this.#path(FILES.index));
    if (Date.now() - this.#lastSync >= SYNC_INTERVAL_MS) {
      this.#lastSync = Date.now();
      await this.#sync();
      await this.#writeUsage();
    }
  }

  async #sync(): Promise<void> {
    try {
      await Promise.all(Object.values(this.#handles).map((handle) => handle.datasync()));
    } catch (error) {
      throw fsError(error, 'flush to disk', this.dir);
    }
  }

  /** usage.json: the totals, the directory's counts, and how much of the usage log they hold. */
  #writeUsage(): Promise<void> {
    return replaceJson(this.#path(FILES.usage), { ...(this.usage.toJSON() as object), interactions: this.#count, failures: this.#failureLines, log_bytes: this.#logBytes });
  }

  /** Where the directory stands, once `close` has tidied it. */
  get state(): DirState | undefined {
    return this.#state;
  }

  /**
   * Writes what is pending, tidies failures.ndjson (each task that still failed, once), writes
   * usage.json, and closes the files; `state` then says where the directory stands.
   */
  async close(): Promise<void> {
    try {
      await Promise.all([this.#interactions.flush(), this.#failures.flush(), this.#usageLog.flush(), this.#rejections.flush(), this.#rejected.flush()]);
      if (this.#broken !== undefined) throw this.#broken;
      await this.#sync();
      this.#state = await this.#tidyFailures();
      await this.#writeUsage();
    } finally {
      await Promise.all(Object.values(this.#handles).map((handle) => handle.close().catch(() => undefined)));
    }
  }

  /** Rewrites failures.ndjson without the tasks this run wrote and with each task once (its last line), and counts what is short. */
  async #tidyFailures(): Promise<DirState> {
    const path = this.#path(FILES.failures);
    const { lines, byPersona } = await stillFailed(path, (id) => this.#written.has(id));
    await replaceFile(path, lines.map((line) => `${line}\n`).join(''));
    this.#failureLines = lines.length;
    let personasShort = 0;
    let missing = 0;
    // A persona is short by its failures and its judged-rejected conversations (negative in #supplements) less its supplement interactions.
    const personas = new Set([...byPersona.keys(), ...[...this.#supplements].filter(([, n]) => n < 0).map(([persona]) => persona)]);
    for (const persona of personas) {
      const short = (byPersona.get(persona) ?? 0) - (this.#supplements.get(persona) ?? 0);
      if (short > 0) {
        personasShort += 1;
        missing += short;
      }
    }
    return { interactions: this.#count, failures: lines.length, personasShort, missing };
  }
}

/** Our files that DIR already holds (run.json included), even empty ones: they belong to a run. */
export async function outputIn(dir: string): Promise<string[]> {
  const ours = [...(Object.values(FILES) as string[]), RUN_FILE];
  return (await readdir(dir).catch(() => [] as string[])).filter((name) => ours.includes(name)).sort();
}
