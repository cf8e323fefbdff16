// `personaflow report DIR`: the dashboard and a sample of conversations in one HTML file that opens with no network.
import type { Command } from 'commander';
import { loadConfig, runSeed } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { integerOption } from '../options.js';
import { replaceFile } from '../sinks/files.js';
import { BrokenPipeError, streamWriter } from '../sinks/stdout.js';
import { loadAssets } from '../view/assets.js';
import { Dataset } from '../view/dataset.js';
import { buildReport, renderReport } from '../view/report.js';
import { Reporter } from './reporter.js';

export interface ReportFlags {
  out?: string;
  sample?: number;
  seed?: number;
  config?: string;
  quiet?: boolean;
}

/** Conversations a report shows unless --sample says otherwise. */
export const DEFAULT_SAMPLE = 50;

/** Runs `personaflow report` and returns its exit code. */
export async function runReport(dir: string, flags: ReportFlags): Promise<number> {
  const started = Date.now();
  const report = new Reporter(flags.quiet === true);
  const { config, notices } = await loadConfig(flags.config);
  for (const notice of notices) report.notice(notice);
  const assets = await loadAssets();
  const dataset = await Dataset.open(dir, { prices: config.personaflow.prices });
  let html: string;
  let shown: number;
  let scanned: number;
  try {
    const data = await buildReport(dataset, { sample: flags.sample ?? DEFAULT_SAMPLE, seed: runSeed(config, flags.seed) });
    html = renderReport(assets, data);
    shown = data.conversations.length;
    scanned = data.stats.scanned;
  } finally {
    await dataset.close();
  }
  if (flags.out === undefined || flags.out === '-') {
    const out = streamWriter(process.stdout);
    try {
      await out.push(html.replace(/\n$/, ''));
      await out.flush();
    } catch (error) {
      // `| head` closed the pipe: a quiet stop, as everywhere.
      if (error instanceof BrokenPipeError) return 0;
      throw error;
    }
  } else {
    await replaceFile(flags.out, html).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(`--out ${flags.out as string}: cannot write the report (${error.code ?? 'error'})`);
    });
  }
  const where = flags.out === undefined || flags.out === '-' ? 'stdout' : flags.out;
  report.notice(`report of ${scanned} interactions with ${shown} sampled conversations (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB) in ${((Date.now() - started) / 1000).toFixed(1)} s → ${where}`);
  return 0;
}

/** Defines `report` on a command made by `cli.command('report')`. */
export function reportCommand(command: Command, setExitCode: (code: number) => void): Command {
  return command
    .description('one self-contained HTML file (no network needed to open it): the dashboard of a `generate --out` directory and a sample of its conversations')
    .argument('<dir>', 'a directory written by generate --out')
    .option('-o, --out <file>', 'write the report here (default: stdout)')
    .option('--sample <n>', `conversations to include, drawn at random with the seed (default ${DEFAULT_SAMPLE})`, integerOption(0))
    .option('--seed <n>', 'seed of the sample (default: personaflow.seed, experiment.seed, else 42)', integerOption(0))
    .option('-c, --config <file>', 'configuration whose personaflow.prices price each conversation (default: config/default.yaml)')
    .option('-q, --quiet', 'no notices or summary on stderr')
    .action(async (dir: string, flags: ReportFlags) => {
      setExitCode(await runReport(dir, flags));
    });
}
