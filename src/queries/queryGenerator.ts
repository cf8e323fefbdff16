// Query generation: new requests for a persona that fell short of its target (supplement rounds).
import { Observable, defer } from 'rxjs';
import { formatPersona } from '../models/prompts.js';
import { DOMAINS, SCENARIOS, askChecked, cleanRewrite, jsonObjectIn, normalise, oneOf, rewriteProblem, type Checked, type PromptCall, type PromptModel } from '../models/rewrite.js';
import type { Features } from '../types.js';

export interface GeneratedQuery {
  readonly query: string;
  readonly domain: string;
  readonly scenario: string;
}

export interface QueryGeneratorOptions extends PromptModel {
  /** Placeholders {persona}, {count}, {avoid}. */
  readonly template: string;
}

export interface QueryGenerator {
  /** Up to `count` new queries for the persona, none equal to one in `avoid`; errors when none is usable. */
  generate(persona: Features, count: number, avoid: readonly string[], call: PromptCall): Observable<GeneratedQuery[]>;
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

/** New queries for a persona (supplement rounds): one call asks for all `count`, unlike those in `avoid`. */
export function createQueryGenerator(options: QueryGeneratorOptions): QueryGenerator {
  return {
    generate: (persona, count, avoid, call) =>
      defer(() => {
        const list = avoid.length === 0 ? '(none yet)' : avoid.map((query) => `- ${query}`).join('\n');
        const prompt = options.template.replace(/\{(persona|count|avoid)\}/g, (_, key: string) => (key === 'persona' ? formatPersona(persona) : key === 'count' ? String(count) : list));
        return askChecked(options, { module: 'query_generation', prompt, hints: { persona, queryGeneration: { count, avoid } } }, call, (content) => parseQueriesAnswer(content, count, avoid));
      }),
  };
}
