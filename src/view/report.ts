// `personaflow report`'s content: the whole directory's dashboard and a seeded sample of its conversations, as one self-contained HTML file.
import { rngFor } from '../rng.js';
import type { ConversationView, ReportData, Row } from './api.js';
import { reportHtml, type Assets } from './assets.js';
import type { Dataset } from './dataset.js';
import { rowOf } from './interaction.js';
import { lineAt, parseLine } from './lines.js';

/**
 * `k` distinct positions of [0, n), drawn with a seeded generator (Floyd's algorithm: k draws, whatever
 * n), in ascending order. The same seed and n give the same sample.
 */
export function samplePositions(n: number, k: number, seed: number): number[] {
  const take = Math.min(n, Math.max(0, k));
  const rng = rngFor(seed, 'report', 'sample');
  const chosen = new Set<number>();
  for (let j = n - take; j < n; j += 1) {
    const t = rng.int(0, j);
    chosen.add(chosen.has(t) ? j : t);
  }
  return [...chosen].sort((a, b) => a - b);
}

/** Scans the whole directory, then reads the sampled conversations: what the report shows. */
export async function buildReport(dataset: Dataset, options: { readonly sample: number; readonly seed: number }): Promise<ReportData> {
  await dataset.start();
  const store = dataset.scan.store;
  const conversations: ConversationView[] = [];
  const rows: Row[] = [];
  for (const i of samplePositions(store.count, options.sample, options.seed)) {
    const at = store.at[i] as number;
    const view = await dataset.conversation(at, i + 1);
    if (view === undefined) continue;
    conversations.push(view);
    rows.push(rowOf(parseLine(await lineAt(dataset.handle, at, dataset.size, store.bytes[i])), at, i + 1, store.reasonsOf(i)));
  }
  return { summary: dataset.summary('report'), stats: dataset.stats(), conversations, rows, generatedAt: new Date().toISOString(), sampleSeed: options.seed };
}

/** The report as one HTML file. */
export const renderReport = (assets: Assets, data: ReportData): string => reportHtml(assets, data, `personaflow report: ${data.summary.dir}`);
