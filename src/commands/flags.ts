// The flags of `personaflow generate`, as the command line gives them (and a resume fills them in from run.json).

export type NoiseMode = 'off' | 'rules' | 'semantic';

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
}
