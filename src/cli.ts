// The command line: `personaflow generate` (noise and export come later), Unix manners, exit codes.
import { stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Subscription } from 'rxjs';
import { loadConfig, runSeed } from './config.js';
import { ConfigError, FatalError, describeError } from './errors.js';
import { buildModels } from './models/index.js';
import { DEFAULT_STOP_TOKEN, loadTemplate } from './models/prompts.js';
import { generate } from './pipeline.js';
import { DirSink } from './sinks/dir.js';
import { BrokenPipeError, streamWriter } from './sinks/stdout.js';
import { UsageTotals } from './sinks/usage.js';
import { openInput } from './streams/ndjson.js';
import { stoppable } from './streams/pull.js';
import { readTasks } from './streams/personas.js';
import type { Outcome } from './types.js';

const say = (message: string): void => {
  process.stderr.write(`personaflow: ${message}\n`);
};

function integer(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got \`${value}\``);
    return n;
  };
}

interface GenerateFlags {
  config?: string;
  out?: string;
  force?: boolean;
  provider?: string;
  model?: string;
  baseUrl?: string;
  concurrency?: number;
  seed?: number;
  minTurns?: number;
  maxTurns?: number;
  strict?: boolean;
  quiet?: boolean;
}

const MAX_WARNINGS = 50;
const GRACE_SECONDS = 30;

