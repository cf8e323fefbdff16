// Unknown configuration keys: a misspelt key is refused with the key it was probably meant to be; PersonaGym's own keys that we do not use are accepted and listed.
import type * as z from 'zod';

/**
 * Keys of PersonaGym's config.yaml that belong to its other stages or to options personaflow does not
 * have: accepted and ignored, and named once in a notice. `*.` matches the key under any section.
 */
export const IGNORED_KEYS: readonly string[] = [
  'persona_generation',
  'formulation',
  'paths.persona_bank',
  'paths.sampling',
  'paths.persona_specs',
  'paths.queries',
  'paths.interactions',
  'paths.training_data',
  'paths.logs',
  'experiment.incremental',
  'experiment.batch_size',
  'experiment.stages',
  'query_generation.dataset.path',
  '*.frequency_penalty',
  '*.presence_penalty',
];

/** What a walk over a user's configuration found. */
export interface KeyReport {
  /** `path: unknown key; did you mean ...?`, one per unknown key, with its YAML path (as parts). */
  readonly unknown: { readonly path: readonly (string | number)[]; readonly message: string }[];
  /** Paths of PersonaGym keys that are ignored. */
  readonly ignored: string[];
}

/** Damerau–Levenshtein distance (optimal string alignment) between two short strings. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = Array.from({ length: rows * cols }, (_, i) => (i < cols ? i : i % cols === 0 ? i / cols : 0));
  for (let i = 1; i < rows; i += 1) {
    for (let j = 1; j < cols; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((d[(i - 1) * cols + j] as number) + 1, (d[i * cols + j - 1] as number) + 1, (d[(i - 1) * cols + j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (d[(i - 2) * cols + j - 2] as number) + 1);
      d[i * cols + j] = best;
    }
  }
  return d[rows * cols - 1] as number;
}

/**
 * The candidate closest to `word` when it is close enough to be a typo of it (at most a third of its
 * letters, and at least 2, edited), else undefined.
 *
 * @example
 * closest('temprature', ['temperature', 'top_p']) // 'temperature'
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType; valueType?: z.ZodType; in?: z.ZodType };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The schema under its wrappers (default, optional, nullable, a pipe's input). */
function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if ((def.type === 'default' || def.type === 'optional' || def.type === 'nullable' || def.type === 'prefault' || def.type === 'catch' || def.type === 'readonly') && def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) current = def.in;
    else return current;
  }
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const isIgnored = (path: string): boolean => IGNORED_KEYS.some((pattern) => (pattern.startsWith('*.') ? path === pattern.slice(2) || path.endsWith(`.${pattern.slice(2)}`) : path === pattern));

const show = (parts: readonly (string | number)[]): string => parts.map((part) => (typeof part === 'number' ? `[${part}]` : `.${part}`)).join('').replace(/^\./, '');

/**
 * Walks a user's configuration along the schema's objects and reports every key the schema does not
 * know: with the known key it most likely meant (`interaction_genration` → `interaction_generation`), or,
 * for PersonaGym's own keys of other stages (IGNORED_KEYS), as ignored. Records (prices, limits,
 * headers) take any key; the schema itself still checks every value.
 */
export function checkKeys(value: unknown, schema: z.ZodType, path: (string | number)[] = [], report: KeyReport = { unknown: [], ignored: [] }): KeyReport {
  const base = unwrap(schema);
  const def = defOf(base);
  if (def.type === 'object' && def.shape !== undefined && isPlainObject(value)) {
    const shape = def.shape;
    for (const [key, child] of Object.entries(value)) {
      const at = [...path, key];
      if (Object.hasOwn(shape, key)) checkKeys(child, shape[key] as z.ZodType, at, report);
      else if (isIgnored(show(at))) report.ignored.push(show(at));
      else {
        const guess = closest(key, Object.keys(shape));
        report.unknown.push({ path: at, message: `unknown key${guess === undefined ? '' : `; did you mean \`${guess}\`?`} (${path.length === 0 ? 'top level' : show(path)} takes: ${Object.keys(shape).join(', ')})` });
      }
    }
  } else if (def.type === 'array' && def.element !== undefined && Array.isArray(value)) {
    value.forEach((item, i) => checkKeys(item, def.element as z.ZodType, [...path, i], report));
  } else if (def.type === 'record' && def.valueType !== undefined && isPlainObject(value)) {
    for (const [key, child] of Object.entries(value)) checkKeys(child, def.valueType, [...path, key], report);
  }
  return report;
}
