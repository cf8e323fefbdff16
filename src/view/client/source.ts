// Where the page's data comes from: the viewer's JSON API, or the data a report file carries (a sample, filtered in the page).
import { NOT_RECORDED, PAGE_SIZE, type ConversationView, type Filter, type PageResponse, type ReportData, type Row, type Stats, type Summary } from '../api.js';

export interface Source {
  summary(): Promise<Summary>;
  stats(): Promise<Stats>;
  page(filter: Filter, page: number): Promise<PageResponse>;
  conversation(at: number): Promise<ConversationView>;
}

/** The filter as query parameters (the API's names). */
export function filterParams(filter: Filter): URLSearchParams {
  const params = new URLSearchParams();
  const set = (name: string, value: string | number | undefined): void => {
    if (value !== undefined && value !== '') params.set(name, String(value));
  };
  set('persona', filter.persona);
  for (const [name, value] of Object.entries(filter.features ?? {})) set(`f.${name}`, value);
  set('model', filter.model);
  set('end', filter.endReason);
  set('reason', filter.reason);
  set('noised', filter.noised);
  set('round', filter.round);
  set('verdict', filter.verdict);
  set('score', filter.score);
  set('min', filter.scoreMin);
  set('max', filter.scoreMax);
  return params;
}

/** The filter from query parameters (the inverse of filterParams). */
export function filterFrom(params: URLSearchParams): Filter {
  const get = (name: string): string | undefined => {
    const value = params.get(name);
    return value === null || value === '' ? undefined : value;
  };
  const num = (name: string): number | undefined => {
    const value = get(name);
    return value === undefined || !Number.isFinite(Number(value)) ? undefined : Number(value);
  };
  const features: Record<string, string> = {};
  for (const [name, value] of params) if (name.startsWith('f.') && value !== '') Object.defineProperty(features, name.slice(2), { value, enumerable: true });
  const noised = get('noised');
  return {
    persona: get('persona'),
    features: Object.keys(features).length === 0 ? undefined : features,
    model: get('model'),
    endReason: get('end'),
    reason: get('reason'),
    noised: noised === 'yes' || noised === 'no' ? noised : undefined,
    round: get('round'),
    verdict: get('verdict'),
    score: get('score'),
    scoreMin: num('min'),
    scoreMax: num('max'),
  };
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${(await response.text()).trim()}`);
  return (await response.json()) as T;
}

/** The viewer's API on the server that served the page. */
export const apiSource: Source = {
  summary: () => getJson<Summary>('/api/summary'),
  stats: () => getJson<Stats>('/api/stats'),
  page: (filter, page) => {
    const params = filterParams(filter);
    params.set('page', String(page));
    return getJson<PageResponse>(`/api/conversations?${params.toString()}`);
  },
  conversation: (at) => getJson<ConversationView>(`/api/conversation?at=${at}`),
};

/** Whether a sampled conversation matches the filter (the server's rules, over one conversation). */
export function matches(view: ConversationView, row: Row, filter: Filter): boolean {
  const orNone = (value: string | null): string => value ?? NOT_RECORDED;
  if (filter.persona !== undefined && !view.persona.id.toLowerCase().includes(filter.persona.toLowerCase())) return false;
  for (const [name, value] of Object.entries(filter.features ?? {})) if (!view.persona.features.some(([k, v]) => k === name && v === value)) return false;
  if (filter.model !== undefined && view.model !== filter.model) return false;
  if (filter.endReason !== undefined && orNone(view.endReason) !== filter.endReason) return false;
  if (filter.reason !== undefined && !row.reasons.includes(filter.reason)) return false;
  if (filter.noised !== undefined && row.noised !== (filter.noised === 'yes')) return false;
  if (filter.round !== undefined && (view.round === null ? 'main' : String(view.round)) !== filter.round) return false;
  if (filter.verdict !== undefined && orNone(view.quality?.verdict ?? null) !== filter.verdict) return false;
  if (filter.score !== undefined) {
    const score = view.quality?.scores.find(([name]) => name === filter.score)?.[1];
    if (score === undefined || score < (filter.scoreMin ?? -Infinity) || score > (filter.scoreMax ?? Infinity)) return false;
  }
  return true;
}

/** A report's embedded data: the dashboard as it was, the sample filtered here. */
export function staticSource(data: ReportData): Source {
  const byAt = new Map(data.conversations.map((view) => [view.at, view]));
  return {
    summary: () => Promise.resolve(data.summary),
    stats: () => Promise.resolve(data.stats),
    page: (filter, page) => {
      const rows = data.rows.filter((row) => {
        const view = byAt.get(row.at);
        return view !== undefined && matches(view, row, filter);
      });
      return Promise.resolve({ rows: rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE), page, pageSize: PAGE_SIZE, matches: rows.length, complete: true });
    },
    conversation: (at) => {
      const view = byAt.get(at);
      return view === undefined ? Promise.reject(new Error('not in this report')) : Promise.resolve(view);
    },
  };
}
