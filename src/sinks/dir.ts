// `--out DIR`: interactions.ndjson, failures.ndjson, an append-only running index, and usage.json.
import { mkdir, open, readdir, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Interaction, Outcome } from '../types.js';
import { Batcher, lineBatcher } from './batcher.js';
import { UsageTotals } from './usage.js';

export const FILES = {
  interactions: 'interactions.ndjson',
  failures: 'failures.ndjson',
  index: 'index.ndjson',
  usage: 'usage.json',
} as const;

/** One index line: where interaction number `n` starts in interactions.ndjson and how many bytes it has. */
export interface IndexEntry {
  readonly n: number;
  readonly interaction_id: string;
  readonly persona_id: string;
  readonly query_id: string;
  readonly num_turns: number;
  readonly offset: number;
  readonly bytes: number;
}

/**
 * Writes outcomes into a directory. Interactions and their index lines are written in batches, the
 * interactions first: the index is append-only, so it is valid on disk at every moment, never names an
 * interaction that is not yet in the file, and costs O(1) per interaction (no rewrite of a growing file).
 * usage.json is replaced atomically (temporary file, then rename) when the sink closes.
 */
export class DirSink {
  readonly usage: UsageTotals;
  readonly #handles: Record<'interactions' | 'failures' | 'index', FileHandle>;
  readonly #interactions: Batcher<Interaction>;
  readonly #failures: Batcher<string>;
  #count = 0;
  #offset = 0;

  private constructor(readonly dir: string, handles: Record<'interactions' | 'failures' | 'index', FileHandle>, usage: UsageTotals) {
    this.#handles = handles;
    this.usage = usage;
    this.#failures = lineBatcher((text) => handles.failures.appendFile(text, 'utf8'));
    this.#interactions = new Batcher((batch) => this.#writeInteractions(batch));
  }

  /**
   * Opens DIR, creating it; a DIR that already holds output is refused unless `force`. `usage` is the
   * run's accounting (fed per call by the pipeline), written to usage.json on close.
   */
  static async open(dir: string, options: { force?: boolean; usage?: UsageTotals } = {}): Promise<DirSink> {
    await mkdir(dir, { recursive: true });
    const ours = Object.values(FILES) as string[];
    const existing = (await readdir(dir)).filter((name) => ours.includes(name)).sort();
    if (existing.length > 0 && options.force !== true) {
      throw new ConfigError(`--out ${dir}: the directory already holds ${existing.join(', ')}; use --force to overwrite it`);
    }
    const file = (name: string): Promise<FileHandle> => open(join(dir, name), 'w');
    const handles = { interactions: await file(FILES.interactions), failures: await file(FILES.failures), index: await file(FILES.index) };
    return new DirSink(dir, handles, options.usage ?? new UsageTotals());
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
  }

  /** Writes what is pending, then usage.json, and closes the files. */
  async close(): Promise<void> {
    try {
      await Promise.all([this.#interactions.flush(), this.#failures.flush()]);
      const temporary = join(this.dir, `.${FILES.usage}.tmp`);
      await writeFile(temporary, `${JSON.stringify(this.usage, null, 2)}\n`);
      await rename(temporary, join(this.dir, FILES.usage));
    } finally {
      await Promise.all(Object.values(this.#handles).map((handle) => handle.close()));
    }
  }
}
