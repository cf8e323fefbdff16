// Progress that tells the truth (issue 23): a scripted run in virtual time, the figures shown against what really happened.
import { describe, expect, it } from 'vitest';
import { Progress, Timings, type ProgressFigures, type ProgressSource } from '../../src/sinks/progress.js';
import { rngFor } from '../../src/rng.js';

/** What the display sees at one moment of a scripted run. */
interface Moment {
  readonly at: number;
  readonly settled: number;
  readonly begun: number;
  readonly read: number;
  readonly exhausted: boolean;
}

/** A conversation taken into the pipeline, or written. */
interface Event {
  readonly at: number;
  readonly task: number;
  readonly kind: 'begin' | 'end';
}

/**
 * A generate run in virtual time, as the pipeline runs it: `tasks` persona lines of `lineBytes` each, read
 * 64 KiB at a time as tasks are pulled; at most 2 × `concurrency` tasks begun and not yet written; at
 * most `concurrency` conversations running, each taking its scripted duration once it has a slot. Returns
 * the moments every 250 ms, the begin and end of each conversation, and when the last one settled.
 */
function scriptedRun(options: { readonly tasks: number; readonly concurrency: number; readonly lineBytes: number; readonly duration: (task: number) => number }): { moments: Moment[]; events: Event[]; end: number; size: number } {
  const { tasks, concurrency, lineBytes } = options;
  const size = tasks * lineBytes;
  const chunk = 64 * 1024;
  const running: { end: number; task: number }[] = [];
  const events: Event[] = [];
  let begun = 0;
  let started = 0;
  let settled = 0;
  let now = 0;
  const fill = (): void => {
    while (begun < tasks && begun - settled < 2 * concurrency) {
      events.push({ at: now, task: begun, kind: 'begin' });
      begun += 1;
    }
    while (started < begun && running.length < concurrency) {
      running.push({ end: now + options.duration(started), task: started });
      started += 1;
    }
    running.sort((a, b) => a.end - b.end);
  };
  fill();
  while (settled < tasks) {
    const next = running.shift() as { end: number; task: number };
    now = next.end;
    settled += 1;
    events.push({ at: now, task: next.task, kind: 'end' });
    fill();
  }
  const end = now;
  const moments: Moment[] = [];
  let index = 0;
  let ended = 0;
  let pulled = 0;
  for (let at = 250; at < end; at += 250) {
    for (; index < events.length && (events[index] as Event).at <= at; index += 1) {
      if ((events[index] as Event).kind === 'end') ended += 1;
      else pulled += 1;
    }
    const read = Math.min(size, Math.ceil((pulled * lineBytes + 1) / chunk) * chunk);
    moments.push({ at, settled: ended, begun: pulled, read, exhausted: pulled === tasks });
  }
  return { moments, events, end, size };
}

/**
 * The figures at every moment, as the display samples them, the conversations' begins and ends told to
 * its Timings as generate tells them; the count of the input's tasks (streams/count.ts) is done
 * `countedAt` ms into the run.
 */
function shown(run: ReturnType<typeof scriptedRun>, options: { readonly tasks: number; readonly concurrency: number; readonly countedAt: number }): { moment: Moment; figures: ProgressFigures }[] {
  let moment = run.moments[0] as Moment;
  const timings = new Timings();
  const source: ProgressSource = {
    interactions: () => moment.settled,
    begun: () => moment.begun,
    failures: () => 0,
    rejected: () => 0,
    retries: () => 0,
    tokens: () => 0,
    cost: () => undefined,
    input: () => ({ read: moment.read, size: run.size }),
    exhausted: () => moment.exhausted,
    planned: () => (moment.at >= options.countedAt ? options.tasks : undefined),
    counting: () => moment.at < options.countedAt,
    timings,
    limiters: () => new Map(),
  };
  const progress = new Progress(source, 0, options.concurrency);
  let index = 0;
  return run.moments.map((at) => {
    moment = at;
    for (; index < run.events.length && (run.events[index] as Event).at <= at.at; index += 1) {
      const event = run.events[index] as Event;
      if (event.kind === 'begin') timings.begin(String(event.task), event.at);
      else timings.end(String(event.task), event.at);
    }
    return { moment, figures: progress.figures(at.at) };
  });
}

describe('progress against a scripted run of 3,200 tasks (issue 23)', () => {
  // Conversations of 1 to 5 turns at 0.3-0.9 s a call, two calls a turn: 0.6 s to 9 s.
  const rng = rngFor(7, 'durations', 'progress');
  const durations = Array.from({ length: 3200 }, () => rng.int(1, 5) * 2 * (0.3 + rng.next() * 0.6) * 1000);
  const run = scriptedRun({ tasks: 3200, concurrency: 16, lineBytes: 130, duration: (task) => durations[task] as number });

  it('shows the exact total or none, never a guess that grows', () => {
    const figures = shown(run, { tasks: 3200, concurrency: 16, countedAt: 1000 }).map(({ figures }) => figures);
    const known = figures.filter((f) => f.total !== null);
    const wrong = known.filter((f) => f.total !== 3200).map((f) => f.total as number);
    const range = wrong.length === 0 ? '' : `from ${wrong[0]} to ${Math.max(...wrong)}`;
    expect(wrong.length, `${wrong.length} of ${known.length} moments show another total, ${range}`).toBe(0);
    // Known from when the count is done; before that none is shown, and the line says it is counting.
    expect(known.length).toBe(figures.filter((_, i) => (run.moments[i] as Moment).at >= 1000).length);
    expect(figures.filter((f) => f.total === null).every((f) => f.counting)).toBe(true);
  });

});

