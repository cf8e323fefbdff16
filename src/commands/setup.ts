// What generate and worker set up alike: the settings that shape the output, and the models, prompts and noise of the conversations.
import type { CallListener, RetryListener } from '../chat.js';
import { fingerprint, runSeed, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { setUpDistractor } from '../distractor/setup.js';
import { ConfigError } from '../errors.js';
import { NearDuplicates } from '../judge/duplicates.js';
import type { Judge } from '../judge/judge.js';
import { setUpJudge } from '../judge/setup.js';
import type { SharedLimitsFactory } from '../limits/shared.js';
import { buildModels, type RunModels } from '../models/build.js';
import type { ModelFlags } from '../models/specs.js';
import type { Stopping } from '../limits/stop.js';
import { retryingCall } from '../operators/retryingCall.js';
import type { RoundReport } from '../operators/supplement.js';
import type { GenerateOptions } from '../pipeline.js';
import { DEFAULT_ASSISTANT_TEMPLATE } from '../prompts/assistant.js';
import { DEFAULT_STOP_TOKEN, DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE } from '../prompts/simulator.js';
import { loadPromptText, loadTemplate } from '../prompts/template.js';
import { setUpQueries, type QuerySetup } from '../queries/setup.js';
import { readTasks } from '../streams/personas.js';
import type { Task } from '../types.js';
import type { Reporter } from './reporter.js';

export type NoiseMode = 'off' | 'rules' | 'semantic';

/** The command-line settings that shape what a run writes (and so its fingerprint), as run.json records them. */
export interface RunSettings {
  readonly seed: number;
  readonly min_turns: number;
  readonly max_turns: number;
  readonly provider: string | null;
  readonly model: string | null;
  readonly base_url: string | null;
  readonly noise: NoiseMode;
  readonly supplement_rounds: number;
  readonly queries: string | null;
  /** Whether each conversation is judged (`--judge`, else `judge.enabled`). */
  readonly judge: boolean;
}

/** The flags those settings come from. */
export interface SettingFlags {
  readonly provider?: string | undefined;
  readonly model?: string | undefined;
  readonly baseUrl?: string | undefined;
  readonly seed?: number | undefined;
  readonly minTurns?: number | undefined;
  readonly maxTurns?: number | undefined;
  readonly noise?: NoiseMode | undefined;
  readonly queries?: string | undefined;
  readonly supplementRounds?: number | undefined;
  readonly judge?: boolean | undefined;
}

/** Whether (and how) generate noises user turns: `--noise`, else `distractor.enabled` / `use_semantic`. */
function noiseMode(config: Config, flag: NoiseMode | undefined): NoiseMode {
  if (flag !== undefined) return flag;
  if (!config.distractor.enabled) return 'off';
  return config.distractor.use_semantic ? 'semantic' : 'rules';
}

/** The run's settings from the config and the flags (flags win). */
export function settingsOf(config: Config, flags: SettingFlags): RunSettings {
  const ig = config.interaction_generation;
  const minTurns = flags.minTurns ?? ig.min_turns;
  const maxTurns = flags.maxTurns ?? Math.max(ig.max_turns, minTurns);
  if (maxTurns < minTurns) throw new ConfigError(`--max-turns ${maxTurns} is below --min-turns ${minTurns}`);
  return {
    seed: runSeed(config, flags.seed),
    min_turns: minTurns,
    max_turns: maxTurns,
    provider: flags.provider ?? null,
    model: flags.model ?? null,
    base_url: flags.baseUrl ?? null,
    noise: noiseMode(config, flags.noise),
    supplement_rounds: flags.supplementRounds ?? ig.max_supplement_rounds,
    queries: flags.queries ?? null,
    judge: flags.judge ?? config.judge.enabled,
  };
}

/** The fingerprint of a run with these settings: equal for runs whose outputs belong in one dataset. */
export const runFingerprint = (config: Config, settings: RunSettings): string => fingerprint(config, settings as unknown as Readonly<Record<string, unknown>>);

/** How the conversations of a process are set up beside the settings. */
export interface ConversationFlags {
  readonly concurrency?: number | undefined;
  readonly threads?: number | undefined;
  readonly strict?: boolean | undefined;
  readonly quiet?: boolean | undefined;
  /** Limits shared with other processes (a queue's workers). */
  readonly shared?: SharedLimitsFactory | undefined;
  /** Open the query dataset (false in a worker, whose tasks come with their queries). */
  readonly dataset?: boolean | undefined;
  /** Set up the judge when the settings ask for one (false in a worker: the run's producer judges). */
  readonly judging?: boolean | undefined;
  /** Each billed call (usage accounting). */
  readonly onUsage: GenerateOptions['onUsage'];
  /** `generate --batch`: the batch form of each model (src/batch/setup.ts). */
  readonly batch?: ModelFlags['batch'];
  /** `personaflow estimate`: a stand-in for every model, nothing called (src/estimate/standIns.ts). */
  readonly standIn?: ModelFlags['standIn'];
  /** Where the query file is (a resume may run elsewhere); default `settings.queries`. */
  readonly queriesFile?: string | undefined;
  /**
   * Run every model on sim when no key is set for any (a notice says so): only when nobody named a model.
   * Default: when no `--model` was given.
   */
  readonly simFallback?: boolean | undefined;
  /** Told what the run waits for and until when (limiters). */
  readonly onNotice?: ((message: string) => void) | undefined;
  /** Told what the models do not believe and work around (an absurd reset header, a server without usage). */
  readonly onWarning?: ((message: string) => void) | undefined;
  /** --verbose: told about every attempt of every call. */
  readonly onCall?: CallListener | undefined;
}

/** The models a run calls, its query side, and the options of its conversations. */
export interface Conversations {
  readonly models: RunModels;
  readonly queries: QuerySetup;
  readonly options: Omit<GenerateOptions, 'supplement'>;
  /** The judge, when one runs. */
  readonly judge: Judge | undefined;
  /** The user simulator's template. */
  readonly template: string;
}

/** Which models beside the conversation's a run with these settings calls (`judging`: this process judges). */
export function helpersCalled(config: Config, settings: RunSettings, judging = settings.judge): { distractor: boolean; queries: boolean; judge: boolean } {
  return { distractor: settings.noise === 'semantic', queries: config.query_generation.style_transfer.enabled || settings.supplement_rounds > 0, judge: judging && config.judge.review };
}

/** Builds the models, loads the user simulator's template, sets up the distractor and the query side. */
export async function setUpConversations(loaded: LoadedConfig, settings: RunSettings, flags: ConversationFlags, report: Reporter): Promise<Conversations> {
  const { config } = loaded;
  const ig = config.interaction_generation;
  const concurrency = flags.concurrency ?? ig.max_workers;
  const rounds = settings.supplement_rounds;
  const judging = settings.judge && flags.judging !== false;
  const models = buildModels(config, {
    provider: settings.provider ?? undefined,
    model: settings.model ?? undefined,
    baseUrl: settings.base_url ?? undefined,
    simFallback: flags.simFallback ?? settings.model === null,
    onNotice: flags.onNotice,
    onWarning: flags.onWarning,
    onCall: flags.onCall,
    seed: settings.seed,
    concurrency,
    threads: flags.threads,
    baseDir: loaded.baseDir,
    ...helpersCalled(config, settings, judging),
    shared: flags.shared,
    batch: flags.batch,
    standIn: flags.standIn,
  });
  const template = await loadTemplate(ig.user_model.system_prompt_template, loaded.baseDir, 'interaction_generation.user_model.system_prompt_template', DEFAULT_USER_TEMPLATE, SIMULATOR_TEMPLATE);
  const assistantPrompts = await loadAssistantPrompts(config, loaded.baseDir, settings.model !== null);
  const { stop_policy: stopPolicy, feedback_probability: feedbackProbability } = ig.user_model;
  if (stopPolicy === 'user' && feedbackProbability !== undefined) {
    report.warning('interaction_generation.user_model.feedback_probability: not used with stop_policy: user (the simulated user decides when it is done); set stop_policy: personagym to end conversations by its draw as PersonaGym does');
  }
  const distractor = settings.noise === 'off' ? undefined : await setUpDistractor(config, loaded.baseDir, { semantic: settings.noise === 'semantic', model: models.distractor });
  const judge = judging ? await setUpJudge(config, loaded.baseDir, { model: models.judge }) : undefined;
  for (const notice of [...loaded.notices, ...models.notices]) report.notice(notice);
  const judged = judge?.model;
  if (judged !== undefined && models.pool.entries.some((entry) => entry.model.provider === judged.provider && entry.model.model === judged.model)) {
    report.warning(`judge.llm: the judge is ${judged.provider}/${judged.model}, which is also an assistant model: a model tends to rate its own answers higher; set judge.llm.model to another model`);
  }
  const queries = await setUpQueries(config, loaded.baseDir, {
    queriesFile: flags.queriesFile ?? settings.queries ?? undefined,
    rounds,
    model: models.queries,
    strict: flags.strict === true,
    dataset: flags.dataset,
    onWarning: (m) => report.warn(m),
    onNotice: (m) => report.warning(m),
  });
  const options = {
    pool: models.pool,
    user: { ...models.user, template, stopPolicy, feedbackProbability },
    assistantPrompts,
    seed: settings.seed,
    minTurns: settings.min_turns,
    maxTurns: settings.max_turns,
    concurrency,
    maxRetries: ig.max_retries,
    retryDelayMs: ig.retry_delay * 1000,
    stopToken: config.personaflow.stop_token ?? DEFAULT_STOP_TOKEN,
    distractor,
    styleTransfer: queries.styleTransfer,
    onUsage: flags.onUsage,
    // Near-duplicates are judged in the order conversations finish: of two, the later one is rejected.
    judge: judge === undefined ? undefined : { judge, duplicates: new NearDuplicates() },
  } satisfies Omit<GenerateOptions, 'supplement'>;
  return { models, queries, options, judge, template };
}

/**
 * The assistant's system prompt for each pool entry: its own `system_prompt` (the text, or a .txt/.md file
 * next to the config), else `assistant_model.system_prompt`, else config/prompts/assistant.txt. With `--model` the pool
 * is one model with the assistant model's prompt.
 */
async function loadAssistantPrompts(config: Config, baseDir: string, singleModel: boolean): Promise<string[]> {
  const am = config.interaction_generation.assistant_model;
  const shared = await loadPromptText(am.system_prompt, baseDir, 'interaction_generation.assistant_model.system_prompt', DEFAULT_ASSISTANT_TEMPLATE);
  if (singleModel || am.model_pool === undefined) return [shared];
  return Promise.all(am.model_pool.map((entry, index) => (entry.system_prompt === undefined ? Promise.resolve(shared) : loadPromptText(entry.system_prompt, baseDir, `interaction_generation.assistant_model.model_pool[${index}].system_prompt`, DEFAULT_ASSISTANT_TEMPLATE))));
}

/** How a run reads its persona input: its name in messages, and what happens to a bad line. */
export interface TaskReading {
  readonly name: string;
  readonly strict: boolean;
  readonly onWarning?: ((message: string) => void) | undefined;
}

/**
 * The tasks of a run's persona input (generate's file or stdin, the library's personas): persona lines
 * expanded with the run's seed and turn limits, and personas without queries given the query dataset's
 * (`query_generation.selection`).
 */
export function runTasks(input: AsyncIterable<Buffer | string>, config: Config, run: Pick<Conversations, 'options' | 'queries'>, reading: TaskReading): AsyncGenerator<Task> {
  const { options, queries } = run;
  const { selection } = config.query_generation;
  return readTasks(input, {
    name: reading.name,
    seed: options.seed,
    minTurns: options.minTurns,
    maxTurns: options.maxTurns,
    strict: reading.strict,
    onWarning: reading.onWarning,
    queries: queries.dataset === undefined ? undefined : { dataset: queries.dataset, perPersona: selection.queries_per_persona, strategy: selection.strategy },
  });
}

/** What a run's supplement rounds tell and ask of the command (or the library) around them. */
export interface SupplementHooks {
  readonly stopping?: Stopping | undefined;
  readonly onRetry?: RetryListener | undefined;
  /** Each billed call of the query generator. */
  readonly onUsage: GenerateOptions['onUsage'];
  readonly onRound?: ((report: RoundReport) => void) | undefined;
  readonly onGeneratorError: (personaId: string, error: unknown) => void;
  /** True once the run is stopping: no further round starts. */
  readonly stopped: () => boolean;
  /** Interaction ids an earlier run already wrote (--resume). */
  readonly isWritten?: ((interactionId: string) => boolean) | undefined;
}

/**
 * The supplement rounds of a run, as `generate` (the pipeline) takes them: with a query generator, up to
 * `rounds` of new queries for the personas short of their target; with a judge, always (even without
 * rounds it says who is short and why); with neither, none.
 */
export function supplementOf(config: Config, run: Pick<Conversations, 'options' | 'queries' | 'judge'>, rounds: number, hooks: SupplementHooks): GenerateOptions['supplement'] {
  const { queries, judge, options } = run;
  if (queries.generator === undefined && judge === undefined) return undefined;
  const ig = config.interaction_generation;
  return {
    rounds: queries.generator === undefined ? 0 : rounds,
    generator: queries.generator,
    call: retryingCall({ maxRetries: ig.max_retries, retryDelayMs: ig.retry_delay * 1000, stopping: hooks.stopping, onRetry: hooks.onRetry, onUsage: hooks.onUsage }),
    concurrency: options.concurrency,
    onRound: hooks.onRound,
    onGeneratorError: hooks.onGeneratorError,
    stopped: hooks.stopped,
    ...(hooks.isWritten === undefined ? {} : { isWritten: hooks.isWritten }),
  };
}
