// The viewer's page: header, the conversations (filters, list, pane) and the dashboard; the same code shows a report from its embedded data.
import './style.css';
import type { Filter, ReportData, Stats, Summary } from '../api.js';
import { conversationPane } from './conversation.js';
import { dashboard, type Dashboard } from './dashboard.js';
import { count, h, replace } from './dom.js';
import { filterBar, listView } from './list.js';
import { apiSource, filterFrom, filterParams, staticSource, type Source } from './source.js';

/** How often the page asks how far the background scan is, while it runs (ms). */
const POLL_MS = 1000;

interface Route {
  readonly tab: 'list' | 'dashboard';
  readonly filter: Filter;
  readonly page: number;
  readonly at: number | undefined;
}

function parseRoute(hash: string): Route {
  const [path, query] = hash.replace(/^#/, '').split('?', 2) as [string, string | undefined];
  const params = new URLSearchParams(query ?? '');
  const page = Number(params.get('page') ?? '0');
  const at = params.get('at');
  return { tab: path === 'dashboard' ? 'dashboard' : 'list', filter: filterFrom(params), page: Number.isSafeInteger(page) && page >= 0 ? page : 0, at: at !== null && /^\d+$/.test(at) ? Number(at) : undefined };
}

function routeHash(route: Route): string {
  if (route.tab === 'dashboard') return '#dashboard';
  const params = filterParams(route.filter);
  if (route.page > 0) params.set('page', String(route.page));
  if (route.at !== undefined) params.set('at', String(route.at));
  const query = params.toString();
  return `#list${query === '' ? '' : `?${query}`}`;
}

const isFiltered = (filter: Filter): boolean => filterParams(filter).toString() !== '';

function embedded(): ReportData | undefined {
  const element = document.getElementById('personaflow-data');
  return element === null ? undefined : (JSON.parse(element.textContent ?? 'null') as ReportData);
}

async function main(): Promise<void> {
  const report = embedded();
  const source: Source = report === undefined ? apiSource : staticSource(report);
  let summary: Summary = await source.summary();
  let stats: Stats = await source.stats();
  let route = parseRoute(location.hash);
  document.title = `${summary.mode === 'report' ? 'personaflow report' : 'personaflow view'}: ${summary.dir}`;

  const headline = h('span', { class: 'headline' });
  const tabs = h('nav', { class: 'tabs' });
  const banner = h('p', { class: 'banner' });
  const filters = h('div', { class: 'filters-slot' });
  const list = h('div', { class: 'list-slot' });
  const pane = h('div', { class: 'pane-slot' }, h('p', { class: 'empty' }, 'Choose a conversation.'));
  const listPage = h('div', { class: 'conversations' }, filters, h('div', { class: 'split' }, list, pane));
  const dashPage = h('div', { class: 'dashboard-slot' });
  const main = h('main', {}, listPage, dashPage);
  document.body.append(h('header', {}, h('h1', {}, 'personaflow'), h('span', { class: 'dir' }, summary.dir), headline, tabs), banner, main);
  let board: Dashboard | undefined;

  const go = (next: Route): void => {
    const hash = routeHash(next);
    if (hash === location.hash) void render();
    else location.hash = hash;
  };

  const drawHeader = (): void => {
    const scan = summary.scanDone ? '' : ` · reading… ${count(summary.scanned)} scanned`;
    const bad = summary.badLines === 0 ? '' : ` · ${count(summary.badLines)} unreadable lines skipped`;
    headline.textContent = `${count(summary.interactions)}${summary.interactionsFinal ? '' : '+'} interactions · ${count(summary.failures)} failures${summary.rejections > 0 ? ` · ${count(summary.rejections)} rejected replies` : ''}${bad}${scan}`;
    replace(
      tabs,
      h('a', { href: routeHash({ ...route, tab: 'list' }) as `#${string}`, class: route.tab === 'list' ? 'tab active' : 'tab' }, 'Conversations'),
      h('a', { href: '#dashboard', class: route.tab === 'dashboard' ? 'tab active' : 'tab' }, 'Dashboard'),
    );
    banner.textContent =
      report === undefined ? '' : `Report of ${summary.dir}: the dashboard counts all ${count(stats.scanned)} interactions; the list holds a sample of ${count(report.conversations.length)} (seed ${report.sampleSeed}), generated ${report.generatedAt}.`;
    banner.hidden = report === undefined;
  };

  let listToken = 0;
  let filterKey = '';
  let listKey = '';
  const drawList = async (): Promise<void> => {
    const token = ++listToken;
    const page = await source.page(route.filter, route.page);
    if (token !== listToken) return;
    // Rebuilt only when its choices or the filter change: a poll must not close a list or eat what is being typed.
    const key = JSON.stringify([stats.features, stats.models, stats.endReasons, stats.guardReasons, stats.rejectionReasons, stats.rounds, stats.verdicts, Object.keys(stats.scores), route.filter].map((part) => (part !== null && typeof part === 'object' && !Array.isArray(part) && part !== route.filter && part !== stats.features ? Object.keys(part) : part)));
    if (key !== filterKey) {
      filterKey = key;
      replace(filters, filterBar(stats, route.filter, (filter) => go({ ...route, filter, page: 0 })));
    }
    // Redrawn only when something in it changed: a poll during the scan must not reset the list under the reader.
    const shown = JSON.stringify([page, route.at, summary.scanDone]);
    if (shown === listKey) return;
    listKey = shown;
    replace(list, listView(page, isFiltered(route.filter), summary.scanDone, route.at, (at) => go({ ...route, at }), (n) => go({ ...route, page: n })));
  };

  let paneAt: number | undefined;
  const drawPane = async (): Promise<void> => {
    if (route.at === paneAt) return;
    paneAt = route.at;
    if (route.at === undefined) {
      replace(pane, h('p', { class: 'empty' }, 'Choose a conversation.'));
      return;
    }
    try {
      const view = await source.conversation(route.at);
      if (paneAt === view.at) replace(pane, conversationPane(view));
    } catch (error) {
      replace(pane, h('p', { class: 'error' }, `This conversation cannot be shown: ${(error as Error).message}`));
    }
  };

  const render = async (): Promise<void> => {
    route = parseRoute(location.hash);
    drawHeader();
    listPage.hidden = route.tab !== 'list';
    dashPage.hidden = route.tab !== 'dashboard';
    if (route.tab === 'dashboard') {
      if (board === undefined) {
        board = dashboard(stats);
        replace(dashPage, board.element);
      } else board.update(stats);
      return;
    }
    await Promise.all([drawList(), drawPane()]);
  };

  window.addEventListener('hashchange', () => void render());
  await render();
  document.body.dataset.ready = 'true';

  // While the background scan runs, the counts, the filters' values and the dashboard grow.
  while (!summary.scanDone) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    [summary, stats] = await Promise.all([source.summary(), source.stats()]);
    drawHeader();
    if (route.tab === 'dashboard') board?.update(stats);
    else await drawList();
  }
  document.body.dataset.scanned = 'true';
  if (route.tab === 'dashboard') board?.update(stats);
  else await drawList();
}

main().catch((error: unknown) => {
  document.body.append(h('p', { class: 'error' }, `The page failed: ${(error as Error).message}`));
});