async function runGenerate(file: string | undefined, flags: GenerateFlags): Promise<number> {
  const started = Date.now();
  const loaded = await loadConfig(flags.config);
  const { config } = loaded;
  const ig = config.interaction_generation;
  const minTurns = flags.minTurns ?? ig.min_turns;
  const maxTurns = flags.maxTurns ?? Math.max(ig.max_turns, minTurns);
  if (maxTurns < minTurns) throw new ConfigError(`--max-turns ${maxTurns} is below --min-turns ${minTurns}`);
  const seed = runSeed(config, flags.seed);
  const concurrency = flags.concurrency ?? ig.max_workers;
  const models = buildModels(config, { provider: flags.provider, model: flags.model, baseUrl: flags.baseUrl, seed });
  const template = await loadTemplate(ig.user_model.system_prompt_template, loaded.baseDir, 'interaction_generation.user_model.system_prompt_template');
  if (flags.quiet !== true) for (const notice of [...loaded.notices, ...models.notices]) say(notice);

  if (file !== undefined && file !== '-') {
    const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(`${file}: cannot read personas file (${error.code ?? 'error'})`);
    });
    if (info.isDirectory()) throw new ConfigError(`${file}: is a directory, expected a persona NDJSON file`);
  }
  const input = openInput(file);
  let warnings = 0;
  const tasks = readTasks(input.stream, {
    name: input.name,
    seed,
    minTurns,
    maxTurns,
    strict: flags.strict === true,
    onWarning: (message) => {
      warnings += 1;
      if (warnings <= MAX_WARNINGS) process.stderr.write(`${message}\n`);
      else if (warnings === MAX_WARNINGS + 1) say(`more bad lines follow; only the count is reported from here on`);
    },
  });

  const totals = new UsageTotals();
  const dir = flags.out === undefined ? undefined : await DirSink.open(flags.out, { force: flags.force === true, usage: totals });
  const stdout = dir === undefined ? streamWriter(process.stdout) : undefined;
  const write = (outcome: Outcome): Promise<void> => {
    if (dir !== undefined) return dir.write(outcome);
    totals.outcome(outcome);
    if (outcome.ok) return (stdout as NonNullable<typeof stdout>).push(JSON.stringify(outcome.interaction));
    const { failure } = outcome;
    say(`failed ${failure.persona_id}/${failure.query_id} after ${failure.attempts} attempt(s): ${failure.error.kind}: ${failure.error.message}`);
    return Promise.resolve();
  };
  let retries = 0;
  let stopping = false;
  let grace: NodeJS.Timeout | undefined;
  let onSignal: (() => void) | undefined;

  const finished = new Promise<{ error?: unknown; interrupted?: boolean }>((resolve) => {
    const subscription: Subscription = generate(
      stoppable(tasks, () => stopping),
      {
        pool: models.pool,
        user: { ...models.user, template, feedbackProbability: ig.user_model.feedback_probability },
        seed,
        minTurns,
        maxTurns,
        concurrency,
        maxRetries: ig.max_retries,
        retryDelayMs: ig.retry_delay * 1000,
        stopToken: config.personaflow.stop_token ?? DEFAULT_STOP_TOKEN,
        onRetry: () => {
          retries += 1;
        },
        onUsage: (module, model, usage) => totals.call(module, model, usage),
      },
      write,
    ).subscribe({ error: (error: unknown) => resolve({ error, interrupted: stopping }), complete: () => resolve({ interrupted: stopping }) });
    // First Ctrl-C: stop reading and let the conversations in flight finish (they are paid for);
    // a second one, or the grace period running out, aborts them.
    const abort = (): void => {
      subscription.unsubscribe();
      resolve({ interrupted: true });
    };
    onSignal = (): void => {
      if (stopping) {
        abort();
        return;
      }
      stopping = true;
      input.stream.destroy();
      say(`stopping: no new conversations; finishing those in flight (up to ${GRACE_SECONDS} s; Ctrl-C again to abort them)`);
      grace = setTimeout(abort, GRACE_SECONDS * 1000);
      grace.unref();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const result = await finished;
  clearTimeout(grace);
  // Only our own handlers: a program embedding the CLI may have its own.
  if (onSignal !== undefined) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  if (result.error instanceof BrokenPipeError) return 0;
  try {
    if (dir !== undefined) await dir.close();
    else await stdout?.flush();
  } catch (error) {
    if (error instanceof BrokenPipeError) return 0;
    throw error;
  }
  if (result.error !== undefined) throw result.error instanceof Error ? result.error : new Error(describeError(result.error));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const calls = totals.calls;
  if (flags.quiet !== true || result.interrupted === true) {
    say(
      `${result.interrupted === true ? 'interrupted: ' : ''}${totals.interactions} interactions, ${totals.failures} failures, ` +
        `${calls} model calls, ${retries} retries, ${warnings} bad input lines in ${seconds} s` +
        (dir === undefined ? '' : ` → ${dir.dir}`),
    );
  }
  if (result.interrupted === true) return 130;
  return totals.failures > 0 ? 3 : 0;
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}

/** Builds the program; exported for tests. */
export function program(setExitCode: (code: number) => void): Command {
  const cli = new Command()
    .name('personaflow')
    .description('Synthetic multi-turn conversations from personas: persona NDJSON in, PersonaGym interactions out.')
    .version(version())
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text) });
  cli
    .command('generate')
    .description('simulate one conversation per persona × query; interactions as NDJSON on stdout or into --out DIR')
    .argument('[personas]', 'persona NDJSON file, or - for stdin', '-')
    .option('-c, --config <file>', 'PersonaGym-compatible config.yaml (defaults: config/default.yaml)')
    .option('-o, --out <dir>', 'write interactions.ndjson, failures.ndjson, index.ndjson and usage.json into DIR')
    .option('--force', 'overwrite the output files already in --out DIR')
    .addOption(new Option('--provider <name>', 'use this provider for every model').choices(['sim', 'openai', 'openrouter']))
    .option('--model <name>', 'one model for the assistant (replaces the pool) and the user simulator')
    .option('--base-url <url>', 'OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, LM Studio)')
    .option('-j, --concurrency <n>', 'conversations in flight at once (max_workers)', integer(1))
    .option('--seed <n>', 'run seed: same seed, same interactions (with sim)', integer(0))
    .option('--min-turns <n>', 'fewest user→assistant exchanges', integer(1))
    .option('--max-turns <n>', 'most user→assistant exchanges', integer(1))
    .option('--strict', 'stop at the first bad input line instead of reporting and skipping it')
    .option('-q, --quiet', 'no notices or summary on stderr (warnings and errors still appear)')
    .action(async (file: string, flags: GenerateFlags) => {
      setExitCode(await runGenerate(file, flags));
    });
  return cli;
}

/** Entry point for bin/personaflow.js: runs the command and sets process.exitCode (never calls process.exit mid-stream). */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    await program((code) => (process.exitCode = code)).parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? 0 : 2;
    } else if (error instanceof ConfigError || error instanceof FatalError) {
      say(error.message);
      process.exitCode = error.exitCode;
    } else {
      say(`internal error: ${describeError(error)}`);
      if (process.env.PERSONAFLOW_DEBUG !== undefined && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
      process.exitCode = 1;
    }
  }
}
