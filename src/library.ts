// The library's one call: a configuration and personas in, interactions out, as an Observable and an async iterable.
import { Observable, filter, map, type Subscription } from 'rxjs';
import type * as z from 'zod';
import { assertReadable } from './commands/common.js';
import { Reporter, type Level } from './commands/reporter.js';
import { runTasks, settingsOf, setUpConversations, supplementOf, type NoiseMode } from './commands/setup.js';
import { describeValue, loadConfig, loadConfigObject } from './config/load.js';
import type { configSchema } from './config/schema.js';
import { ConfigError, describeError } from './errors.js';
import { BOUNDS } from './options.js';
import { generate, type GenerateOptions } from './pipeline.js';
import { quoted } from './redact.js';
import { openInput } from './streams/ndjson.js';
import type { personaSchema } from './streams/personas.js';
import { judgedRejected, unfinished, type Failure, type Interaction, type Outcome, type Task } from './types.js';

/** A configuration as an object: the keys of a config.yaml (PersonaGym's and personaflow's), any of them left out. */
export type ConfigInput = z.input<typeof configSchema>;

/** One persona, as a line of a persona NDJSON file holds it. */
export type PersonaInput = z.input<typeof personaSchema>;

export interface PersonaflowOptions {
  /**
   * The configuration: the path of a config.yaml (a PersonaGym one loads as is), or an object with its
   * keys. Either is merged over config/default.yaml and validated; a bad key or value is a ConfigError
   * naming it. Default: config/default.yaml alone.
   */
  readonly config?: string | ConfigInput | undefined;
  /**
   * The personas: objects as persona lines hold them (`persona_id`, `persona_features`, `queries`, ...), in
   * an array, any iterable or an async iterable (read one at a time, as conversations finish), or the path
   * of a persona NDJSON file (`-` for stdin). The N-th object is `personas:N` in messages.
   */
  readonly personas: Iterable<PersonaInput> | AsyncIterable<PersonaInput> | string;
  /** A query dataset (PersonaGym's query.jsonl) for personas that carry no queries (as `--queries`). */
  readonly queries?: string | undefined;
  /** Every model of the run on this provider: `sim`, `openai`, `openrouter`, `llama` (as `--provider`). */
  readonly provider?: string | undefined;
  /** One model for the assistant (replacing the pool) and the user simulator (as `--model`). */
  readonly model?: string | undefined;
  /** An OpenAI-compatible endpoint for every model (as `--base-url`). */
  readonly baseUrl?: string | undefined;
  /** The run seed: the same seed gives the same interactions with sim (default: the config's, else 42). */
  readonly seed?: number | undefined;
  /** Conversations working at once (default: `interaction_generation.max_workers`). */
  readonly concurrency?: number | undefined;
  readonly minTurns?: number | undefined;
  readonly maxTurns?: number | undefined;
  /** Noise in user turns: `off`, `rules` or `semantic` (default: the config's `distractor` section). */
  readonly noise?: NoiseMode | undefined;
  /** Judge every conversation (default: `judge.enabled`). */
  readonly judge?: boolean | undefined;
  /** Rounds of new queries for personas short of their target (default: `max_supplement_rounds`). */
  readonly supplementRounds?: number | undefined;
  /** Aborting it stops the run: calls in flight are aborted, and the run ends with the signal's reason as its error. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Told of each bad persona (`personas:3: persona_id: required`), which is then skipped. Without it the
   * first bad persona ends the run with a ConfigError.
   */
  readonly onWarning?: ((message: string) => void) | undefined;
  /** Told what the CLI says on stderr: a sim fallback for want of a key, ignored PersonaGym keys, waits on rate limits. */
  readonly onNotice?: ((message: string) => void) | undefined;
}

/**
 * What a run yields for each task, in the order they finish: an interaction, an interaction the judge
 * rejected (the CLI writes those to rejected.ndjson), or a failure (a task that still failed after its
 * retries; the CLI writes those to failures.ndjson).
 */
