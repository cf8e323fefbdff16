// Query generation: new requests for a persona that fell short of its target (supplement rounds).
import { Observable, defer } from 'rxjs';
import { askChecked, type PromptCall, type PromptModel } from '../prompts/ask.js';
import { parseQueriesAnswer, queryGenerationPrompt, type GeneratedQuery } from '../prompts/queryGeneration.js';
import type { Features } from '../types.js';

export interface QueryGeneratorOptions extends PromptModel {
  /** Placeholders {persona}, {count}, {avoid}. */
  readonly template: string;
}

export interface QueryGenerator {
  /** Up to `count` new queries for the persona, none equal to one in `avoid`; errors when none is usable. */
  generate(persona: Features, count: number, avoid: readonly string[], call: PromptCall): Observable<GeneratedQuery[]>;
}

/** New queries for a persona (supplement rounds): one call asks for all `count`, unlike those in `avoid`. */
export function createQueryGenerator(options: QueryGeneratorOptions): QueryGenerator {
  return {
    generate: (persona, count, avoid, call) =>
      defer(() => {
        const prompt = queryGenerationPrompt(options.template, { persona, count, avoid });
        return askChecked(options, { module: 'query_generation', prompt, hints: { persona, queryGeneration: { count, avoid } } }, call, (content) => parseQueriesAnswer(content, count, avoid));
      }),
  };
}
