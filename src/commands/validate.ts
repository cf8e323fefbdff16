// `personaflow validate CONFIG [PERSONAS]`: every configuration and input problem at once, without a model call.
import { Option, type Command } from 'commander';
import { inspectConfig, expandEnv, runSeed, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { loadStrategyFile, setUpDistractor } from '../distractor/setup.js';
import { ConfigError, describeError } from '../errors.js';
import { setUpJudge } from '../judge/setup.js';
import { buildModels, runsOnSim } from '../models/build.js';
import { checkModel } from '../models/llama.js';
import { PROVIDERS, checkProviderFlag, conversationSpecs, endpointOf, helperSpec, type Endpoint, type ModelFlags, type Spec } from '../models/specs.js';
import { setUpQueries } from '../queries/setup.js';
import { printable } from '../redact.js';
import { BrokenPipeError, streamTarget } from '../sinks/stdout.js';
import { priceOf } from '../sinks/usage.js';
import { openInput } from '../streams/ndjson.js';
import { readTasks, type TaskOptions } from '../streams/personas.js';
import type { QueryDataset } from '../streams/queries.js';
import { countPersonas } from '../streams/tasks.js';
import { assertReadable } from './common.js';
import type { NoiseMode } from './flags.js';
import { MAX_WARNINGS, Reporter, type Level } from './reporter.js';
import { helpersCalled, settingsOf, setUpConversations, type RunSettings } from './setup.js';

export interface ValidateFlags {
  queries?: string;
  strategy?: string;
  provider?: string;
  model?: string;
  baseUrl?: string;
  noise?: NoiseMode;
  judge?: boolean;
}

/** What validate found: errors (exit 2) and warnings, each one line, in the order they were found. */
export class Findings {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];

  /** An error said once, however many models or steps find it (one base URL serves every model that names none). */
  error(message: string): void {
    if (!this.errors.includes(message)) this.errors.push(message);
  }

  /** A warning said once, however many steps find it. */
  warning(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }

  /** Runs a check that stops at its first problem (a ConfigError): that problem is an error, and the check's result undefined. */
  async attempt<T>(check: () => T | Promise<T>): Promise<T | undefined> {
    try {
      return await check();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      this.error(error.message);
      return undefined;
    }
  }
}

/** A Reporter whose notices and bad-line warnings become findings, for the setup code generate runs (it reports through one). */
class FindingsReporter extends Reporter {
  constructor(private readonly findings: Findings) {
    super(false);
  }

  /** What generate would say on stderr (a notice, a warning) is a finding here; an error is an error. */
  protected override write(level: Level, message: string): void {
    if (level === 'error') this.findings.error(message);
    else this.findings.warning(message);
  }

  /** Notices are findings too, even though validate is not --quiet about them. */
  override notice(message: string): void {
    this.findings.warning(message);
  }

  /** A bad line of a query file: an error. */
  override warn(message: string): void {
    this.findings.error(message);
  }
}

/** What the persona file held. */
export interface PersonaCheck {
  /** Persona lines that gave tasks. */
  readonly personas: number;
  readonly tasks: number;
}

/**
 * Reads a persona file through the reader generate uses (readTasks), without stopping at a bad line:
 * each line that is not JSON, not UTF-8, too long or refused by the schema is an error
 * (`FILE:LINE: field: message`); a line that is read but gives nothing (no queries, a task that came
 * earlier, a duplicate query id) is a warning, as generate skips it.
 *
 * @example
 * await checkPersonas(createReadStream('personas.ndjson'), { name: 'personas.ndjson', seed: 42, minTurns: 2, maxTurns: 5 }, findings)
 * // findings.errors: ['personas.ndjson:3: persona_id: required', ...]
 */
export async function checkPersonas(input: AsyncIterable<Buffer | string>, options: Pick<TaskOptions, 'name' | 'seed' | 'minTurns' | 'maxTurns' | 'queries'>, findings: Findings): Promise<PersonaCheck> {
  // readRecords tells a bad line (onBadLine) just before it reports it; any other report is a line skipped.
  let bad = false;
  const tasks = countPersonas(
    readTasks(input, {
      ...options,
      strict: false,
      onBadLine: () => (bad = true),
      onWarning: (message) => {
        if (bad) findings.error(message);
        else findings.warning(message);
        bad = false;
      },
    }),
  );
  for await (const _task of tasks) {
    // Each task is counted by countPersonas.
  }
  return { personas: tasks.personas, tasks: tasks.tasks };
}