export type Generated =
  | { readonly kind: 'interaction'; readonly interaction: Interaction }
  | { readonly kind: 'rejected'; readonly interaction: Interaction }
  | { readonly kind: 'failure'; readonly failure: Failure };

/** How an outcome of the pipeline reaches the caller: undefined for a conversation a stop cut short. */
function generated(outcome: Outcome): Generated | undefined {
  if (!outcome.ok) return unfinished(outcome) ? undefined : { kind: 'failure', failure: outcome.failure };
  return { kind: judgedRejected(outcome) ? 'rejected' : 'interaction', interaction: outcome.interaction };
}

/** Checks a numeric option up front, saying what was wrong with the value itself. */
function checkInteger(name: string, value: unknown, min: number, max: number = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`Expected \`${name}\` to be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}, got ${describeValue(value)}`);
  }
}

function checkOptions(options: PersonaflowOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  const { personas } = options;
  const iterable = typeof personas === 'object' && personas !== null && (Symbol.iterator in personas || Symbol.asyncIterator in personas);
  if (typeof personas !== 'string' && !iterable) throw new TypeError(`Expected \`personas\` to be an iterable, an async iterable or a file path, got ${describeValue(personas)}`);
  checkInteger('seed', options.seed, 0);
  checkInteger('concurrency', options.concurrency, 1, BOUNDS.concurrency);
  checkInteger('minTurns', options.minTurns, 1, BOUNDS.turns);
  checkInteger('maxTurns', options.maxTurns, 1, BOUNDS.turns);
  checkInteger('supplementRounds', options.supplementRounds, 0, BOUNDS.supplementRounds);
  if (options.noise !== undefined && !(['off', 'rules', 'semantic'] as const).includes(options.noise)) throw new TypeError(`Expected \`noise\` to be off, rules or semantic, got ${describeValue(options.noise)}`);
  if (options.config !== undefined && typeof options.config !== 'string' && (typeof options.config !== 'object' || options.config === null || Array.isArray(options.config))) {
    throw new TypeError(`Expected \`config\` to be a file path or an object, got ${describeValue(options.config)}`);
  }
}

/** What becomes of a bad input line (a persona, a query dataset's): `onWarning`'s, else it ends the run. */
const badLine =
  (options: PersonaflowOptions) =>
  (message: string): void => {
    if (options.onWarning === undefined) throw new ConfigError(`${message} (give onWarning to be told of bad lines and skip them instead)`);
    options.onWarning(message);
  };

/** stderr's lines of a command, told to the caller's callbacks instead (or to no one). */
class Told extends Reporter {
  readonly #options: PersonaflowOptions;

  constructor(options: PersonaflowOptions) {
    super(false);
    this.#options = options;
  }

  /** Whatever the CLI would say on stderr (a notice, a warning, an error before the run throws) goes to onNotice. */
  protected override write(level: Level, message: string): void {
    this.#options.onNotice?.(level === 'notice' || level === 'verbose' ? message : `${level}: ${message}`);
  }

