// The lines a generate run ends with: what it made, how personas met their targets, what a resume did, how to go on.
import type { RoundReport } from '../operators/supplement.js';
import type { RunRecord } from '../sinks/layout.js';
import type { UsageTotals } from '../sinks/usage.js';
import type { SkipCounts } from '../streams/tasks.js';

/**
 * `240 interactions, 2 failures, 1210 model calls, 14 retries, 0 bad input lines in 12.3 s, $0.0421 → out/`;
 * after a resume, the directory's whole spend too (`$0.0421 this run, $0.1830 in all`).
 */
export function summaryLine(totals: UsageTotals, counts: { readonly retries: number; readonly warnings: number; readonly seconds: number; readonly interrupted: boolean; readonly dir: string | undefined; readonly directoryCost?: number | undefined }): string {
  return (
    `${counts.interrupted ? 'interrupted: ' : ''}${totals.interactions} interactions, ${totals.failures} failures, ` +
    `${totals.calls} model calls, ${counts.retries} retries, ${counts.warnings} bad input lines in ${counts.seconds.toFixed(1)} s` +
    (totals.unpriced.length === 0 ? `, $${totals.runCost.toFixed(4)}${counts.directoryCost === undefined ? '' : ` this run, $${counts.directoryCost.toFixed(4)} in all`}` : '') +
    (totals.runEstimatedCalls === 0 ? '' : ` (tokens of ${totals.runEstimatedCalls} of ${totals.calls} calls estimated by personaflow)`) +
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
 * p7 by 2 (rejected: user.ending 3, failed: timeout 1)`. After a resume the rounds of this run say little
 * about the directory: then the line counts the directory's personas, every persona of the input against
 * what DIR holds (`directory`).
 */
export function targetsLine(personas: number, reports: readonly RoundReport[], rounds: number, directory?: { readonly dir: string; readonly personasShort: number; readonly missing: number }): string {
  if (directory !== undefined) {
    const short = Math.min(personas, directory.personasShort);
    return `targets met: ${personas - short}/${personas} personas in ${directory.dir}${short === 0 ? '' : `; ${short} still short by ${directory.missing} interaction(s)`}${reports.length > 1 ? ` after ${reports.length - 1} supplement round(s) in this run` : ''}`;
  }
  const parts = reports.map((report) => `${personas - report.personasShort}/${personas} personas ${report.round === 0 ? 'after the main pass' : `after round ${report.round} (${report.tasks} supplement tasks)`}`);
  const last = reports.at(-1);
  if (last === undefined) return `targets met: ${personas}/${personas} personas`;
  const who = last.short
    .slice(0, NAMED)
    .map((persona) => `${persona.personaId} by ${persona.missing} (${counted(persona.why)})`)
    .join('; ');
  const more = last.personasShort > NAMED ? `; and ${last.personasShort - NAMED} more` : '';
  const end = last.personasShort === 0 ? '' : `; ${last.personasShort} still short by ${last.missing} interaction(s)${last.round >= rounds ? ` after ${rounds} supplement round(s)` : ''}: ${who}${more}`;
  return `targets met: ${parts.join(', ')}${end}`;
}

/** How a run ended, for the exit code and the last line. */
export interface Ended {
  readonly fatal?: boolean;
  readonly interrupted?: boolean;
  /** Tasks that still failed (in DIR, after a resume). */
  readonly failures?: number;
  /** Personas whose failures supplement did not make up, and the interactions they miss. */
  readonly shortfall?: { readonly personas: number; readonly missing: number };
  /** Bad input lines reported and skipped. */
  readonly badLines?: number;
  readonly budgetReached?: boolean;
  /** The input held no task at all. */
  readonly noTasks?: boolean;
}

/**
 * The exit code and the line a script can check, the last one a run writes on stderr:
 * `personaflow: result: complete (exit 0)`, `... result: incomplete (exit 3): 2 personas short by 3
 * interaction(s); 4 bad input lines skipped`, `... result: interrupted (exit 130)`, `... result: stopped
 * (exit 1)`. Complete (0) means every task of the input is in the output, a failed one made up by a
 * supplement interaction included, and no input line was skipped. Incomplete (3): a persona is short of
 * its target, a bad line was skipped, --max-cost stopped the run, or the input held no task. 2 (a usage
 * or configuration error) ends a run before this line.
 */
export function resultOf(ended: Ended): { readonly code: number; readonly line: string } {
  if (ended.fatal === true) return { code: 1, line: 'result: stopped (exit 1): see the error above' };
  if (ended.interrupted === true) return { code: 130, line: 'result: interrupted (exit 130)' };
  const reasons: string[] = [];
  const short = ended.shortfall;
  if (short !== undefined && short.personas > 0) reasons.push(`${short.personas} persona(s) short of their target by ${short.missing} interaction(s)${(ended.failures ?? 0) > 0 ? ` (${ended.failures} task(s) failed)` : ''}`);
  if ((ended.badLines ?? 0) > 0) reasons.push(`${ended.badLines} bad input line(s) skipped`);
  if (ended.budgetReached === true) reasons.push('--max-cost reached before every task started');
  if (ended.noTasks === true) reasons.push('the input held no task');
  if (reasons.length > 0) return { code: 3, line: `result: incomplete (exit 3): ${reasons.join('; ')}` };
  const madeUp = ended.failures ?? 0;
  return { code: 0, line: `result: complete (exit 0)${madeUp > 0 ? `: ${madeUp} failed task(s) made up by supplement` : ''}` };
}

/** What a resume found and did. */
export function resumedLine(dir: string, already: number, counts: SkipCounts): string {
  return `resumed: ${already} interactions were already in ${dir}; ${counts.skipped} tasks skipped, ${counts.retried} failed tasks retried${counts.compensated > 0 ? `, ${counts.compensated} failed tasks left as made up by supplement` : ''}`;
}


/** Why two run records differ, in words: `seed 42 → 7, max_turns 5 → 3` or that the config file changed. */
export function explainChange(before: RunRecord, now: RunRecord): string {
  const changes = Object.keys({ ...before.settings, ...now.settings })
    .filter((key) => JSON.stringify(before.settings[key]) !== JSON.stringify(now.settings[key]))
    .map((key) => `${key} ${JSON.stringify(before.settings[key] ?? null)} → ${JSON.stringify(now.settings[key] ?? null)}`);
  return changes.length > 0 ? `it was written with other settings (${changes.join(', ')})` : 'it was written with another configuration (the config file changed)';
}
