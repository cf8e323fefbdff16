// Style transfer's prompt: a dataset query and the persona's traits in, the query in the persona's voice out (JSON).
import type { Features } from '../types.js';
import type { Checked } from './ask.js';
import { DOMAINS, SCENARIOS, cleanRewrite, oneOf, rewriteProblem } from './checks.js';
import { jsonObjectIn } from './json.js';
import { bundledTemplate, fill, formatPersona, type TemplateContract } from './template.js';

export const DEFAULT_STYLE_TRANSFER_TEMPLATE = bundledTemplate('style_transfer');

/** Style transfer's placeholders: the query to rewrite must be in it. */
export const STYLE_TRANSFER_TEMPLATE = { placeholders: ['persona', 'query', 'target_length', 'target_turns'], required: [['query']] } as const satisfies TemplateContract;

/** Fills `{persona}`, `{query}`, `{target_length}` and `{target_turns}`. */
export function styleTransferPrompt(template: string, values: { readonly persona: Features; readonly query: string; readonly targetLength: string; readonly targetTurns: number }): string {
  return fill<(typeof STYLE_TRANSFER_TEMPLATE.placeholders)[number]>(template, {
    persona: () => formatPersona(values.persona),
    query: () => values.query,
    target_length: () => values.targetLength,
    target_turns: () => String(values.targetTurns),
  });
}

/** Reads a style-transfer answer: PersonaGym's JSON, checked to be a usable message. */
export function parseStyleAnswer(content: string, query?: string): Checked<{ adapted: string; domain: string; scenario: string }> {
  const json = jsonObjectIn(content);
  if (json === undefined) return { ok: false, reason: 'no JSON object' };
  if (typeof json.adapted_query !== 'string') return { ok: false, reason: 'JSON without an "adapted_query" string' };
  const adapted = cleanRewrite(json.adapted_query);
  if (adapted === '') return { ok: false, reason: 'empty adapted_query' };
  const problem = rewriteProblem(adapted, query);
  if (problem !== undefined) return { ok: false, reason: problem };
  return { ok: true, value: { adapted, domain: oneOf(json.inferred_domain, DOMAINS, 'general'), scenario: oneOf(json.inferred_scenario, SCENARIOS, 'casual') } };
}