  override warn(message: string): void {
    badLine(this.#options)(message);
  }
}

/**
 * The persona objects as NDJSON lines, one object a line, so they are read, checked and reported exactly
 * as a persona file's lines are (the N-th object is line N). An object JSON cannot hold (a cycle, a
 * BigInt) is reported here as a bad line, and leaves a blank line in its place.
 */
async function* personaLines(personas: Iterable<PersonaInput> | AsyncIterable<PersonaInput>, onBadLine: (message: string) => void): AsyncGenerator<string> {
  let index = 0;
  for await (const persona of personas) {
    index += 1;
    let line: string | undefined;
    try {
      // `undefined` or a function has no JSON: `null`, which the reader reports as not a persona.
      const json: string | undefined = JSON.stringify(persona);
      line = json ?? 'null';
    } catch (error) {
      onBadLine(`personas:${index}: cannot be read as JSON (${describeError(error)})`);
    }
    yield `${line ?? ''}\n`;
  }
}

/** A run set up: its tasks, the pipeline's options, and what to release when it ends. */
interface Prepared {
  readonly tasks: AsyncIterable<Task>;
  readonly options: GenerateOptions;
  readonly close: () => Promise<void>;
}

/** Sets a run up as `personaflow generate` does: configuration, models, prompts, noise, judge, query side, supplement. */
async function prepare(options: PersonaflowOptions, report: Told): Promise<Prepared> {
  // Bad lines are reported, never `strict`: what becomes of them is badLine's.
  const onBadLine = badLine(options);
  const loaded = typeof options.config === 'string' ? await loadConfig(options.config) : await loadConfigObject(options.config ?? {});
  const { config } = loaded;
  const settings = settingsOf(config, options);
  if (typeof options.personas === 'string') await assertReadable(options.personas, 'personas');
  if (options.queries !== undefined) await assertReadable(options.queries, 'query');
  const conversations = await setUpConversations(
    loaded,
    settings,
    { concurrency: options.concurrency, strict: false, onUsage: undefined, simFallback: options.model === undefined && loaded.named.length === 0, onNotice: options.onNotice },
    report,
  );
  const file = typeof options.personas === 'string' ? openInput(options.personas) : undefined;
  const input = file ?? { name: 'personas', stream: personaLines(options.personas as Exclude<PersonaflowOptions['personas'], string>, onBadLine) };
  const tasks = runTasks(input.stream, config, conversations, { name: input.name, strict: false, onWarning: onBadLine });
  const supplement = supplementOf(config, conversations, settings.supplement_rounds, {
    onUsage: undefined,
    onGeneratorError: (personaId, error) => report.say(`supplement: no new queries for persona ${quoted(personaId)}: ${describeError(error)}`),
    stopped: () => options.signal?.aborted === true,
  });
  return {
    tasks,
    options: { ...conversations.options, supplement },
    close: async () => {
      // A file the run never began to read (stopped while it was being set up) is closed here; stdin is left alone.
      if (file !== undefined && file.stream !== process.stdin) file.stream.destroy();
      await conversations.models.close();
      await conversations.queries.dataset?.close();
    },
  };
}

/**
 * The outcomes of one run, each handed to `write` (which may make the run wait) and then emitted. The run
 * is set up on subscription and ends on unsubscription: the calls in flight are aborted and the persona
 * source is closed. An aborted `signal` errors it with the signal's reason.
 */
function outcomes(options: PersonaflowOptions, write: (outcome: Outcome) => Promise<void>): Observable<Outcome> {
  return new Observable<Outcome>((subscriber) => {
    const { signal } = options;
    if (signal?.aborted === true) {
      subscriber.error(signal.reason);
      return undefined;
    }
    let ended = false;
    let run: Subscription | undefined;
    let close: (() => Promise<void>) | undefined;
    const release = (): void => void close?.().catch(() => undefined);
    const onAbort = (): void => subscriber.error(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    prepare(options, new Told(options)).then(
      (prepared) => {
        close = prepared.close;
        // Unsubscribed while it was being set up: nothing starts, what was built is let go.
        if (ended) return release();
        run = generate(prepared.tasks, prepared.options, write).subscribe({
          next: (outcome) => subscriber.next(outcome),
          error: (error: unknown) => subscriber.error(error),
          complete: () => subscriber.complete(),
        });
      },
      (error: unknown) => subscriber.error(error),
    );
    return () => {
      ended = true;
      signal?.removeEventListener('abort', onAbort);
      run?.unsubscribe();
      release();
    };
  });
}

/**
 * A run: an Observable of what each task became, and an async iterable of the same. Each subscription, and
 * each `for await` loop, is a run of its own (an async iterable of personas can be read by one only).
 * A `for await` loop sets the pace: the next task starts only as results are taken (at most twice the
 * concurrency wait), so a slow consumer holds the run back rather than piling results up. Leaving the loop
 * (break, return, a throw) or unsubscribing stops the run and aborts the calls in flight.
 */
export class Generation extends Observable<Generated> implements AsyncIterable<Generated> {
  readonly #options: PersonaflowOptions;

  constructor(options: PersonaflowOptions) {
    super((subscriber) =>
      outcomes(options, () => Promise.resolve())
        .pipe(
          map(generated),
          filter((item): item is Generated => item !== undefined),
        )
        .subscribe(subscriber),
    );
    this.#options = options;
  }

  [Symbol.asyncIterator](): AsyncIterator<Generated> {
    /** Results written and not yet taken, each with the write it holds back until it is. */
    const ready: { readonly value: Generated; readonly taken: () => void }[] = [];
    /** `next()` calls waiting for a result, in order. */
    const waiting: { readonly resolve: (result: IteratorResult<Generated>) => void; readonly reject: (error: unknown) => void }[] = [];
    let end: { readonly failed: boolean; readonly error?: unknown } | undefined;
    let run: Subscription | undefined;
    const settle = (): void => {
      while (waiting.length > 0 && (ready.length > 0 || end !== undefined)) {
        const waiter = waiting.shift() as (typeof waiting)[number];
        const next = ready.shift();
        if (next !== undefined) {
          next.taken();
          waiter.resolve({ value: next.value, done: false });
        } else if (end?.failed === true) waiter.reject(end.error);
        else waiter.resolve({ value: undefined, done: true });
      }
    };
    const write = (outcome: Outcome): Promise<void> => {
      const value = generated(outcome);
      if (value === undefined) return Promise.resolve();
      return new Promise<void>((taken) => {
        ready.push({ value, taken });
        settle();
      });
    };
    const start = (): void => {
      run = outcomes(this.#options, write).subscribe({
        error: (error: unknown) => {
          end = { failed: true, error };
          settle();
        },
        complete: () => {
          end = { failed: false };
          settle();
        },
      });
    };
    return {
      next: () =>
        new Promise<IteratorResult<Generated>>((resolve, reject) => {
          waiting.push({ resolve, reject });
          // The run starts with the first call, not before.
          if (run === undefined && end === undefined) start();
          settle();
        }),
      // Leaving the loop: the run stops, its calls in flight aborted.
      return: () => {
        end ??= { failed: false };
        run?.unsubscribe();
        ready.length = 0;
        settle();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * Generates conversations from personas, set up from a configuration exactly as `personaflow generate`
 * sets up a run (model pool, user simulator, noise, style transfer, judge, supplement rounds), and returns
 * the run as an Observable and an async iterable of what each task became: an interaction, one the judge
 * rejected, or a failure. Nothing starts until it is subscribed to or iterated; each subscription is a
 * run. Bad options throw a TypeError at once; a bad configuration or persona ends the run with a
 * ConfigError naming the key or the persona; a fatal model error (a wrong key) with a FatalError.
 *
 * @example
 * import { personaflow } from 'personaflow';
 *
 * const personas = [{ persona_id: 'p1', persona_features: { role: 'teacher' }, queries: [{ original_query: 'Plan a lesson on fractions' }] }];
 * for await (const result of personaflow({ personas, provider: 'sim', seed: 7 })) {
 *   if (result.kind === 'failure') console.error(result.failure.error.message);
 *   else console.log(JSON.stringify(result.interaction));
 * }
 * // {"interaction_id":"interaction_p1_q_...","persona_id":"p1",...,"num_turns":3,...}
 *
 * @param options the configuration, the personas, and the flags of `generate` that apply.
 * @returns the run, to subscribe to or iterate.
 */
export function personaflow(options: PersonaflowOptions): Generation {
  checkOptions(options);
  return new Generation(options);
}
