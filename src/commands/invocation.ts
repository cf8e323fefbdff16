// `generate --out DIR --resume` alone: the settings and paths of the run that made DIR, read back from its run.json, and the command that continues it.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { safeUrl } from '../redact.js';
import { shellWord } from '../shell.js';
import { RUN_FILE, type Invocation, type RunRecord } from '../sinks/layout.js';
import type { GenerateFlags, NoiseMode } from './flags.js';

/** The Invocation a run records: its paths made absolute, and what of its flags is not in `settings`. */
export function invocationOf(file: string | undefined, flags: GenerateFlags): Invocation {
  const absolute = (path: string | undefined): string | null => (path === undefined ? null : resolve(path));
  return {
    input: file === undefined || file === '-' ? '-' : resolve(file),
    config: absolute(flags.config),
    queries: flags.queriesPath ?? absolute(flags.queries),
    concurrency: flags.concurrency ?? null,
    threads: flags.threads ?? null,
    max_cost: flags.maxCost ?? null,
    strict: flags.strict === true,
    base_url_withheld: flags.baseUrl !== undefined && safeUrl(flags.baseUrl) !== flags.baseUrl,
    batch: flags.batch ?? null,
    limit: typeof flags.limit === 'number' ? flags.limit : null,
  };
}

/** DIR's run.json, or undefined when it has none (or not one we can read). */
async function recordIn(dir: string): Promise<RunRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, RUN_FILE), 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

const given = <T>(flag: T | undefined, recorded: unknown): T | undefined => flag ?? (recorded === null || recorded === undefined ? undefined : (recorded as T));

/**
 * With `--resume`, the flags of the run that created DIR for every one not given now: the input, the
 * config file, seed, turns, provider, model, base URL, noise, supplement rounds, the judge, the query file,
 * concurrency, threads, --max-cost, --strict, --batch and --limit. Flags given now win (`--no-limit` lifts the limit) (and the fingerprint check then says
 * if they change what is written). Without --resume, or without a run.json that records them, the flags
 * are returned as they are.
 */
export async function resumeFlags(file: string | undefined, flags: GenerateFlags): Promise<{ file: string | undefined; flags: GenerateFlags }> {
  if (flags.resume !== true || flags.out === undefined || flags.out === '-') return { file, flags };
  const record = await recordIn(flags.out);
  const at = record?.invocation;
  if (record === undefined || at === undefined) return { file, flags };
  const settings = record.settings;
  if (flags.baseUrl === undefined && at.base_url_withheld) {
    throw new ConfigError(`--out ${flags.out}: the run was started with a --base-url holding credentials, which run.json does not keep; give --base-url again`);
  }
  const queriesTyped = given<string>(flags.queries, settings.queries);
  return {
    file: file ?? at.input,
    flags: {
      ...flags,
      config: given(flags.config, at.config),
      seed: given(flags.seed, settings.seed),
      minTurns: given(flags.minTurns, settings.min_turns),
      maxTurns: given(flags.maxTurns, settings.max_turns),
      provider: given(flags.provider, settings.provider),
      model: given(flags.model, settings.model),
      baseUrl: given(flags.baseUrl, settings.base_url),
      noise: given<NoiseMode>(flags.noise, settings.noise),
      supplementRounds: given(flags.supplementRounds, settings.supplement_rounds),
      judge: given(flags.judge, settings.judge),
      queries: queriesTyped,
      // Opened from where it was (a resume may run from another directory); typed as it was for the fingerprint.
      queriesPath: flags.queries === undefined ? (at.queries ?? undefined) : resolve(flags.queries),
      concurrency: given(flags.concurrency, at.concurrency),
      threads: given(flags.threads, at.threads),
      maxCost: given(flags.maxCost, at.max_cost),
      strict: flags.strict ?? (at.strict || undefined),
      batch: given(flags.batch, at.batch),
      limit: given(flags.limit, at.limit),
    },
  };
}

/**
 * The command that continues the run in `dir`: `--resume` reads everything else from run.json. A run
 * that read stdin needs it again, and one whose base URL held credentials needs --base-url again.
 */
export function resumeCommand(dir: string, invocation: Invocation | undefined, extra = ''): string {
  const command = `personaflow generate --out ${shellWord(dir)} --resume${invocation?.base_url_withheld === true ? ' --base-url <the URL with its credentials>' : ''}${extra}`;
  return invocation?.input === '-' ? `<the same input> | ${command.replace('generate --out', 'generate - --out')}` : command;
}
