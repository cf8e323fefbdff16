// The dashboard: the shape of the whole directory in bar charts, redrawn as the background scan counts more of it.
import type { Counts, Stats, UsageRow } from '../api.js';
import { barCard, type BarSpec } from './charts.js';
import { count, h, replace, select, usd } from './dom.js';

/** Categories drawn per chart; the rest are summed in the note. */
const TOP = 30;

const entries = (counts: Counts): [string, number][] => Object.entries(counts);

/** Biggest first, at most TOP of them. */
function ranked(counts: Counts, label = 'conversations'): { spec: BarSpec | undefined; note: string | undefined } {
  const sorted = entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (sorted.length === 0) return { spec: undefined, note: undefined };
  const shown = sorted.slice(0, TOP);
  const rest = sorted.slice(TOP);
  return {
    spec: { labels: shown.map(([name]) => name), series: [{ label, values: shown.map(([, n]) => n) }], horizontal: true, unit: label },
    note: rest.length === 0 ? undefined : `${rest.length} more not drawn (${count(rest.reduce((sum, [, n]) => sum + n, 0))} ${label})`,
  };
}

/** In numeric order of the labels (turns, scores). */
function numeric(counts: Counts, label: string): BarSpec | undefined {
  const sorted = entries(counts).sort((a, b) => Number(a[0]) - Number(b[0]));
  return sorted.length === 0 ? undefined : { labels: sorted.map(([name]) => name), series: [{ label, values: sorted.map(([, n]) => n) }] };
}

function tokens(rows: readonly UsageRow[]): BarSpec | undefined {
  if (rows.length === 0) return undefined;
  const sorted = [...rows].sort((a, b) => b.input + b.output - (a.input + a.output));
  return {
    labels: sorted.map((r) => r.name),
    series: [
      { label: 'input tokens', values: sorted.map((r) => r.input) },
      { label: 'output tokens', values: sorted.map((r) => r.output) },
    ],
    horizontal: true,
    stacked: true,
    unit: 'tokens',
  };
}

/** Mean words per user turn, for each value of a persona feature. */
function wordsBy(stats: Stats, feature: string): BarSpec | undefined {
  const values = Object.entries(stats.userWords[feature] ?? {})
    .filter(([, v]) => v.turns > 0)
    .sort((a, b) => b[1].turns - a[1].turns)
    .slice(0, TOP)
    .sort((a, b) => a[0].localeCompare(b[0]));
  if (values.length === 0) return undefined;
  return { labels: values.map(([name]) => name), series: [{ label: 'words per user turn (mean)', values: values.map(([, v]) => Math.round((v.words / v.turns) * 10) / 10) }], horizontal: true, unit: 'words per user turn (mean)' };
}

/** The feature to chart first: one with a handful of values, the length preference or style when there is one. */
function defaultFeature(stats: Stats): string | undefined {
  const candidates = Object.entries(stats.userWords).filter(([, values]) => Object.keys(values).length >= 2 && Object.keys(values).length <= TOP);
  const preferred = ['query_length_pref', 'communication_style', 'role'].find((name) => candidates.some(([key]) => key === name));
  return preferred ?? candidates[0]?.[0] ?? Object.keys(stats.userWords)[0];
}

export interface Dashboard {
  readonly element: HTMLElement;
  update(stats: Stats): void;
}

