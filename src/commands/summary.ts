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
    (counts.dir === undefined ? '' : ` → ${counts.dir}`)
  );
}

/** `rejected simulator replies: 12 (assistant_voice 5, too_long 4, repeat 3), each asked again; the texts are in out/guard-rejections.ndjson`. */
export function rejectionsLine(totals: UsageTotals, dir: string | undefined): string | undefined {
  if (totals.runRejected === 0) return undefined;
  const reasons = counted(totals.runRejectedByReason);
  return `rejected simulator replies: ${totals.runRejected} (${reasons}), each asked again${dir === undefined ? '' : `; the texts are in ${dir}/guard-rejections.ndjson`}`;
}

/** `a 3, b 1`: counts, most first. */
const counted = (counts: Readonly<Record<string, number>>): string =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([key, n]) => `${key} ${n}`)
    .join(', ');

/** `judged 120 conversations: 100 accepted, 20 rejected (verdict 8, user.ending 5, ...); they are in out/rejected.ndjson`. */
export function judgeLine(totals: UsageTotals, dir: string | undefined): string {
  const rejected = totals.judgeRejected === 0 ? '0 rejected' : `${totals.judgeRejected} rejected (${counted(totals.judgeRejectedByReason)})`;
  const where = totals.judgeRejected === 0 ? '' : dir === undefined ? '; rejected conversations are not written to stdout (--out keeps them)' : `; they are in ${dir}/rejected.ndjson`;
  return `judged ${totals.judged} conversations: ${totals.judged - totals.judgeRejected} accepted, ${rejected}${where}`;
}

/** Short personas named in the summary (the count covers them all). */
const NAMED = 5;

/**
 * `targets met: 97/100 personas after the main pass, 100/100 after round 1 (3 supplement tasks)`, and
 * when some stay short, who and why: `; 1 still short by 2 interaction(s) after 3 supplement round(s):
 * p7 by 2 (rejected: user.ending 3, failed: timeout 1)`.
 */
export function targetsLine(personas: number, reports: readonly RoundReport[], rounds: number): string {
  const parts = reports.map((report) => `${personas - report.personasShort}/${personas} personas ${report.round === 0 ? 'after the main pass' : `after round ${report.round} (${report.tasks} supplement tasks)`}`);
  const last = reports.at(-1) as RoundReport;
  const who = last.short
    .slice(0, NAMED)
    .map((persona) => `${persona.personaId} by ${persona.missing} (${counted(persona.why)})`)
    .join('; ');
  const more = last.personasShort > NAMED ? `; and ${last.personasShort - NAMED} more` : '';
  const end = last.personasShort === 0 ? '' : `; ${last.personasShort} still short by ${last.missing} interaction(s)${last.round >= rounds ? ` after ${rounds} supplement round(s)` : ''}: ${who}${more}`;
  return `targets met: ${parts.join(', ')}${end}`;
}

/** What a resume found and did. */
export function resumedLine(dir: string, already: number, counts: SkipCounts): string {
  return `resumed: ${already} interactions were already in ${dir}; ${counts.skipped} tasks skipped, ${counts.retried} failed tasks retried${counts.compensated > 0 ? `, ${counts.compensated} failed tasks left as made up by supplement` : ''}`;
}

/** The command that continues a run in `dir`, with the flags that say which run (config, shard, queue). */
export function resumeCommand(file: string | undefined, dir: string, flags: { readonly config?: string | undefined; readonly shard?: string | undefined; readonly queue?: string | undefined } = {}): string {
  const extra = [flags.config === undefined ? '' : ` -c ${flags.config}`, flags.shard === undefined ? '' : ` --shard ${flags.shard}`, flags.queue === undefined ? '' : ` --queue ${flags.queue}`].join('');
  return `personaflow generate ${file ?? '-'}${extra} --out ${dir} --resume`;
}

/** Why two run records differ, in words: `seed 42 → 7, max_turns 5 → 3` or that the config file changed. */
export function explainChange(before: RunRecord, now: RunRecord): string {
  const changes = Object.keys({ ...before.settings, ...now.settings })
    .filter((key) => JSON.stringify(before.settings[key]) !== JSON.stringify(now.settings[key]))
    .map((key) => `${key} ${JSON.stringify(before.settings[key] ?? null)} → ${JSON.stringify(now.settings[key] ?? null)}`);
  return changes.length > 0 ? `it was written with other settings (${changes.join(', ')})` : 'it was written with another configuration (the config file changed)';
}
