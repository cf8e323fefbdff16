// Persona NDJSON → tasks: validation with zod, FILE:LINE reports, persona × query expansion.
import * as z from 'zod';
import { quoted } from '../redact.js';
import { rngFor, stableId } from '../rng.js';
import { interactionId, type Task } from '../types.js';
import type { ReadLinesOptions } from './ndjson.js';
import type { QueryDataset } from './queries.js';
import { readRecords } from './records.js';
import { KeySet } from './seen.js';

const text = z.string().trim().min(1, 'must be a non-empty string');
const id = z.union([text, z.number().int().transform(String)], {
  error: (issue) => (issue.input === undefined ? 'required' : 'must be a non-empty string or an integer'),
});

export const querySchema = z
  .looseObject({
    query_id: id.optional(),
    original_query: text.optional(),
    text: text.optional(),
    adapted_query: text.optional(),
    target_turns: z.number().int().positive().optional(),
    /** What the user knows about this request and may reveal when asked (a scenario, as tau2-bench's user scenarios). */
    facts: z.array(text).optional(),
  })
  .refine((query) => query.original_query !== undefined || query.text !== undefined, {
    message: 'a query needs `original_query` (or `text`)',
    path: ['original_query'],
  });

export const personaSchema = z.looseObject({
  persona_id: id,
  persona_features: z.record(z.string(), z.unknown()).optional(),
  features: z.record(z.string(), z.unknown()).optional(),
  system_prompt: z.string().nullish(),
  /** What this user knows about their own situation, for every request (the query's own `facts` come after). */
  facts: z.array(text).optional(),
  queries: z.array(querySchema).optional(),
});

export type PersonaLine = z.infer<typeof personaSchema>;

export interface TaskOptions extends ReadLinesOptions {
  /** Name used in messages: the file path, or `stdin`. */
  readonly name: string;
  readonly seed: number;
  readonly minTurns: number;
  readonly maxTurns: number;
  /** Stop at the first bad line instead of reporting and skipping it. */
  readonly strict?: boolean;
  /** Receives `FILE:LINE: message` for every bad line (default: nothing). */
  readonly onWarning?: (message: string) => void;
  /** Called just before `onWarning` reports a line that could not be read as a persona (not JSON, refused by the schema), not one skipped for what it holds. */
  readonly onBadLine?: () => void;
  /** Queries for personas that carry none (`--queries`): `perPersona` of them each, drawn with the persona's RNG. */
  readonly queries?: { readonly dataset: QueryDataset; readonly perPersona: number; readonly strategy?: 'random' | 'round_robin' } | undefined;
}

/**
 * Expands one persona into its tasks. `target_turns` is clamped to [minTurns, maxTurns]; when absent it is a
 * seeded draw, so the same persona and seed always get the same targets.
 */
export function expandPersona(persona: PersonaLine, source: string, options: Pick<TaskOptions, 'seed' | 'minTurns' | 'maxTurns'>): { tasks: Task[]; warnings: string[] } {
  const personaId = persona.persona_id;
  const features = persona.persona_features ?? persona.features ?? {};
  const seen = new Set<string>();
  const tasks: Task[] = [];
  const warnings: string[] = [];
  (persona.queries ?? []).forEach((query, index) => {
    const original = (query.original_query ?? query.text) as string;
    const queryId = query.query_id ?? `q_${stableId(`${personaId}\n${original}`)}`;
    if (seen.has(queryId)) {
      warnings.push(`queries[${index}]: duplicate query_id ${quoted(queryId)} for persona ${quoted(personaId)}, skipped`);
      return;
    }
    seen.add(queryId);
    const key = `${personaId}/${queryId}`;
    const targetTurns =
      query.target_turns === undefined
        ? rngFor(options.seed, key, 'target_turns').int(options.minTurns, options.maxTurns)
        : Math.min(options.maxTurns, Math.max(options.minTurns, query.target_turns));
    const facts = [...(persona.facts ?? []), ...(query.facts ?? [])];
    tasks.push({
      personaId,
      personaFeatures: features,
      systemPrompt: persona.system_prompt ?? undefined,
      ...(facts.length === 0 ? {} : { facts }),
      queryId,
      originalQuery: original,
      initialQuery: query.adapted_query ?? original,
      targetTurns,
      key,
      source,
      ...(query.adapted_query === undefined ? {} : { adapted: true }),
    });
  });
  return { tasks, warnings };
}

/**
 * Reads persona lines from `input` and yields one task per persona × query, lazily: nothing is read
 * before the consumer asks for the next task. Bad lines are reported as `FILE:LINE: message` through
 * `onWarning` and skipped, or end the stream with a ConfigError when `strict`. Blank lines are ignored.
 * A persona × query that already came earlier in the input (the same interaction id) is reported and
 * skipped, so no interaction is generated, billed or written twice; remembering the ids costs about
 * at most 16 bytes per task (see KeySet).
 */
export async function* readTasks(input: AsyncIterable<Buffer | string>, options: TaskOptions): AsyncGenerator<Task> {
  const seen = new KeySet();
  for await (const { value, where, report } of readRecords(input, personaSchema, options)) {
    let persona = value;
    if ((persona.queries ?? []).length === 0 && options.queries !== undefined) {
      // Seeded by the persona alone, so the same persona gets the same queries in any run with this seed.
      const { dataset, perPersona, strategy } = options.queries;
      const assigned = strategy === 'round_robin' ? await dataset.nextInOrder(perPersona) : await dataset.assign(perPersona, rngFor(options.seed, persona.persona_id, 'queries'));
      persona = { ...persona, queries: assigned.map((query) => ({ query_id: query.queryId, original_query: query.text, ...(query.metadata === undefined ? {} : { metadata: query.metadata }) })) };
    }
    const { tasks, warnings } = expandPersona(persona, where, options);
    for (const warning of warnings) report(`${where}: ${warning}`);
    if (tasks.length === 0 && warnings.length === 0) report(`${where}: persona ${quoted(value.persona_id)} has no queries${options.queries === undefined ? ' (give --queries FILE to assign some)' : ''}, skipped`);
    for (const task of tasks) {
      // By interaction id, which is injective: the RNG key `persona/query` is not (`a/b` × `c`, `a` × `b/c`).
      if (seen.add(interactionId(task.personaId, task.queryId))) yield task;
      else report(`${where}: persona ${quoted(task.personaId)} query ${quoted(task.queryId)} already came earlier in the input, skipped`);
    }
  }
}
