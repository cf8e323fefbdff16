// `personaflow view DIR`: a read-only page about a `generate --out` directory, served on 127.0.0.1 until Ctrl-C.
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { integerOption } from '../options.js';
import { Dataset } from '../view/dataset.js';
import { Pacer } from '../view/pace.js';
import { startViewer } from '../view/server.js';
import { Reporter } from './reporter.js';

export interface ViewFlags {
  port?: number;
  open?: boolean;
  config?: string;
  quiet?: boolean;
}

/** The system's command that opens a URL in the default browser. */
function browserCommand(url: string): [string, string[]] {
  if (process.platform === 'darwin') return ['open', [url]];
  if (process.platform === 'win32') return ['cmd', ['/c', 'start', '""', url]];
  return ['xdg-open', [url]];
}

/** Opens `url` in a browser, detached; a missing opener is one line on stderr, not an error. */
function openBrowser(url: string, report: Reporter): void {
  const [command, args] = browserCommand(url);
  try {
    const child = spawn(command, args, { stdio: 'ignore', detached: true });
    child.once('error', () => report.warning(`--open: could not start ${command}; open ${url} yourself`));
    child.unref();
  } catch {
    report.warning(`--open: could not start ${command}; open ${url} yourself`);
  }
}

/**
 * Runs `personaflow view`: opens DIR (its index and a scan load in the background), serves the page and
 * prints its address on stderr; resolves with exit code 0 when Ctrl-C or SIGTERM stops the server.
 */
export async function runView(dir: string, flags: ViewFlags, signal?: AbortSignal): Promise<number> {
  const report = new Reporter(flags.quiet === true);
  const { config, notices } = await loadConfig(flags.config);
  for (const notice of notices) report.notice(notice);
  // The background index load and scan give way to the page's requests (and hold back for its first ones).
  const dataset = await Dataset.open(dir, { prices: config.personaflow.prices, pacer: new Pacer() });
  let viewer;
  try {
    viewer = await startViewer(dataset, { port: flags.port });
  } catch (error) {
    await dataset.close();
    throw error;
  }
  const scan = dataset.start().catch((error: unknown) => report.warning(`the scan of ${dir} stopped: ${(error as Error).message}`));
  // The address is said even with --quiet: without it the server is of no use.
  report.say(`viewing ${dir} at ${viewer.url} (read-only, this machine only; Ctrl-C to stop)`);
  if (flags.open === true) openBrowser(viewer.url, report);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    signal?.addEventListener('abort', stop);
  });
  await viewer.close();
  await dataset.close();
  await scan;
  return 0;
}

/** Defines `view` on a command made by `cli.command('view')`. */
export function viewCommand(command: Command, setExitCode: (code: number) => void): Command {
  return command
    .description('browse a `generate --out` directory on a local, read-only page: conversations with filters, and a dashboard')
    .argument('<dir>', 'a directory written by generate --out')
    .option('--port <n>', 'port on 127.0.0.1 (default: a free one, printed on stderr)', integerOption(1))
    .option('--open', 'open the page in the default browser')
    .option('-c, --config <file>', 'configuration whose personaflow.prices price each conversation (default: config/default.yaml)')
    .option('-q, --quiet', 'no notices on stderr (the address is always printed)')
    .action(async (dir: string, flags: ViewFlags) => {
      setExitCode(await runView(dir, flags));
    });
}
