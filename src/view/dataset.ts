// A `generate --out` directory opened for reading: pages of conversations through the index's offsets, one conversation, the summary and the dashboard's counts.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { FILES, RUN_FILE } from '../sinks/layout.js';
import type { PriceTable } from '../sinks/usage.js';
import { PAGE_SIZE, type ConversationView, type Filter, type PageResponse, type RejectionView, type Row, type Stats, type Summary } from './api.js';
import { Catalogue, numberAt } from './catalogue.js';
import { FacetStore } from './facets.js';
import { conversationOf, facetsOf, rejectionOf, rowOf } from './interaction.js';
import { lineAt, parseLine } from './lines.js';
import { unhurried, type Pacer } from './pace.js';
import { redact } from './redact.js';
import { Scan } from './scan.js';
import { usageRows } from './stats.js';

/** Rejected replies shown with one conversation. */
const MAX_REJECTIONS_SHOWN = 200;

async function fileSize(path: string): Promise<number | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() === true ? info.size : undefined;
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export interface DatasetOptions {
  /** USD per million tokens, to price one conversation (the configuration's `personaflow.prices`). */
  readonly prices?: PriceTable;
  /** How the background work gives way (the server tells it when requests come and go); by default it gives way to nobody. */
  readonly pacer?: Pacer;
}

/**
 * A directory written by `generate --out`, read-only. Opening it reads nothing but sizes, usage.json and
 * run.json; the index is loaded and the interactions scanned in the background (`start`). A page of
 * the unfiltered list is read through the index's offsets, a line at a time; a filtered page comes from
 * the scan's facets (over what it has read so far) and is then read the same way.
 */
export class Dataset {
  readonly scan: Scan;
  readonly catalogue: Catalogue | undefined;
  #started = false;

  private constructor(
    readonly dir: string,
    readonly handle: FileHandle,
    readonly size: number,
    readonly usage: unknown,
    readonly run: unknown,
    paths: { failures: string | undefined; rejections: string | undefined; index: string | undefined },
    readonly prices: PriceTable,
    readonly pacer: Pacer,
  ) {
    this.scan = new Scan({ interactions: join(dir, FILES.interactions), failures: paths.failures, rejections: paths.rejections }, pacer);
    this.catalogue = paths.index === undefined ? undefined : new Catalogue(paths.index, size, pacer);
  }

  /** Opens DIR; a path that is not a `generate --out` directory is a ConfigError (exit 2). */
  static async open(dir: string, options: DatasetOptions = {}): Promise<Dataset> {
    const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(`${dir}: cannot open (${error.code ?? 'error'})`);
    });
    if (!info.isDirectory()) throw new ConfigError(`${dir}: is not a directory (expected a \`generate --out\` directory)`);
    const interactions = join(dir, FILES.interactions);
    const size = await fileSize(interactions);
    if (size === undefined) throw new ConfigError(`${dir}: has no ${FILES.interactions} (expected a \`generate --out\` directory)`);
    const present = async (name: string): Promise<string | undefined> => ((await fileSize(join(dir, name))) === undefined ? undefined : join(dir, name));
    const [failures, rejections, index, usage, run] = await Promise.all([present(FILES.failures), present(FILES.rejections), present(FILES.index), readJson(join(dir, FILES.usage)), readJson(join(dir, RUN_FILE))]);
    const handle = await open(interactions, 'r');
    return new Dataset(resolve(dir), handle, size, usage, run, { failures, rejections, index }, options.prices ?? {}, options.pacer ?? unhurried());
  }

  /** Starts loading the index and scanning, in the background; `scan.run()`'s promise is returned for those who wait. */
  start(): Promise<void> {
    if (this.#started) return this.scan.run();
    this.#started = true;
    void this.catalogue?.load();
    return this.scan.run();
  }

  /** Header figures. */
  summary(mode: Summary['mode'] = 'view'): Summary {
    const indexed = this.catalogue !== undefined && this.catalogue.count > 0;
    const interactions = this.scan.done ? this.scan.store.count : Math.max(indexed ? (this.catalogue?.count ?? 0) : 0, this.scan.store.count);
    return {
      dir: basename(this.dir),
      interactions,
      interactionsFinal: this.scan.done || (this.catalogue?.done === true && indexed),
      failures: this.scan.failureLines,
      rejections: this.scan.rejectionLines,
      scanned: this.scan.store.count,
      scanDone: this.scan.done,
      badLines: this.scan.badLines,
      run: redact(this.run ?? null),
      mode,
    };
  }

  stats(): Stats {
    return this.scan.stats.toJSON(this.scan.done, usageRows(redact(this.usage)), this.scan.store.featureChoices());
  }

  /** Page `page` (0-based) of the conversations that match `filter`. */
  async page(filter: Filter, page: number): Promise<PageResponse> {
    const skip = page * PAGE_SIZE;
    const store = this.scan.store;
    let located: { at: number; bytes: number; n: number }[];
    let matches: number;
    let complete: boolean;
    if (FacetStore.isEmpty(filter) && this.catalogue !== undefined && !(this.catalogue.done && this.catalogue.count === 0)) {
      located = await this.catalogue.entries(skip, PAGE_SIZE);
      matches = this.catalogue.count;
      complete = this.catalogue.done;
    } else {
      // A filter needs the scan's facets; without an index, the unfiltered list is the scan's order too.
      if (FacetStore.isEmpty(filter)) await this.scan.scanned(skip + PAGE_SIZE);
      const selected = store.select(filter, skip, PAGE_SIZE);
      located = selected.positions.map((i) => ({ at: store.at[i] as number, bytes: store.bytes[i] as number, n: i + 1 }));
      matches = selected.matches;
      complete = this.scan.done;
    }
    // The page's lines are read at once: one turn of the event loop for the page, not one per line.
    const lines = await Promise.all(located.map(({ at, bytes }) => lineAt(this.handle, at, this.size, bytes)));
    const rows: Row[] = located.map(({ at, n }, i) => {
      const line = parseLine(lines[i]);
      const facets = facetsOf(line);
      return rowOf(line, at, n, facets === undefined ? [] : this.scan.rejectionReasons(facets));
    });
    return { rows, page, pageSize: PAGE_SIZE, matches, complete };
  }

  /** The 1-based number of the interaction at byte `at`, when the scan or the index has reached it (0 otherwise). */
  numberOf(at: number): number {
    return numberAt(this.scan.store.at, this.scan.store.count, at) || (this.catalogue?.numberOf(at) ?? 0);
  }

  /** The conversation whose line starts at byte `at`, or undefined when no line starts there. */
  async conversation(at: number, n = this.numberOf(at)): Promise<ConversationView | undefined> {
    const line = parseLine(await lineAt(this.handle, at, this.size));
    const facets = facetsOf(line);
    if (facets === undefined) return undefined;
    const rejections: RejectionView[] = [];
    const path = this.scan.paths.rejections;
    if (path !== undefined) {
      const lines = (await this.scan.rejectionLinesOf(facets)).slice(0, MAX_REJECTIONS_SHOWN);
      if (lines.length > 0) {
        const handle = await open(path, 'r');
        try {
          const { size } = await handle.stat();
          for (const [offset, bytes] of lines) {
            const rejection = rejectionOf(parseLine(await lineAt(handle, offset, size, bytes)));
            if (rejection !== undefined) rejections.push(rejection);
          }
        } finally {
          await handle.close();
        }
      }
    }
    return conversationOf(line, at, n, rejections, this.prices);
  }

  /** Stops the background work and closes the file. */
  async close(): Promise<void> {
    this.scan.stop();
    this.catalogue?.stop();
    await this.handle.close();
  }
}