/** A spec's endpoint, or the problem with it (a `${VAR}` in its base URL unset, a URL that is not http). */
function endpointFor(spec: Spec, config: Config, findings: Findings): Endpoint | undefined {
  try {
    return endpointOf(spec, config, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    findings.error(error.message);
    return undefined;
  }
}

/**
 * The models a run with these settings calls, as generate builds them: keys (by the name of the variable,
 * never its value), `${VAR}` references in headers, llama model files, and prices (a model without one
 * is a warning: its cost is unknown).
 */
function checkModels(loaded: LoadedConfig, settings: RunSettings, flags: ValidateFlags, findings: Findings): void {
  const { config } = loaded;
  const modelFlags: ModelFlags = { provider: settings.provider ?? undefined, model: settings.model ?? undefined, baseUrl: settings.base_url ?? undefined, simFallback: flags.model === undefined && loaded.named.length === 0, ...helpersCalled(config, settings) };
  try {
    checkProviderFlag(modelFlags);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    findings.error(error.message);
    return;
  }
  const specs: Spec[] = [];
  const add = (make: () => Spec | readonly Spec[]): void => {
    try {
      const made = make();
      specs.push(...(Array.isArray(made) ? (made as readonly Spec[]) : [made as Spec]));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      findings.error(error.message);
    }
  };
  add(() => {
    const { assistant, user } = conversationSpecs(config, modelFlags);
    return [...assistant, user];
  });
  for (const helper of ['distractor', 'queries', 'judge'] as const) if (modelFlags[helper] === true) add(() => helperSpec(config, modelFlags, helper));
  for (const spec of specs) {
    if (!(PROVIDERS as readonly string[]).includes(spec.provider)) findings.error(`${spec.path}.provider: \`${printable(spec.provider)}\` is not supported; use ${PROVIDERS.join(', ')}`);
  }
  if (modelFlags.provider === 'sim') return;
  for (const spec of specs.filter((s) => s.provider === 'llama')) {
    const problem = checkModel(spec.model, spec.path === '--model' ? process.cwd() : loaded.baseDir);
    if (problem !== undefined) findings.error(`${spec.path === '--model' ? '--model' : `${spec.path}.model`}: ${problem}`);
  }
  const real = specs.filter((spec) => spec.provider !== 'sim' && spec.provider !== 'llama' && (PROVIDERS as readonly string[]).includes(spec.provider));
  const endpoints = new Map(real.map((spec) => [spec, endpointFor(spec, config, findings)] as const));
  const missing = real.filter((spec) => {
    const endpoint = endpoints.get(spec);
    return endpoint !== undefined && endpoint.apiKey === undefined && !endpoint.custom;
  });
  if (runsOnSim(modelFlags, real.length, missing.length)) {
    const wanted = [...new Set(missing.map((spec) => (endpoints.get(spec) as Endpoint).wanted))].join(' or ');
    findings.warning(`no API key found (${wanted} not set in the environment): generate would run every model on the built-in sim provider, whose replies are simulated`);
    return;
  }
  // One error per model and the variables it looks at, naming every place that calls it.
  const byKey = new Map<string, { readonly model: string; readonly variables: readonly string[]; readonly paths: string[] }>();
  for (const spec of missing) {
    const variables = (endpoints.get(spec) as Endpoint).variables;
    const model = `${spec.provider}/${printable(spec.model)}`;
    const key = `${model}\u0000${variables.join(',')}`;
    const entry = byKey.get(key) ?? { model, variables, paths: [] };
    if (!entry.paths.includes(spec.path)) entry.paths.push(spec.path);
    byKey.set(key, entry);
  }
  for (const { model, variables, paths } of byKey.values()) {
    const unset = variables.length === 1 ? `${variables[0]} is not set` : `none of ${variables.join(', ')} is set`;
    findings.error(`${paths.join(', ')}: no API key for ${model}: ${unset} in the environment (or give api_key / api_key_env in the config)`);
  }
  for (const spec of real) {
    for (const [name, value] of Object.entries(spec.headers ?? {})) {
      try {
        expandEnv(value, `${spec.path}.headers.${name}`);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        findings.error(error.message);
      }
    }
  }
  const unpriced = [...new Set(real.filter((spec) => priceOf(config.personaflow.prices, spec.provider, spec.model) === undefined).map((spec) => `${spec.provider}/${spec.model}`))];
  for (const model of unpriced) findings.warning(`${printable(model)}: no price under personaflow.prices: the cost of its calls is unknown (usage.json lists it as unpriced, and --max-cost refuses to run)`);
}

/**
 * The prompt templates, strategy files and the judge as generate loads them (on sim models: nothing is
 * called), and the query dataset, whose bad lines are errors. Returns the dataset for the persona check.
 */
async function checkSetUp(loaded: LoadedConfig, settings: RunSettings, flags: ValidateFlags, findings: Findings): Promise<QueryDataset | undefined> {
  const { config, baseDir } = loaded;
  const report = new FindingsReporter(findings);
  const simulated: RunSettings = { ...settings, provider: 'sim' };
  const conversations = await findings.attempt(() =>
    // The user simulator's template, the assistant prompts, style transfer's templates; noise and the judge below, each on its own.
    setUpConversations(loaded, { ...simulated, noise: 'off', judge: false }, { concurrency: 1, dataset: false, onUsage: () => undefined, simFallback: false }, report),
  );
  await conversations?.models.close();
  // The distractor's and the judge's own setup need their models: sim ones, so nothing is called.
  const helpers = await findings.attempt(() => buildModels(config, { provider: 'sim', ...helpersCalled(config, settings), seed: settings.seed }));
  if (helpers !== undefined && settings.noise !== 'off') await findings.attempt(() => setUpDistractor(config, baseDir, { semantic: settings.noise === 'semantic', model: helpers.distractor }));
  if (flags.strategy !== undefined) {
    const strategy = flags.strategy;
    await findings.attempt(() => loadStrategyFile(strategy));
  }
  if (helpers !== undefined && settings.judge) await findings.attempt(() => setUpJudge(config, baseDir, { model: helpers.judge }));
  await helpers?.close();
  const queries = await findings.attempt(() => setUpQueries(config, baseDir, { queriesFile: flags.queries, rounds: 0, model: undefined, strict: false, onWarning: (m) => findings.error(m), onNotice: (m) => findings.warning(m) }));
  return queries?.dataset;
}

/** The summary's words for a count. */
const counted = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** The findings as lines: every error and warning, up to MAX_WARNINGS of each per file, then how many more. */
export function findingLines(findings: Findings): string[] {
  const lines: string[] = [];
  const shown = new Map<string, number>();
  const hidden = new Map<string, number>();
  const show = (kind: 'error' | 'warning', message: string): void => {
    // Per file and kind: `personas.ndjson:12: ...` counts for personas.ndjson.
    const file = /^(.+?):\d+: /.exec(message)?.[1] ?? '';
    const key = `${kind}\u0000${file}`;
    const count = (shown.get(key) ?? 0) + 1;
    shown.set(key, count);
    if (count <= MAX_WARNINGS || file === '') lines.push(`${kind}: ${printable(message)}`);
    else hidden.set(key, (hidden.get(key) ?? 0) + 1);
  };
  for (const message of findings.errors) show('error', message);
  for (const message of findings.warnings) show('warning', message);
  for (const [key, n] of hidden) {
    const [kind, file] = key.split('\u0000') as [string, string];
    lines.push(`${kind}: ${printable(file)}: ${counted(n, `more ${kind}`)} not shown (the first ${MAX_WARNINGS} are above)`);
  }
  return lines;
}

/** Runs `personaflow validate` and returns its exit code: 0 when nothing is wrong (warnings allowed), 2 when anything is. */
export async function runValidate(configFile: string, personasFile: string | undefined, flags: ValidateFlags): Promise<number> {
  const findings = new Findings();
  const inspected = await inspectConfig(configFile);
  for (const error of inspected.errors) findings.error(error);
  for (const notice of inspected.notices) findings.warning(notice);
  const { loaded } = inspected;
  let settings: RunSettings | undefined;
  let dataset: QueryDataset | undefined;
  if (loaded !== undefined) {
    settings = await findings.attempt(() => settingsOf(loaded.config, { ...flags, queries: flags.queries }));
    if (settings !== undefined) {
      checkModels(loaded, settings, flags, findings);
      dataset = await checkSetUp(loaded, settings, flags, findings);
    }
  } else if (flags.queries !== undefined) {
    const queries = flags.queries;
    // The query file can be read without a configuration: its bad lines are still worth knowing.
    const defaults = await inspectConfig(undefined);
    if (defaults.loaded !== undefined) dataset = (await findings.attempt(() => setUpQueries(defaults.loaded!.config, process.cwd(), { queriesFile: queries, rounds: 0, strict: false, onWarning: (m) => findings.error(m) })))?.dataset;
  }
  let input: PersonaCheck | undefined;
  const readable = personasFile !== undefined && (await findings.attempt(async () => (await assertReadable(personasFile, 'personas'), true))) === true;
  if (personasFile !== undefined && readable) {
    const opened = openInput(personasFile);
    const qg = loaded?.config.query_generation;
    try {
      input = await checkPersonas(
        opened.stream,
        {
          name: opened.name,
          seed: settings?.seed ?? (loaded === undefined ? 42 : runSeed(loaded.config)),
          minTurns: settings?.min_turns ?? 1,
          maxTurns: settings?.max_turns ?? 1,
          queries: dataset === undefined ? undefined : { dataset, perPersona: qg?.selection.queries_per_persona ?? 1, strategy: qg?.selection.strategy },
        },
        findings,
      );
    } catch (error) {
      findings.error(`${opened.name}: cannot read personas (${describeError(error)})`);
    } finally {
      opened.stream.destroy();
    }
  }
  await dataset?.close();
  const summary = [
    ...(input === undefined ? [] : [counted(input.personas, 'persona'), counted(input.tasks, 'task')]),
    counted(findings.errors.length, 'error'),
    counted(findings.warnings.length, 'warning'),
  ].join(', ');
  const code = findings.errors.length > 0 ? 2 : 0;
  const verdict = code === 0 ? `valid (exit 0)${personasFile === undefined ? '; no personas file was given' : ''}` : 'not valid (exit 2)';
  try {
    await streamTarget(process.stdout)(`${[...findingLines(findings), `validate: ${summary}: ${verdict}`].join('\n')}\n`);
  } catch (error) {
    if (!(error instanceof BrokenPipeError)) throw error;
  }
  return code;
}

/** The `validate` command's arguments and options. */
export function validateCommand(command: Command, setExitCode: (code: number) => void): Command {
  return command
    .description('check a config (and a persona file, a query file, a strategy file) without calling a model: every problem at once, then a summary; exit 0 when valid (warnings allowed), 2 when not')
    .argument('<config>', 'PersonaGym-compatible config.yaml, as given to generate -c')
    .argument('[personas]', 'persona NDJSON file, or - for stdin')
    .option('--queries <file>', 'query dataset (PersonaGym query.jsonl) for personas that carry no queries, as given to generate')
    .option('--strategy <file>', 'distractor strategy file (distractor_strategy.yaml format), as given to noise --strategy')
    .addOption(new Option('--provider <name>', 'as given to generate: the provider every model uses').choices(['sim', 'openai', 'openrouter', 'llama']))
    .option('--model <name>', 'as given to generate: one model for the assistant and the user simulator')
    .option('--base-url <url>', 'as given to generate: an OpenAI-compatible endpoint')
    .addOption(new Option('--noise <mode>', 'as given to generate (default from the config)').choices(['off', 'rules', 'semantic']))
    .option('--judge', 'as given to generate: check the judge too (default: judge.enabled)')
    .option('--no-judge', 'as given to generate: no judge')
    .action(async (config: string, personas: string | undefined, flags: ValidateFlags) => {
      setExitCode(await runValidate(config, personas, flags));
    });
}
