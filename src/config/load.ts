// Configuration: config/default.yaml + a PersonaGym-compatible config.yaml + flags, validated with zod.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { LineCounter, isMap, isNode, isScalar, parseDocument, type Document } from 'yaml';
import type * as z from 'zod';
import { ConfigError } from '../errors.js';
import { PACKAGE_CONFIG_DIR } from '../paths.js';
import { checkKeys } from './keys.js';
import { configSchema, type Config } from './schema.js';

export interface LoadedConfig {
  readonly config: Config;
  /** The file the user gave (for messages and relative paths), or undefined for the defaults alone. */
  readonly file: string | undefined;
  readonly baseDir: string;
  readonly notices: string[];
  /** Where the user's file names a provider or a model (`api.model`, a pool, ...): such a run does not fall back to sim for want of a key. */
  readonly named: readonly string[];
}

/** The keys that choose a provider or a model, under each section that has its own. */
const MODEL_KEYS: readonly (readonly string[])[] = [
  ['api', 'provider'],
  ['api', 'model'],
  ['interaction_generation', 'assistant_model', 'provider'],
  ['interaction_generation', 'assistant_model', 'model'],
  ['interaction_generation', 'assistant_model', 'model_pool'],
  ['interaction_generation', 'user_model', 'provider'],
  ['interaction_generation', 'user_model', 'model'],
  ['distractor', 'llm', 'provider'],
  ['distractor', 'llm', 'model'],
  ['query_generation', 'llm', 'provider'],
  ['query_generation', 'llm', 'model'],
];

/** The paths of MODEL_KEYS that `user` sets. */
function namedModels(user: unknown): string[] {
  return MODEL_KEYS.filter((path) => {
    let at: unknown = user;
    for (const key of path) at = isPlainObject(at) ? at[key] : undefined;
    return at !== undefined && at !== null;
  }).map((path) => path.join('.'));
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Deep merge where `over` wins; arrays and scalars are replaced, not merged. */
export function merge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = merge(base[key], value);
  return out;
}

const SECRET_PATH = /key|token|secret|password|header|authorization/i;

/**
 * The bad value as an error message may show it: scalars only, and never anything under a key-like
 * path or that looks like a key (a key in the wrong place is still a key), so no secret reaches a terminal.
 */
export function describeValue(value: unknown, path: readonly PropertyKey[] = []): string {
  if (value === undefined) return 'nothing';
  const type = Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value === 'object' ? 'a mapping' : typeof value;
  if (value === null || typeof value === 'object') return type;
  const shown = JSON.stringify(value);
  const secretish = path.some((part) => SECRET_PATH.test(String(part))) || (typeof value === 'string' && (/^(sk|pk|rk)-/.test(value) || /^[A-Za-z0-9_\-.]{24,}$/.test(value)));
  if (secretish || shown === undefined || shown.length > 60) return `a ${typeof value} (value not shown)`;
  return `\`${shown}\` (${type})`;
}

/**
 * Reads a text file the user wrote (a config, a template, a strategy file) as strict UTF-8: a file in
 * another encoding is refused at its first bad line instead of being read with U+FFFD in place of its
 * characters. A byte order mark is dropped. `what` names the file in messages.
 */
