// Query generation's prompt: new requests for a persona, unlike those it already has; the answer read and deduplicated.
import type { Features } from '../types.js';
import type { Checked } from './ask.js';
import { DOMAINS, SCENARIOS, cleanRewrite, normalise, oneOf, rewriteProblem } from './checks.js';
import { jsonObjectIn } from './json.js';
import { bundledTemplate, fill, formatPersona, type TemplateContract } from './template.js';

export const DEFAULT_QUERY_GENERATION_TEMPLATE = bundledTemplate('query_generation');

/** A new request for a persona, with PersonaGym's domain and scenario. */
export interface GeneratedQuery {
  readonly query: string;
  readonly domain: string;
  readonly scenario: string;
}

/** Query generation's placeholders: the new requests are for the persona. */
export const QUERY_GENERATION_TEMPLATE = { placeholders: ['persona', 'count', 'avoid'], required: [['persona']] } as const satisfies TemplateContract;

/** Fills `{persona}`, `{count}` and `{avoid}` (the requests to avoid, one a line). */
export function queryGenerationPrompt(template: string, values: { readonly persona: Features; readonly count: number; readonly avoid: readonly string[] }): string {
  return fill<(typeof QUERY_GENERATION_TEMPLATE.placeholders)[number]>(template, {
    persona: () => formatPersona(values.persona),
    count: () => String(values.count),
    avoid: () => (values.avoid.length === 0 ? '(none yet)' : values.avoid.map((query) => `- ${query}`).join('\n')),
  });
}

/** Reads a query-generation answer: `{"queries": [...]}`, keeping usable, new, distinct queries. */
export function parseQueriesAnswer(content: string, count: number, avoid: readonly string[]): Checked<GeneratedQuery[]> {
  const json = jsonObjectIn(content);
  if (json === undefined) return { ok: false, reason: 'no JSON object' };
  if (!Array.isArray(json.queries)) return { ok: false, reason: 'JSON without a "queries" array' };
  const seen = new Set(avoid.map(normalise));
  const found: GeneratedQuery[] = [];
  for (const item of json.queries as unknown[]) {
    const record = typeof item === 'string' ? { query: item } : typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : {};
    if (typeof record.query !== 'string') continue;
    const query = cleanRewrite(record.query);
    if (query === '' || rewriteProblem(query) !== undefined || seen.has(normalise(query))) continue;
    seen.add(normalise(query));
    found.push({ query, domain: oneOf(record.domain, DOMAINS, 'general'), scenario: oneOf(record.scenario, SCENARIOS, 'casual') });
    if (found.length === count) break;
  }
  return found.length === 0 ? { ok: false, reason: 'no usable new query (empty, refusals, or repeats of earlier ones)' } : { ok: true, value: found };
}
