// Progress that tells the truth (issue 23): a scripted run in virtual time, the figures shown against what really happened.
import { describe, expect, it } from 'vitest';
import { figures, type ProgressSource } from '../../src/sinks/progress.js';
import { rngFor } from '../../src/rng.js';

/** What the display sees at one moment of a scripted run. */
interface Moment {
  readonly at: number;
  readonly settled: number;
  readonly begun: number;
  readonly read: number;
  readonly exhausted: boolean;
}

/**
 * A generate run in virtual time, as the pipeline runs it: `tasks` persona lines of `lineBytes` each, read
 * 64 KiB at a time as tasks are pulled; at most 2 × `concurrency` tasks begun and not yet written; at
 * most `concurrency` conversations running, each taking its scripted duration. Returns the moments every
 * 250 ms and when the last conversation settled.
 */
function scriptedRun(options: { readonly tasks: number; readonly concurrency: number; readonly lineBytes: number; readonly duration: (task: number) => number }): { moments: Moment[]; end: number; size: number } {
  const { tasks, concurrency, lineBytes } = options;
  const size = tasks * lineBytes;
  const chunk = 64 * 1024;
  const running: number[] = []; // end times
  let begun = 0;
  let started = 0;
  let settled = 0;
  let now = 0;
  const moments: Moment[] = [];
  const settleTimes: number[] = [];
  // Events: each conversation's end; ticks every 250 ms in between.
  const fill = (): void => {
    while (begun < tasks && begun - settled < 2 * concurrency) begun += 1;
    while (started < begun && running.length < concurrency) {
      running.push(now + options.duration(started));
      started += 1;
    }
    running.sort((a, b) => a - b);
  };
  fill();
  while (settled < tasks) {
    const next = running.shift() as number;
    now = next;
    settled += 1;
    settleTimes.push(now);
    fill();
  }
  const end = now;
  let index = 0;
  let count = 0;
  for (let at = 250; at < end; at += 250) {
    while (index < settleTimes.length && (settleTimes[index] as number) <= at) {
      index += 1;
      count += 1;
    }
    const pulled = Math.min(tasks, count + 2 * concurrency);
    const read = Math.min(size, Math.ceil((pulled * lineBytes + 1) / chunk) * chunk);
    moments.push({ at, settled: count, begun: pulled, read, exhausted: pulled === tasks });
  }
  return { moments, end, size };
}

const sourceAt = (moment: Moment, size: number): ProgressSource => ({
  interactions: () => moment.settled,
  begun: () => moment.begun,
  failures: () => 0,
  rejected: () => 0,
  retries: () => 0,
  tokens: () => 0,
  cost: () => undefined,
  input: () => ({ read: moment.read, size }),
  exhausted: () => moment.exhausted,
  limiters: () => new Map(),
});

describe('progress against a scripted run of 3,200 tasks (issue 23)', () => {
  // Conversations of 1 to 5 turns at 0.3-0.9 s a call, two calls a turn: 0.6 s to 9 s.
  const rng = rngFor(7, 'durations', 'progress');
  const durations = Array.from({ length: 3200 }, () => rng.int(1, 5) * 2 * (0.3 + rng.next() * 0.6) * 1000);
  const run = scriptedRun({ tasks: 3200, concurrency: 16, lineBytes: 130, duration: (task) => durations[task] as number });

  it('shows the exact total or none, never a guess that grows', () => {
    const shown = run.moments.map((moment) => figures(sourceAt(moment, run.size), 0, moment.at)).filter((f) => f.total !== null);
    const wrong = shown.filter((f) => f.total !== 3200).map((f) => f.total as number);
    const range = wrong.length === 0 ? '' : `from ${wrong[0]} to ${Math.max(...wrong)}`;
    expect(wrong.length, `${wrong.length} of ${shown.length} moments show another total, ${range}`).toBe(0);
    expect(shown.length).toBeGreaterThan(0);
  });

  it('shows an ETA within 25% (or 2 s) of the time really left, from when it is shown until the last 10 s', () => {
    const shown = run.moments
      .map((moment) => ({ moment, eta: figures(sourceAt(moment, run.size), 0, moment.at).eta_s }))
      .filter(({ moment }) => run.end - moment.at >= 10_000);
    const off = shown.filter(({ moment, eta }) => eta !== null && Math.abs(eta - (run.end - moment.at) / 1000) > Math.max(2, (0.25 * (run.end - moment.at)) / 1000));
    const worst = off
      .map(({ moment, eta }) => ({ eta: eta as number, left: (run.end - moment.at) / 1000, at: moment.at / 1000 }))
      .sort((a, b) => Math.abs(b.eta - b.left) / b.left - Math.abs(a.eta - a.left) / a.left)
      .map(({ eta, left, at }) => `ETA ${eta} s at ${at.toFixed(1)} s with ${left.toFixed(1)} s left`);
    expect(worst.slice(0, 3), `${off.length} of ${shown.length} moments off`).toEqual([]);
    // Shown for most of the run: an ETA that is never shown cannot be wrong.
    expect(shown.filter(({ eta }) => eta !== null).length).toBeGreaterThan(shown.length * 0.8);
  });
});
