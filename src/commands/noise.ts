// `personaflow noise`: text lines in, PersonaGym NoiseResult lines out, in input order.
import { concatMap, pipe } from 'rxjs';
import { loadConfig, runSeed } from '../config/load.js';
import { setUpDistractor } from '../distractor/setup.js';
import { describeError } from '../errors.js';
import { buildDistractorModel } from '../models/build.js';
import { noise } from '../operators/noise.js';
import { BrokenPipeError, streamWriter } from '../sinks/stdout.js';
import { UsageTotals } from '../sinks/usage.js';
import { openInput } from '../streams/ndjson.js';
import { pullThrough } from '../streams/pull.js';
import { readTexts } from '../streams/texts.js';
import { assertReadable } from './common.js';
import { Reporter } from './reporter.js';
import { callLine, retryLine } from './verbose.js';

export interface NoiseFlags {
  config?: string;
  semantic?: boolean;
  strategy?: string;
  seed?: number;
  versions?: number;
  concurrency?: number;
  provider?: string;
  model?: string;
  baseUrl?: string;
  strict?: boolean;
  quiet?: boolean;
  /** `--verbose`: a stderr line for every model call attempt and every retry. */
  verbose?: boolean;
}

/** Runs `personaflow noise` and returns its exit code. */
export async function runNoise(file: string | undefined, flags: NoiseFlags): Promise<number> {
  const started = Date.now();
  const report = new Reporter(flags.quiet === true, flags.verbose === true);
  const loaded = await loadConfig(flags.config);
  const { config } = loaded;
  const seed = runSeed(config, flags.seed);
  const semantic = flags.semantic ?? config.distractor.use_semantic;
  const concurrency = flags.concurrency ?? config.interaction_generation.max_workers;
  // Only the distractor's model: noise never calls the assistant or the user simulator, so their keys and files are not needed.
  const models = semantic ? buildDistractorModel(config, { provider: flags.provider, model: flags.model, baseUrl: flags.baseUrl, simFallback: flags.model === undefined && loaded.named.length === 0, seed, concurrency, baseDir: loaded.baseDir, onNotice: (message) => report.say(message), onWarning: (message) => report.warning(message), onCall: report.verbose ? (call) => report.detail(callLine(call)) : undefined }) : undefined;
  const distractor = await setUpDistractor(config, loaded.baseDir, { semantic, strategyFile: flags.strategy, model: models?.distractor });
  for (const notice of [...loaded.notices, ...(models?.notices ?? [])]) report.notice(notice);
  await assertReadable(file, 'text');
  const input = openInput(file);
  const texts = readTexts(input.stream, { name: input.name, strict: flags.strict === true, onWarning: (message) => report.warn(message) });
  const totals = new UsageTotals(config.personaflow.prices);
  let retries = 0;
  let count = 0;
  const stdout = streamWriter(process.stdout);
  // Writing is part of the pulled pipeline, so a slow stdout slows reading instead of filling memory.
  const results$ = pullThrough(
    texts,
    concurrency * 2,
    pipe(
      noise({
        distractor,
        seed,
        versions: flags.versions ?? 1,
        concurrency,
        maxRetries: config.interaction_generation.max_retries,
        retryDelayMs: config.interaction_generation.retry_delay * 1000,
        onRetry: (module, error, note) => {
          retries += 1;
          report.detail(retryLine(module, error, note, config.interaction_generation.max_retries));
        },
        onUsage: totals.call.bind(totals),
      }),
      concatMap(async (results) => {
        for (const result of results) await stdout.push(JSON.stringify(result));
        return results;
      }),
    ),
  );
  const outcome = await new Promise<{ error?: unknown }>((resolve) => {
    results$.subscribe({ next: () => (count += 1), error: (error: unknown) => resolve({ error }), complete: () => resolve({}) });
  });
  await models?.close();
  try {
    await stdout.flush();
  } catch (error) {
    if (error instanceof BrokenPipeError) return 0;
    throw error;
  }
  if (outcome.error instanceof BrokenPipeError) return 0;
  if (outcome.error !== undefined) throw outcome.error instanceof Error ? outcome.error : new Error(describeError(outcome.error));
  report.notice(`${count} texts noised (${distractor.type === 'semantic' ? 'semantic' : 'rules'}), ${totals.calls} model calls, ${retries} retries, ${report.warnings} bad input lines in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}
