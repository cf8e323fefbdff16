// The dashboard's charts, drawn by Chart.js on canvases: labels from the data are painted as pixels, never parsed as markup.
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip, type ChartConfiguration } from 'chart.js';
import { h } from './dom.js';

// Only what the bar charts use, so the bundle carries only that much of Chart.js.
Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);
Chart.defaults.animation = false;
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
Chart.defaults.color = '#444';

export const PALETTE = ['#3b6ea8', '#e07b39', '#4f9d69', '#c44e52', '#8172b2', '#937860', '#da8bc3', '#8c8c8c', '#ccb974', '#64b5cd'];

export interface Series {
  readonly label: string;
  readonly values: readonly number[];
}

export interface BarSpec {
  readonly labels: readonly string[];
  readonly series: readonly Series[];
  /** Bars along the y axis (for long category names). */
  readonly horizontal?: boolean;
  readonly stacked?: boolean;
  /** Axis title of the values. */
  readonly unit?: string;
}

/** Longest category label drawn; the tooltip shows the whole. */
const LABEL_CHARS = 40;
const shortLabel = (label: string): string => (label.length > LABEL_CHARS ? `${label.slice(0, LABEL_CHARS - 1)}…` : label);

function configuration(spec: BarSpec): ChartConfiguration<'bar', number[], string> {
  const values = { stacked: spec.stacked === true, beginAtZero: true, ticks: { precision: spec.unit === 'USD' ? undefined : 0 }, title: { display: spec.unit !== undefined, text: spec.unit ?? '' } };
  const categories = { stacked: spec.stacked === true, ticks: { autoSkip: false, callback(this: unknown, value: string | number): string { return shortLabel(spec.labels[Number(value)] ?? String(value)); } } };
  return {
    type: 'bar',
    data: {
      labels: [...spec.labels],
      datasets: spec.series.map((series, i) => ({ label: series.label, data: [...series.values], backgroundColor: PALETTE[i % PALETTE.length] ?? '#888', maxBarThickness: 28 })),
    },
    options: {
      indexAxis: spec.horizontal === true ? 'y' : 'x',
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: spec.series.length > 1 } },
      scales: spec.horizontal === true ? { x: values, y: categories } : { x: categories, y: values },
    },
  };
}

/** A card with a bar chart, or with a line saying there is nothing to draw. Returns the card and a function that redraws it with new data. */
export function barCard(title: string, note: string | undefined, spec: BarSpec | undefined, name: string): { card: HTMLElement; update: (next: BarSpec | undefined, note?: string) => void } {
  const noteLine = h('p', { class: 'note' }, note);
  const body = h('div', { class: 'chart-body' });
  const card = h('section', { class: 'card', dataset: { chart: name } }, h('h3', {}, title), noteLine, body);
  let chart: Chart<'bar', number[], string> | undefined;
  const draw = (next: BarSpec | undefined, nextNote?: string): void => {
    noteLine.textContent = nextNote ?? note ?? '';
    if (next === undefined || next.labels.length === 0) {
      chart?.destroy();
      chart = undefined;
      body.replaceChildren(h('p', { class: 'empty' }, 'nothing recorded'));
      body.style.height = 'auto';
      return;
    }
    const rows = next.horizontal === true ? next.labels.length : 0;
    body.style.height = `${Math.max(180, Math.min(600, 40 + rows * 22))}px`;
    if (chart !== undefined) {
      const config = configuration(next);
      chart.data = config.data;
      chart.options = config.options ?? {};
      chart.update('none');
      return;
    }
    const canvas = h('canvas', { role: 'img', ariaLabel: title });
    body.replaceChildren(canvas);
    chart = new Chart(canvas, configuration(next));
  };
  draw(spec);
  return { card, update: draw };
}