export async function readTextFile(path: string, what: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ConfigError(`${path}: cannot read ${what} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    return decoder.decode(bytes);
  } catch {
    let start = 0;
    for (let line = 1; ; line += 1) {
      const end = bytes.indexOf(10, start);
      try {
        decoder.decode(bytes.subarray(start, end === -1 ? bytes.length : end));
      } catch {
        throw new ConfigError(`${path}:${line}: ${what} is not valid UTF-8 (save it as UTF-8)`);
      }
      if (end === -1) throw new ConfigError(`${path}: ${what} is not valid UTF-8 (save it as UTF-8)`);
      start = end + 1;
    }
  }
}

/** The document, or every syntax error in it as `file:LINE: invalid YAML: ...`. */
function readYaml(source: string, name: string): { doc: Document; lines: LineCounter; errors: string[] } {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  // yaml's messages describe the problem, not the text around it, so no value is echoed here.
  const errors = doc.errors.map((error) => `${name}:${lines.linePos(error.pos[0]).line}: invalid YAML: ${error.message.split('\n')[0] ?? ''}`);
  return { doc, lines, errors };
}

function parseYaml(source: string, name: string): { doc: Document; lines: LineCounter } {
  const { doc, lines, errors } = readYaml(source, name);
  if (errors[0] !== undefined) throw new ConfigError(errors[0]);
  return { doc, lines };
}

const pathText = (parts: readonly PropertyKey[]): string => parts.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '');

/** `:LINE` of the deepest node of `path` that the document has (for a key, the line of its value), or nothing. */
function lineOf(doc: Document | undefined, lines: LineCounter | undefined, path: readonly PropertyKey[]): string {
  for (let depth = path.length; depth > 0 && doc !== undefined && lines !== undefined; depth -= 1) {
    const node: unknown = doc.getIn(path.slice(0, depth) as (string | number)[], true);
    if (isNode(node) && node.range !== undefined && node.range !== null) return `:${lines.linePos(node.range[0]).line}`;
  }
  return '';
}

/** `:LINE` of the key at the end of `path` itself (its value may start on a later line). */
function keyLine(doc: Document, lines: LineCounter, path: readonly (string | number)[]): string {
  const parent: unknown = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (isMap(parent)) {
    const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === path[path.length - 1]);
    const range = isNode(pair?.key) ? pair.key.range : undefined;
    if (range !== undefined && range !== null) return `:${lines.linePos(range[0]).line}`;
  }
  return lineOf(doc, lines, path);
}

/** `file:LINE: path: message, got value` for each zod issue, with the YAML line when the node exists. */
function issueLines(error: z.ZodError, name: string, doc: Document | undefined, lines: LineCounter | undefined): string[] {
  return error.issues.map((issue) => {
    const path = pathText(issue.path);
    const got = 'input' in issue ? `, got ${describeValue(issue.input, issue.path)}` : '';
    return `${name}${lineOf(doc, lines, issue.path)}: ${path === '' ? '(top level)' : path}: ${issue.message}${got}`;
  });
}

/** Errors shown at once by the commands that stop at them; `personaflow validate` lists every one. */
const SHOWN_ERRORS = 5;

/** The first SHOWN_ERRORS lines, and how many more there are. */
function firstErrors(errors: readonly string[], name: string | undefined): string {
  const more = errors.length - SHOWN_ERRORS;
  // A file can be handed to validate; a configuration object (the library's) cannot.
  const all = name === undefined ? '' : ` (personaflow validate ${name} lists them all)`;
  return [...errors.slice(0, SHOWN_ERRORS), ...(more > 0 ? [`... and ${more} more${all}`] : [])].join('\n');
}

/** `file:LINE: path: message, got value` for the first zod issues. */
const explain = (error: z.ZodError, name: string, doc: Document | undefined, lines: LineCounter | undefined): string => firstErrors(issueLines(error, name, doc, lines), name);

/** Everything wrong with a config file at once, and the configuration when nothing is. */
export interface ConfigReport {
  /** The configuration, when there is no error. */
  readonly loaded: LoadedConfig | undefined;
  /** `file:LINE: path: message` for every problem found: YAML syntax, unknown keys, values the schema refuses. */
  readonly errors: readonly string[];
  /** Said once and harmless (PersonaGym keys personaflow does not use). */
  readonly notices: readonly string[];
}

/**
 * Reads config/default.yaml and the user's file over it and checks the result, collecting every problem
 * instead of stopping at the first: each YAML syntax error (then nothing more can be read), each unknown
 * key (with the key it probably meant), each value the schema refuses. `loadConfig` throws these;
 * `personaflow validate` lists them all.
 */
export async function inspectConfig(file: string | undefined): Promise<ConfigReport> {
  if (file === undefined) return inspected({}, { name: undefined, baseDir: process.cwd() });
  let source: string;
  try {
    source = await readTextFile(file, 'config file');
  } catch (error) {
    if (error instanceof ConfigError) return { loaded: undefined, errors: [error.message], notices: [] };
    throw error;
  }
  const read = readYaml(source, file);
  if (read.errors.length > 0) return { loaded: undefined, errors: read.errors, notices: [] };
  return inspected(read.doc.toJS() ?? {}, { name: file, file, baseDir: dirname(resolve(file)), parsed: read });
}

/**
 * The user's configuration (`name`: the file, or `config` for an object; undefined: the defaults alone)
 * checked and merged over the defaults, every problem collected.
 */
async function inspected(user: unknown, from: { readonly name: string | undefined; readonly file?: string; readonly baseDir: string; readonly parsed?: { doc: Document; lines: LineCounter } }): Promise<ConfigReport> {
  const defaultsPath = join(PACKAGE_CONFIG_DIR, 'default.yaml');
  const defaults = parseYaml(await readFile(defaultsPath, 'utf8'), defaultsPath).doc.toJS() as unknown;
  const notices: string[] = [];
  const errors: string[] = [];
  const { name, parsed } = from;
  if (name !== undefined) {
    if (!isPlainObject(user)) return { loaded: undefined, errors: [`${name}: expected ${parsed === undefined ? 'an object' : 'a YAML mapping at the top level'}, got ${describeValue(user)}`], notices };
    const keys = checkKeys(user, configSchema);
    errors.push(...keys.unknown.map((issue) => `${name}${parsed === undefined ? '' : keyLine(parsed.doc, parsed.lines, issue.path)}: ${pathText(issue.path)}: ${issue.message}`));
    if (keys.ignored.length > 0) notices.push(`${name}: PersonaGym keys that personaflow does not use, ignored: ${keys.ignored.join(', ')}`);
  }
  const result = configSchema.safeParse(merge(defaults, user), { reportInput: true });
  if (!result.success) errors.push(...issueLines(result.error, name ?? defaultsPath, parsed?.doc, parsed?.lines));
  if (errors.length > 0 || !result.success) return { loaded: undefined, errors, notices };
  return { loaded: { config: result.data, file: from.file, baseDir: from.baseDir, notices, named: namedModels(user) }, errors, notices };
}

/**
 * Loads config/default.yaml, merges the user's file over it (a PersonaGym config.yaml works as is) and
 * validates the result. Errors name the file, line, YAML path and bad value: the first few, and how many
 * more there are (see inspectConfig).
 */
export async function loadConfig(file: string | undefined): Promise<LoadedConfig> {
  const report = await inspectConfig(file);
  if (report.loaded === undefined) throw new ConfigError(firstErrors(report.errors, file ?? 'CONFIG'));
  return report.loaded;
}

/**
 * The same for a configuration given as an object (the library's `config`: a config.yaml's keys, built in
 * code): merged over config/default.yaml and validated as a file would be, unknown keys refused. Errors
 * name `config` and the path (`config: interaction_generation.min_turns: ...`). Relative paths in it (a
 * template file, a query dataset) are found from `baseDir`.
 */
export async function loadConfigObject(user: unknown, baseDir: string = process.cwd()): Promise<LoadedConfig> {
  const report = await inspected(user ?? {}, { name: 'config', baseDir });
  if (report.loaded === undefined) throw new ConfigError(firstErrors(report.errors, undefined));
  return report.loaded;
}

/** Reads and validates one YAML file of its own (a strategy file, say), with the same file:line messages. */
export async function loadYamlFile<T>(path: string, schema: z.ZodType<T>, what: string): Promise<T> {
  const { doc, lines } = parseYaml(await readTextFile(path, what), path);
  const result = schema.safeParse(doc.toJS() ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigError(explain(result.error, path, doc, lines));
  return result.data;
}

/** Settings that do not change what a run writes (by YAML path), left out of the fingerprint. */
const NOT_OUTPUT = new Set(['interaction_generation.max_workers', 'api.timeout', 'personaflow.sim.latency_ms', 'personaflow.sim.jitter_ms', 'personaflow.prices', 'personaflow.limits', 'personaflow.breaker', 'personaflow.max_wait_s', 'batch']);
/** Keys that hold secrets (or where they travel): left out, so nothing secret feeds even a hash. */
const SECRET_KEY = /^(?:api_key|api_key_env|headers|default_headers|authorization)$|password|secret/i;

/** The configuration without secrets and without settings that do not change the output, keys sorted. */
function canonical(value: unknown, path = ''): unknown {
  const key = path.slice(path.lastIndexOf('.') + 1);
  if (SECRET_KEY.test(key) || NOT_OUTPUT.has(path)) return undefined;
  if (Array.isArray(value)) return value.map((item, i) => canonical(item, `${path}[${i}]`));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(value).sort()) {
      const kept = canonical(value[name], path === '' ? name : `${path}.${name}`);
      if (kept !== undefined) out[name] = kept;
    }
    return out;
  }
  return value;
}

/**
 * A fingerprint of everything that shapes a run's output: the configuration (secrets, concurrency,
 * timeouts and sim latency left out) and the settings given on the command line. A resume with another
 * fingerprint would mix two datasets in one directory.
 */
export function fingerprint(config: Config, settings: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(JSON.stringify({ config: canonical(config), settings: canonical(settings, 'settings') })).digest('hex').slice(0, 16);
}

/** The run seed: `--seed`, else `personaflow.seed`, else PersonaGym's `experiment.seed`, else 42. */
export const runSeed = (config: Config, flag?: number): number => flag ?? config.personaflow.seed ?? config.experiment?.seed ?? 42;

/** Resolves `${VAR}` references at the moment a value is used; a missing variable is an error naming the path. */
export function expandEnv(value: string, yamlPath: string, env: NodeJS.ProcessEnv = process.env): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
    const found = env[name];
    if (found === undefined || found === '') throw new ConfigError(`${yamlPath}: environment variable ${name} is not set`);
    return found;
  });
}