/** Builds the dashboard; `update` redraws every chart from new counts. */
export function dashboard(initial: Stats): Dashboard {
  let feature = defaultFeature(initial);
  let latest = initial;
  let shownFeatures = '';
  const status = h('p', { class: 'status' });
  const cards = {
    turns: barCard('Turns per conversation', undefined, undefined, 'turns'),
    words: barCard('User-turn length by persona feature', undefined, undefined, 'user-words'),
    end: barCard('End reasons', undefined, undefined, 'end-reasons'),
    reasons: barCard('Guard and rejection reasons', 'guard: rejected simulator replies counted in metadata.guard; rejections: lines of guard-rejections.ndjson', undefined, 'reasons'),
    noise: barCard('Noise strategies (user turns sent noised)', undefined, undefined, 'noise'),
    models: barCard('Assistant models', undefined, undefined, 'models'),
    tokensByModel: barCard('Tokens by model (usage.json)', undefined, undefined, 'tokens-by-model'),
    tokensByModule: barCard('Tokens by module (usage.json)', undefined, undefined, 'tokens-by-module'),
    cost: barCard('Cost by model (usage.json)', undefined, undefined, 'cost'),
    failures: barCard('Failures by kind (failures.ndjson)', undefined, undefined, 'failures'),
    rounds: barCard('Main pass and supplement rounds', undefined, undefined, 'rounds'),
    verdicts: barCard('Judge verdicts', undefined, undefined, 'verdicts'),
  };
  const featureSlot = h('div', { class: 'card-control' });
  cards.words.card.insertBefore(featureSlot, cards.words.card.querySelector('.chart-body'));
  const scores = h('div', { class: 'grid' });
  const element = h('div', { class: 'dashboard' }, status, h('div', { class: 'grid' }, Object.values(cards).map((c) => c.card)), h('h2', {}, 'Judge scores'), scores);
  const scoreCards = new Map<string, ReturnType<typeof barCard>>();

  const update = (stats: Stats): void => {
    latest = stats;
    status.textContent = stats.done ? `${count(stats.scanned)} interactions counted.` : `Counting… ${count(stats.scanned)} interactions so far; the charts grow as the scan goes on.`;
    cards.turns.update(numeric(stats.turns, 'conversations'));
    const features = Object.keys(stats.userWords);
    if (feature === undefined || !features.includes(feature)) feature = defaultFeature(stats);
    // Rebuilt only when the features change, so a scan in progress does not close the list under the mouse.
    if (JSON.stringify(features) !== shownFeatures) {
      shownFeatures = JSON.stringify(features);
      replace(featureSlot, features.length === 0 ? null : h('label', {}, 'feature ', select('user-words-feature', features.map((f) => [f, f]), feature, (value) => {
        feature = value;
        cards.words.update(wordsBy(latest, value));
      })));
    }
    cards.words.update(feature === undefined ? undefined : wordsBy(stats, feature));
    const end = ranked(stats.endReasons);
    cards.end.update(end.spec, end.note);
    const reasonNames = [...new Set([...Object.keys(stats.guardReasons), ...Object.keys(stats.rejectionReasons)])].sort();
    cards.reasons.update(
      reasonNames.length === 0
        ? undefined
        : { labels: reasonNames, series: [{ label: 'guard (metadata.guard)', values: reasonNames.map((r) => stats.guardReasons[r] ?? 0) }, { label: 'guard-rejections.ndjson', values: reasonNames.map((r) => stats.rejectionReasons[r] ?? 0) }], horizontal: true, unit: 'rejected replies' },
    );
    const noise = ranked(stats.noiseStrategies, 'user turns');
    const share = stats.userTurns === 0 ? '' : `${count(stats.noisedTurns)} of ${count(stats.userTurns)} user turns noised (${((100 * stats.noisedTurns) / stats.userTurns).toFixed(1)}%)`;
    cards.noise.update(noise.spec, [share, noise.note].filter(Boolean).join('; '));
    const models = ranked(stats.models);
    cards.models.update(models.spec, models.note);
    const usage = stats.usage;
    cards.tokensByModel.update(usage === null ? undefined : tokens(usage.byModel), usage === null ? 'no usage.json' : undefined);
    cards.tokensByModule.update(usage === null ? undefined : tokens(usage.byModule));
    const priced = usage?.byModel.filter((r) => r.cost !== null) ?? [];
    cards.cost.update(
      priced.length === 0 ? undefined : { labels: priced.map((r) => r.name), series: [{ label: 'USD', values: priced.map((r) => r.cost ?? 0) }], horizontal: true, unit: 'USD' },
      usage === null ? 'no usage.json' : [usage.totalCost === null ? undefined : `total ${usd(usage.totalCost)}`, usage.unpriced.length === 0 ? undefined : `no price for ${usage.unpriced.join(', ')}`].filter(Boolean).join('; '),
    );
    const failures = ranked(stats.failures, 'failed tasks');
    cards.failures.update(failures.spec, failures.note);
    const rounds = ranked(stats.rounds);
    cards.rounds.update(rounds.spec, rounds.note);
    const verdicts = ranked(stats.verdicts);
    cards.verdicts.update(verdicts.spec, verdicts.spec === undefined ? 'no judge verdicts in these interactions (metadata.quality)' : verdicts.note);
    for (const [name, counts] of Object.entries(stats.scores)) {
      let card = scoreCards.get(name);
      if (card === undefined) {
        card = barCard(name, undefined, undefined, `score-${name}`);
        scoreCards.set(name, card);
        scores.append(card.card);
      }
      card.update(numeric(counts, 'conversations'));
    }
    if (scoreCards.size === 0) replace(scores, h('p', { class: 'empty' }, 'no judge scores in these interactions (metadata.quality)'));
    else scores.querySelector(':scope > p.empty')?.remove();
  };
  update(initial);
  return { element, update };
}
