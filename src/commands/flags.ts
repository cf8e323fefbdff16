// The flags of `personaflow generate`, as the command line gives them (and a resume fills them in from run.json).
import type { Shard } from '../streams/shard.js';
import type { NoiseMode } from './setup.js';

export type { NoiseMode };

export interface GenerateFlags {
  config?: string;
  out?: string;
  force?: boolean;
  provider?: string;
  model?: string;
  baseUrl?: string;
  concurrency?: number;
  threads?: number;
  seed?: number;
  minTurns?: number;
  maxTurns?: number;
  strict?: boolean;
  quiet?: boolean;
  noise?: NoiseMode;
  queries?: string;
  /** Where `queries` is, when a resume read it from run.json (it may run from another directory); else `queries` itself. */
  queriesPath?: string;
  supplementRounds?: number;
  resume?: boolean;
  retryFailed?: boolean;
  maxCost?: number;
  progress?: 'json';
  /** `--judge` / `--no-judge` (else `judge.enabled`). */
  judge?: boolean;
  shard?: Shard;
  /** `--queue redis://...`: the conversations run on workers (`personaflow worker`) that take tasks from this Redis. */
  queue?: string;
  /** `--name`: the queue run's name (default `personaflow`). */
  name?: string;
  /** `--backlog`: tasks queued or in progress at most (with --queue). */
  backlog?: number;
  /** `--batch`: every call through the provider's Batch API, round by round (else `batch.enabled`). */
  batch?: boolean;
  /** `--limit N`: only the first N persona × query tasks of the input (of the shard); `--no-limit` (false) lifts a resumed run's. */
  limit?: number | false;
  /** `--dry-run`: print the prompts and one conversation made by sim, call no model, write nothing. */
  dryRun?: boolean;
  /** `--preview`: the same with one real conversation with the configured models (billed). */
  preview?: boolean;
  /** `--verbose`: a stderr line for every model call attempt and every retry. */
  verbose?: boolean;
}
