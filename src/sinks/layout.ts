// What an `--out` directory holds: the file names, one index line, and run.json's record.

export const FILES = {
  interactions: 'interactions.ndjson',
  failures: 'failures.ndjson',
  index: 'index.ndjson',
  usage: 'usage.json',
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
}
