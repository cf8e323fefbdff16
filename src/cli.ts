// The command line: the program's commands and options (each command runs from src/commands/), Unix manners, exit codes.
import { Command, CommanderError, Option } from 'commander';
import { estimateCommand } from './commands/estimate.js';
import { exportCommand } from './commands/export.js';
import { judgeCommand } from './commands/judge.js';
import { runGenerate, type GenerateFlags } from './commands/generate.js';
import { runMerge, type MergeFlags } from './commands/merge.js';
import { runNoise, type NoiseFlags } from './commands/noise.js';
import { runPreview } from './commands/preview.js';
import { reportCommand } from './commands/report.js';
import { validateCommand } from './commands/validate.js';
import { viewCommand } from './commands/view.js';
import type { WorkerFlags } from './commands/worker.js';
import { version } from './commands/common.js';
import { sayError, stderrLines } from './commands/reporter.js';
import { ConfigError, FatalError, describeError } from './errors.js';
import { BOUNDS, integerOption, positiveNumberOption, shardOption } from './options.js';

/** Builds the program; exported for tests. */
export function program(setExitCode: (code: number) => void): Command {
  const cli = new Command()
    .name('personaflow')
    .description('Synthetic multi-turn conversations from personas: persona NDJSON in, PersonaGym interactions out.')
    .version(version())
    .exitOverride()
    // Usage errors carry the prefix every stderr line has: `personaflow: error: unknown option '--x'`.
    .configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text), outputError: (text, write) => write(stderrLines('error', text.replace(/^error: /, '').trimEnd())) });
  cli
    .command('generate')
    .description('simulate one conversation per persona × query; interactions as NDJSON on stdout or into --out DIR')
    .argument('[personas]', 'persona NDJSON file, or - for stdin (the default; with --resume, the file the run was started with)')
    .option('-c, --config <file>', 'PersonaGym-compatible config.yaml (defaults: config/default.yaml)')
    .option('-o, --out <dir>', 'write interactions.ndjson, failures.ndjson, index.ndjson, usage.json into DIR (- for stdout); one run writes a DIR at a time')
    .option('--force', 'overwrite the output files already in --out DIR (with --resume: continue despite changed settings)')
    .option('--resume', 'continue the run in --out DIR with the settings it was started with (run.json): skip what it holds, retry its failures, append')
    .option('--no-retry-failed', 'with --resume, do not retry the tasks in failures.ndjson')
    .addOption(new Option('--progress <format>', 'progress as JSON lines on stderr, every 5 s and once at the end (instead of the live line shown when stderr is a terminal)').choices(['json']))
    .option('--max-cost <usd>', "a ceiling on the spend in USD (with --out, the directory's, earlier runs included): a conversation starts only if its worst case still fits", positiveNumberOption)
    .option('--shard <i/n>', 'run only shard i of n: the personas whose id hashes to i (each machine its own --out; `personaflow merge` joins them)', shardOption)
    .option('--queue <url>', 'redis://HOST[:PORT]: queue the tasks for `personaflow worker` processes on any machines; this process writes their outcomes')
    .option('--name <run>', 'with --queue: the run\'s name on that Redis (default: personaflow)')
    .option('--backlog <n>', 'with --queue: tasks queued or in progress at most (default 1000)', integerOption(1))
    .option('--batch', 'every model call through the provider\'s Batch API, round by round (half the price, hours of wall time; needs --out; default: batch.enabled)')
    .addOption(new Option('--provider <name>', 'use this provider for every model').choices(['sim', 'openai', 'openrouter', 'llama']))
    .option('--model <name>', 'one model for the assistant (replaces the pool) and the user simulator')
    .option('--base-url <url>', 'OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, LM Studio)')
    .option('-j, --concurrency <n>', 'conversations working at once (max_workers); one sitting out a retry lends its slot', integerOption(1, BOUNDS.concurrency))
    .option('--threads <n>', 'threads per llama model (default: threads in the config, else half the cores)', integerOption(1, BOUNDS.threads))
    .option('--seed <n>', 'run seed: same seed, same interactions (with sim)', integerOption(0))
    .option('--min-turns <n>', 'fewest user→assistant exchanges', integerOption(1, BOUNDS.turns))
    .option('--max-turns <n>', 'most user→assistant exchanges', integerOption(1, BOUNDS.turns))
    .option('--strict', 'stop at the first bad input line instead of reporting and skipping it')
    .option('--queries <file>', 'query dataset (PersonaGym query.jsonl) for personas that carry no queries')
    .option('--supplement-rounds <n>', 'rounds of new queries for personas short of their target (max_supplement_rounds)', integerOption(0, BOUNDS.supplementRounds))
    .option('--judge', 'judge every conversation (checks, then the judge model\'s review); rejected ones go to rejected.ndjson and their personas are topped up (default: judge.enabled)')
    .option('--no-judge', 'no judge, even when the config enables it')
    .addOption(new Option('--noise <mode>', 'noise user turns: off, rules (legacy strategies) or semantic (LLM, three layers); default from distractor.enabled / use_semantic').choices(['off', 'rules', 'semantic']))
    .option('--limit <n>', 'only the first N persona × query tasks of the input (of the shard); a --resume keeps it (run.json) and finishes them', integerOption(1))
    .option('--no-limit', 'with --resume: lift the --limit the run was started with')
    .option('--dry-run', 'print the simulator\'s and the assistant\'s prompts and one conversation for the first task, made by sim: no model call, nothing written, no lock')
    .option('--preview', 'the same, with one real conversation with the configured models (billed: its usage and cost are printed)')
    .option('-q, --quiet', 'no notices or summary on stderr (warnings and errors still appear)')
    .option('-v, --verbose', 'a stderr line for every model call attempt (role, model, status, latency, tokens, limiter wait) and every retry (its delay and why); never keys')
    .action(async (file: string | undefined, flags: GenerateFlags) => {
      setExitCode(flags.dryRun === true || flags.preview === true ? await runPreview(file, flags) : await runGenerate(file, flags));
    });
  cli
    .command('noise')
    .description('noisy versions of text lines or {"text": ..., "persona_features": {...}} lines, as NoiseResult NDJSON')
    .argument('[texts]', 'text or NDJSON file, or - for stdin', '-')
    .option('-c, --config <file>', 'PersonaGym-compatible config.yaml (distractor section)')
    .option('--semantic', 'the three-layer LLM distractor instead of the rule-based strategies (default: distractor.use_semantic)')
    .option('--no-semantic', 'the rule-based strategies even when the config says use_semantic')
    .option('--strategy <file>', 'strategy file in distractor_strategy.yaml format (with --semantic)')
    .option('--versions <n>', 'noisy versions per text', integerOption(1), 1)
    .option('--seed <n>', 'run seed: same seed, same noise', integerOption(0))
    .option('-j, --concurrency <n>', 'texts in flight at once (with --semantic)', integerOption(1, BOUNDS.concurrency))
    .addOption(new Option('--provider <name>', 'provider of the distractor model').choices(['sim', 'openai', 'openrouter', 'llama']))
    .option('--model <name>', 'the distractor model')
    .option('--base-url <url>', 'OpenAI-compatible endpoint for the distractor model')
    .option('--strict', 'stop at the first bad input line')
    .option('-q, --quiet', 'no notices or summary on stderr')
    .option('-v, --verbose', 'a stderr line for every model call attempt and every retry (never keys)')
    .action(async (file: string, flags: NoiseFlags) => {
      setExitCode(await runNoise(file, flags));
    });
  estimateCommand(cli.command('estimate'), setExitCode);
  judgeCommand(cli.command('judge'), setExitCode);
  exportCommand(cli.command('export'), setExitCode);
  viewCommand(cli.command('view'), setExitCode);
  reportCommand(cli.command('report'), setExitCode);
  validateCommand(cli.command('validate'), setExitCode);
  cli
    .command('worker')
    .description('take the tasks of a queue run (generate --queue) and hold their conversations; any number of workers on any machines share one rate budget')
    .requiredOption('--queue <url>', 'redis://HOST[:PORT] of the run')
    .option('--name <run>', 'the run\'s name on that Redis (default: personaflow)')
    .option('-c, --config <file>', 'the config file the run was started with (its fingerprint must match)')
    .option('-j, --concurrency <n>', 'conversations this worker holds at once (max_workers); one sitting out a retry lends its slot', integerOption(1))
    .option('--threads <n>', 'threads per llama model (default: threads in the config, else half the cores)', integerOption(1))
    .option('--lock-ms <ms>', 'how long a task stays with a worker that stopped answering before another takes it (default 30000)', integerOption(1000))
    .option('-q, --quiet', 'no notices or summary on stderr')
    .option('-v, --verbose', 'a stderr line for every model call attempt and every retry (never keys)')
    .action(async (flags: WorkerFlags) => {
      // The queue's code (BullMQ, ioredis) is loaded only by the commands that use it.
      const { runWorker } = await import('./commands/worker.js');
      setExitCode(await runWorker(flags));
    });
  cli
    .command('merge')
    .description('combine the --out directories of one run (its shards, or pieces) into one: interactions, what the judge rejected and failures once each, the guards\' rejected replies, a new index, usage summed')
    .argument('<dirs...>', 'generate --out directories made with the same settings')
    .requiredOption('-o, --out <dir>', 'the merged directory (interactions.ndjson, failures.ndjson, index.ndjson, usage.json, run.json)')
    .option('-c, --config <file>', 'config whose personaflow.prices price the summed tokens (defaults: config/default.yaml)')
    .option('--force', 'overwrite the output files already in --out DIR')
    .option('-q, --quiet', 'no notices or summary on stderr')
    .action(async (dirs: string[], flags: MergeFlags) => {
      setExitCode(await runMerge(dirs, flags));
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
      sayError(error.message);
      process.exitCode = error.exitCode;
    } else {
      sayError(`internal error: ${describeError(error)}`);
      if (process.env.PERSONAFLOW_DEBUG !== undefined && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
      process.exitCode = 1;
    }
  }
}
