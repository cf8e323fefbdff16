// `personaflow merge DIR... --out DIR`: the directories of one run's shards (or pieces) as one directory, after checking they belong together.
import { realpath, stat } from 'node:fs/promises';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { DirSink, outputIn } from '../sinks/dir.js';
import type { RunRecord } from '../sinks/layout.js';
import { mergeInput, mergeInto, type MergeInput } from '../sinks/merge.js';
import { UsageTotals } from '../sinks/usage.js';
import { version } from './common.js';
import { Reporter } from './reporter.js';
import { explainChange } from './summary.js';

export interface MergeFlags {
  out: string;
  config?: string;
  force?: boolean;
  quiet?: boolean;
}

/** An input must be a generate --out directory. */
async function checkInput(dir: string): Promise<void> {
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`${dir}: cannot read (${error.code ?? 'error'})`);
  });
  if (!info.isDirectory() || (await outputIn(dir)).length === 0) throw new ConfigError(`${dir}: not a \`generate --out\` directory (no interactions.ndjson, run.json, ...)`);
}

/**
 * The record of the merged directory, once every input is known to come from the same settings: the
 * same configuration fingerprint (the shards of one run share it), and no two copies of one shard.
 */
export function mergedRecord(inputs: readonly MergeInput[], now: Date, notice: (message: string) => void): RunRecord {
  const first = inputs[0];
  if (first === undefined) throw new ConfigError('merge needs at least one directory');
  for (const input of inputs) {
    if (input.run === undefined) throw new ConfigError(`${input.dir}: no run.json, so it cannot be checked to come from the same settings as the others (written by an older version?)`);
  }
  const base = first.run as RunRecord;
  for (const input of inputs.slice(1)) {
    const run = input.run as RunRecord;
    if (run.config_fingerprint !== base.config_fingerprint) {
      throw new ConfigError(`${input.dir} cannot join ${first.dir}: ${explainChange(base, run)}; one dataset must come from one configuration`);
    }
  }
  const shards = inputs.map((input) => (input.run as RunRecord).shard);
  const counts = new Set(shards.filter((s): s is string => s !== undefined).map((s) => s.split('/')[1]));
  if (counts.size === 1 && shards.every((s) => s !== undefined)) {
    const n = Number([...counts][0]);
    const have = new Set(shards.map((s) => Number(s.split('/')[0])));
    const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !have.has(i));
    if (missing.length > 0) notice(`shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${n} not given: the merged directory holds part of the run`);
  }
  return {
    version: version(),
    seed: base.seed,
    config_fingerprint: base.config_fingerprint,
    settings: base.settings,
    created_at: now.toISOString(),
    merged_from: inputs.map((input) => ({ dir: input.dir, shard: (input.run as RunRecord).shard ?? null, created_at: (input.run as RunRecord).created_at })),
  };
}

/** Runs `personaflow merge` and returns its exit code. */
export async function runMerge(dirs: readonly string[], flags: MergeFlags): Promise<number> {
  const report = new Reporter(flags.quiet === true);
  for (const dir of dirs) await checkInput(dir);
  const out = await realpath(flags.out).catch(() => undefined);
  for (const dir of dirs) {
    if (out !== undefined && (await realpath(dir)) === out) throw new ConfigError(`--out ${flags.out} is also an input; merge into a new directory`);
  }
  const inputs = await Promise.all(dirs.map((dir) => mergeInput(dir)));
  const record = mergedRecord(inputs, new Date(), (m) => report.warning(m));
  // Costs are recomputed from the summed tokens with these prices, as a resumed run's are.
  const { config } = await loadConfig(flags.config);
  const usage = new UsageTotals(config.personaflow.prices);
  for (const input of inputs) {
    if (input.usage === undefined) report.warning(`${input.dir}: no usage.json (the run was killed before it ended?): its tokens are not in the merged usage.json; resume it first to count them`);
    else usage.merge(input.usage, { counts: false });
  }
  const sink = await DirSink.open(flags.out, { force: flags.force === true, usage, run: record });
  let counts;
  try {
    counts = await mergeInto(sink, inputs, (message) => report.warn(message));
  } finally {
    await sink.close();
  }
  const dropped = [counts.duplicates > 0 ? `${counts.duplicates} duplicate interactions left out` : '', counts.failuresResolved > 0 ? `${counts.failuresResolved} failures left out (written as an interaction, or listed twice)` : '', counts.skipped > 0 ? `${counts.skipped} damaged lines skipped` : ''].filter((s) => s !== '');
  report.notice(`merged ${inputs.length} directories: ${counts.interactions} interactions, ${counts.rejected > 0 ? `${counts.rejected} rejected by the judge, ` : ''}${counts.failures} failures${dropped.length > 0 ? ` (${dropped.join(', ')})` : ''} → ${flags.out}`);
  return 0;
}
