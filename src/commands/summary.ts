// The lines a generate run ends with: what it made, how personas met their targets, what a resume did, how to go on.
import type { RoundReport } from '../operators/supplement.js';
import type { RunRecord } from '../sinks/layout.js';
import type { UsageTotals } from '../sinks/usage.js';
import type { SkipCounts } from '../streams/tasks.js';

/** `240 interactions, 2 failures, 1210 model calls, 14 retries, 0 bad input lines in 12.3 s, $0.0421 → out/`. */
export function summaryLine(totals: UsageTotals, counts: { readonly retries: number; readonly warnings: number; readonly seconds: number; readonly interrupted: boolean; readonly dir: string | undefined }): string {
  return (
    `${counts.interrupted ? 'interrupted: ' : ''}${totals.interactions} interactions, ${totals.failures} failures, ` +
    `${totals.calls} model calls, ${counts.retries} retries, ${counts.warnings} bad input lines in ${counts.seconds.toFixed(1)} s` +
    (totals.unpriced.length === 0 ? `, $${totals.runCost.toFixed(4)}` : '') +
    (totals.runEstimatedCalls === 0 ? '' : ` (tokens of ${totals.runEstimatedCalls} of ${totals.calls} calls estimated by personaflow)`) +
    (counts.dir === undefined ? '' : ` → ${counts.dir}`)
  );
}

/** `targets met: 97/100 personas after the main pass, 100/100 after round 1 (3 supplement tasks)`. */
export function targetsLine(personas: number, reports: readonly RoundReport[], rounds: number): string {
  const parts = reports.map((report) => `${personas - report.personasShort}/${personas} personas ${report.round === 0 ? 'after the main pass' : `after round ${report.round} (${report.tasks} supplement tasks)`}`);
  const last = reports.at(-1) as RoundReport;
  const end = last.personasShort === 0 ? '' : `; ${last.personasShort} still short by ${last.missing} interaction(s)${last.round >= rounds ? ` after ${rounds} supplement round(s)` : ''}`;
  return `targets met: ${parts.join(', ')}${end}`;
}

/** What a resume found and did. */
export function resumedLine(dir: string, already: number, counts: SkipCounts): string {
  return `resumed: ${already} interactions were already in ${dir}; ${counts.skipped} tasks skipped, ${counts.retried} failed tasks retried${counts.compensated > 0 ? `, ${counts.compensated} failed tasks left as made up by supplement` : ''}`;
}

/** The command that continues a run in `dir`. */
export const resumeCommand = (file: string | undefined, dir: string, config?: string): string => `personaflow generate ${file ?? '-'} --out ${dir} --resume${config === undefined ? '' : ` -c ${config}`}`;

/** Why two run records differ, in words: `seed 42 → 7, max_turns 5 → 3` or that the config file changed. */
export function explainChange(before: RunRecord, now: RunRecord): string {
  const changes = Object.keys({ ...before.settings, ...now.settings })
    .filter((key) => JSON.stringify(before.settings[key]) !== JSON.stringify(now.settings[key]))
    .map((key) => `${key} ${JSON.stringify(before.settings[key] ?? null)} → ${JSON.stringify(now.settings[key] ?? null)}`);
  return changes.length > 0 ? `it was written with other settings (${changes.join(', ')})` : 'it was written with another configuration (the config file changed)';
}