/**
 * Checks the ETA of a scripted run against the time really left: within 25% or 3 s, from when it is shown
 * while more than `until` of the run is left (what is left of a run includes conversations not begun yet,
 * whose lengths nobody knows: near the end a few long ones more or less decide it).
 */
function expectTruthfulEta(run: ReturnType<typeof scriptedRun>, options: { readonly tasks: number; readonly concurrency: number; readonly until: number }): void {
  const moments = shown(run, { ...options, countedAt: 0 })
    .map(({ moment, figures }) => ({ moment, eta: figures.eta_s, left: (run.end - moment.at) / 1000 }))
    .filter(({ left }) => left * 1000 >= options.until);
  const off = moments.filter(({ eta, left }) => eta !== null && Math.abs(eta - left) > Math.max(3, 0.25 * left));
  const worst = off
    .sort((a, b) => Math.abs((b.eta as number) - b.left) / b.left - Math.abs((a.eta as number) - a.left) / a.left)
    .map(({ moment, eta, left }) => `ETA ${eta} s at ${(moment.at / 1000).toFixed(1)} s with ${left.toFixed(1)} s left`);
  expect(worst.slice(0, 3), `${off.length} of ${moments.length} moments off`).toEqual([]);
  // Shown for most of the run: an ETA that is never shown cannot be wrong.
  const withEta = moments.filter(({ eta }) => eta !== null).length;
  expect(withEta, `ETA shown at ${withEta} of ${moments.length} moments`).toBeGreaterThan(moments.length * 0.8);
}

describe('the ETA against the time really left (issue 23: "ETA 2s" with 15-20 s left)', () => {
  it('3,200 conversations of 0.6 to 9 s, 16 at once: within 25% or 3 s until the last 15 s', () => {
    const rng = rngFor(7, 'durations', 'progress');
    const durations = Array.from({ length: 3200 }, () => rng.int(1, 5) * 2 * (0.3 + rng.next() * 0.6) * 1000);
    expectTruthfulEta(scriptedRun({ tasks: 3200, concurrency: 16, lineBytes: 130, duration: (task) => durations[task] as number }), { tasks: 3200, concurrency: 16, until: 15_000 });
  });

  it('2,000 conversations with a long tail (one in five 5 s, the others under 1 s), 8 at once: the fast first ones do not make it optimistic', () => {
    const rng = rngFor(8, 'durations', 'progress');
    const durations = Array.from({ length: 2000 }, () => (rng.next() < 0.2 ? 5000 : 500) * (0.8 + rng.next() * 0.4));
    const run = scriptedRun({ tasks: 2000, concurrency: 8, lineBytes: 300, duration: (task) => durations[task] as number });
    expectTruthfulEta(run, { tasks: 2000, concurrency: 8, until: 15_000 });
    // The average since the start, with the same exact total, is optimistic early on: the short ones settle first.
    const early = shown(run, { tasks: 2000, concurrency: 8, countedAt: 0 }).filter(({ moment }) => moment.at <= 10_000 && moment.settled > 0);
    const sinceStart = early.filter(({ moment }) => ((2000 - moment.settled) * moment.at) / moment.settled < 0.75 * (run.end - moment.at));
    expect(sinceStart.length).toBeGreaterThan(early.length / 2);
  });

  it('a run that slows down halfway (a rate limit): the ETA follows once the window holds the new pace', () => {
    const rng = rngFor(9, 'durations', 'progress');
    const durations = Array.from({ length: 2000 }, (_, task) => (task < 1000 ? 1 : 3) * (500 + rng.next() * 1500));
    const run = scriptedRun({ tasks: 2000, concurrency: 8, lineBytes: 130, duration: (task) => durations[task] as number });
    // Only once the window holds the new pace (max(256, 8 × concurrency) settlements): the display cannot know the future.
    const changed = run.moments.find((moment) => moment.settled >= 1000 + 256)?.at ?? 0;
    const moments = shown(run, { tasks: 2000, concurrency: 8, countedAt: 0 })
      .map(({ moment, figures }) => ({ at: moment.at, eta: figures.eta_s, left: (run.end - moment.at) / 1000 }))
      .filter(({ at, left }) => at >= changed && left >= 10);
    const off = moments.filter(({ eta, left }) => eta === null || Math.abs(eta - left) > Math.max(3, 0.25 * left));
    expect(off.slice(0, 3).map(({ eta, left }) => `ETA ${eta} s with ${left.toFixed(1)} s left`), `${off.length} of ${moments.length}`).toEqual([]);
    expect(moments.length).toBeGreaterThan(100);
  });
});
