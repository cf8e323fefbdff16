// The list side: filters built from the values the scan has seen, and a page of conversations.
import { NOT_RECORDED, type Filter, type PageResponse, type Stats } from '../api.js';
import { count, h, select } from './dom.js';

/** Features with more values than this get no select (free text such as a biography). */
const MAX_CHOICES = 200;

const any = (label: string): [string, string] => ['', label];
const keys = (counts: Readonly<Record<string, number>>): string[] => Object.keys(counts).sort((a, b) => a.localeCompare(b));

/** The filter bar; `onChange` gets the whole new filter. */
export function filterBar(stats: Stats, filter: Filter, onChange: (next: Filter) => void): HTMLElement {
  const set = (patch: Partial<Filter>): void => onChange({ ...filter, ...patch });
  const field = (label: string, control: HTMLElement): HTMLElement => h('label', { class: 'field' }, h('span', {}, label), control);
  let typing: ReturnType<typeof setTimeout> | undefined;
  const persona = h('input', {
    type: 'search',
    value: filter.persona ?? '',
    placeholder: 'persona id contains…',
    ariaLabel: 'persona',
    dataset: { filter: 'persona' },
    onInput: () => {
      clearTimeout(typing);
      typing = setTimeout(() => set({ persona: persona.value === '' ? undefined : persona.value }), 350);
    },
  });
  const fields: HTMLElement[] = [field('persona', persona)];
  for (const [name, values] of Object.entries(stats.features)) {
    if (values.length === 0 || values.length > MAX_CHOICES) continue;
    fields.push(
      field(
        name,
        select(`feature:${name}`, [any('any'), ...values.map((v): [string, string] => [v, v])], filter.features?.[name], (value) => {
          const features: Record<string, string> = {};
          for (const [k, v] of Object.entries(filter.features ?? {})) if (k !== name) Object.defineProperty(features, k, { value: v, enumerable: true });
          if (value !== '') Object.defineProperty(features, name, { value, enumerable: true });
          set({ features: Object.keys(features).length === 0 ? undefined : features });
        }),
      ),
    );
  }
  const choice = (label: string, name: keyof Filter, values: readonly string[]): void => {
    if (values.length === 0) return;
    const current = filter[name];
    fields.push(field(label, select(name, [any('any'), ...values.map((v): [string, string] => [v, v])], typeof current === 'string' ? current : undefined, (value) => set({ [name]: value === '' ? undefined : value }))));
  };
  choice('assistant model', 'model', keys(stats.models));
  choice('end reason', 'endReason', keys(stats.endReasons));
  choice('guard / rejection reason', 'reason', [...new Set([...keys(stats.guardReasons), ...keys(stats.rejectionReasons)])].sort());
  fields.push(field('noised', select('noised', [any('any'), ['yes', 'noised'], ['no', 'clean']], filter.noised, (value) => set({ noised: value === 'yes' || value === 'no' ? value : undefined }))));
  const rounds = keys(stats.rounds).map((r): [string, string] => [r === 'main' ? 'main' : r.replace(/^round /, ''), r === 'main' ? 'main pass' : r]);
  if (rounds.length > 1 || filter.round !== undefined) fields.push(field('supplement', select('round', [any('any'), ...rounds], filter.round, (value) => set({ round: value === '' ? undefined : value }))));
  choice('judge verdict', 'verdict', keys(stats.verdicts));
  const scores = Object.keys(stats.scores).sort();
  if (scores.length > 0) {
    const bound = (name: 'scoreMin' | 'scoreMax', label: string): HTMLInputElement => {
      const input = h('input', { type: 'number', value: filter[name] === undefined ? '' : String(filter[name]), placeholder: label, ariaLabel: `score ${label}`, dataset: { filter: name } });
      input.addEventListener('change', () => set({ [name]: input.value === '' || !Number.isFinite(Number(input.value)) ? undefined : Number(input.value) }));
      return input;
    };
    fields.push(field('judge score', h('span', { class: 'score-filter' }, select('score', [any('any'), ...scores.map((s): [string, string] => [s, s])], filter.score, (value) => set({ score: value === '' ? undefined : value })), bound('scoreMin', 'min'), bound('scoreMax', 'max'))));
  }
  fields.push(h('button', { type: 'button', class: 'clear', onClick: () => onChange({}) }, 'clear filters'));
  return h('form', { class: 'filters', role: 'search', onChange: (event) => event.preventDefault() }, fields);
}

/** The page of rows, the pager, and what the count means. */
export function listView(page: PageResponse, filtered: boolean, scanDone: boolean, selectedAt: number | undefined, open: (at: number) => void, goTo: (page: number) => void): HTMLElement {
  const pages = Math.max(1, Math.ceil(page.matches / page.pageSize));
  const counted = `${count(page.matches)}${page.complete ? '' : '+'} ${filtered ? 'matching' : ''} conversation${page.matches === 1 ? '' : 's'}`.replace('  ', ' ');
  const partial = filtered && !scanDone ? ' (so far: the scan is still reading the directory)' : '';
  const rows = page.rows.map((row) =>
    h(
      'tr',
      { class: row.at === selectedAt ? 'row selected' : 'row', dataset: { at: String(row.at), id: row.id }, onClick: () => open(row.at) },
      h('td', { class: 'num' }, count(row.n)),
      h('td', {}, h('div', { class: 'persona' }, row.persona), h('div', { class: 'first' }, row.first)),
      h('td', {}, row.model),
      h('td', { class: 'num' }, String(row.turns)),
      h('td', { title: row.endReason ?? NOT_RECORDED }, row.endReason ?? '—'),
      h('td', {}, row.noised ? h('span', { class: 'badge noise' }, 'noised') : '', row.reasons.map((r) => h('span', { class: 'badge reason' }, r)), row.verdict === null ? '' : h('span', { class: 'badge verdict' }, row.verdict)),
    ),
  );
  return h(
    'div',
    { class: 'list' },
    h('p', { class: 'status', dataset: { matches: String(page.matches) } }, counted, partial),
    h(
      'table',
      { class: 'rows' },
      h('thead', {}, h('tr', {}, ['#', 'persona · first message', 'model', 'turns', 'end', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.length === 0 ? h('tr', {}, h('td', { class: 'empty' }, 'no conversations match')) : rows),
    ),
    h(
      'div',
      { class: 'pager' },
      h('button', { type: 'button', disabled: page.page === 0, onClick: () => goTo(page.page - 1) }, '← previous'),
      h('span', {}, `page ${count(page.page + 1)} of ${count(pages)}${page.complete ? '' : '+'}`),
      h('button', { type: 'button', disabled: page.page + 1 >= pages, onClick: () => goTo(page.page + 1) }, 'next →'),
    ),
  );
}
