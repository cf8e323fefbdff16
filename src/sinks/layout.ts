// What an `--out` directory holds: the file names, one index line, and run.json's record.

export const FILES = {
  interactions: 'interactions.ndjson',
  failures: 'failures.ndjson',
  index: 'index.ndjson',
  usage: 'usage.json',
  /** The usage log: one line per billed call, appended as it is billed, folded into usage.json (see UsageRecord). */
  usageLog: 'usage.ndjson',
  /** The simulator replies the guards rejected, with their reasons (append-only, one line each). */
  rejections: 'guard-rejections.ndjson',
  /** Conversations the judge rejected, whole, with metadata.quality (their personas were topped up). */
  rejected: 'rejected.ndjson',
} as const;

export const RUN_FILE = 'run.json';

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

/** run.json: what produced the directory, so a resume with other settings is caught. */
export interface RunRecord {
  readonly version: string;
  readonly seed: number;
  readonly config_fingerprint: string;
  /** The settings behind the fingerprint, readable, so a mismatch can be explained. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly created_at: string;
  readonly resumed_at?: readonly string[];
  /** The providers whose models wrote the directory (sim when they fell back); not in the fingerprint. */
  readonly providers?: readonly string[];
  /** How the run was started, so `generate --out DIR --resume` alone continues it; not in the fingerprint. */
  readonly invocation?: Invocation;
  /** `i/n` when the run was one shard of n (`--shard`): outside the fingerprint, which the shards share. */
  readonly shard?: string;
  /** The directories `personaflow merge` combined into this one. */
  readonly merged_from?: readonly { readonly dir: string; readonly shard: string | null; readonly created_at: string }[];
}

/**
 * The command line of the run that created a directory, beyond `settings`: paths made absolute (a resume
 * may start elsewhere), and the flags that do not change what is written. A base URL with credentials is
 * not kept (`settings.base_url` shows it without them), so a resume must give `--base-url` again.
 */
export interface Invocation {
  /** The personas file, absolute, or `-` for stdin. */
  readonly input: string;
  /** The config file, absolute, or null for the defaults. */
  readonly config: string | null;
  /** `--queries`, absolute (settings.queries keeps it as it was typed, for the fingerprint). */
  readonly queries: string | null;
  readonly concurrency: number | null;
  readonly threads: number | null;
  /** --max-cost: a ceiling on the whole directory's spend. */
  readonly max_cost: number | null;
  readonly strict: boolean;
  /** --base-url carried credentials or a query, which run.json does not keep. */
  readonly base_url_withheld: boolean;
  /** `--batch` as given (absent in records written before batch mode). */
  readonly batch?: boolean | null;
  /** `--limit N`: the first N tasks of the input (absent in records written before it). */
  readonly limit?: number | null;
}
