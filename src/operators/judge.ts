// judge: each finished conversation judged (checks, then a model's review), its verdict in metadata.quality.
import { catchError, defer, map, mergeMap, of, throwError, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';
import type { RetryListener, UsageListener } from '../chat.js';
import { describeError, runEndingError } from '../errors.js';
import type { NearDuplicates } from '../judge/duplicates.js';
import type { Finding } from '../judge/checks.js';
import type { Judge } from '../judge/judge.js';
import { RejectedAnswerError, type PromptCall } from '../prompts/ask.js';
import { addUsage, type Interaction, type Outcome, type UsageEntry } from '../types.js';
import { retryingCall } from './retryingCall.js';

export interface JudgeOperatorOptions {
  readonly judge: Judge;
  /** Conversations judged at once. */
  readonly concurrency: number;
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  /**
   * Near-duplicates among a persona's conversations, checked in the order outcomes arrive (`personaflow
   * judge`: file order). Left out inside generate, where that order is the order conversations finish in,
   * so which of two duplicates is rejected would depend on timing.
   */
  readonly duplicates?: NearDuplicates | undefined;
  readonly onRetry?: RetryListener;
  readonly onUsage?: UsageListener;
  readonly scheduler?: SchedulerLike;
  readonly now?: () => Date;
}

/**
 * Judges every interaction that comes through and passes failures on: the interaction goes on with
 * `metadata.quality` (verdict, reasons, the checks' findings, the model's scores and tags) and the judge's
 * tokens in its `usage`. A judge whose answers are rejected every time, or whose calls fail for good,
 * turns the conversation into a failure record (`error.kind: judge`): a conversation is never passed
 * unjudged. A bad key or a dead endpoint ends the run.
 *
 * ```
 * outcomes: --A--b!--C--|
 * result:   ----A'-b!---C'|      (A', C' with metadata.quality; b! a failure, passed on)
 * ```
 *
 * @example
 * outcomes$.pipe(judge({ judge: createJudge({ reviewer: { model, validationRetries: 2 }, template }), concurrency: 16, maxRetries: 3, retryDelayMs: 2000 }))
 */
export function judge(options: JudgeOperatorOptions): MonoTypeOperatorFunction<Outcome> {
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be a positive integer, got \`${String(options.concurrency)}\``);
  const now = options.now ?? (() => new Date());
  return mergeMap((outcome: Outcome) => {
    if (!outcome.ok) return of(outcome);
    const { interaction } = outcome;
    // Decided as it arrives, before any waiting: the order of arrival, not of completion.
    const extra = nearDuplicate(options.duplicates, interaction);
    return defer(() => {
      const usage: Record<string, UsageEntry> = { ...(interaction.metadata.usage as Record<string, UsageEntry>) };
      // As a conversation counts them: the attempts of the call that failed, or the answers asked for when
      // every one was rejected.
      let attempts = 1;
      let answers = 0;
      const retrying = retryingCall({
        maxRetries: options.maxRetries,
        retryDelayMs: options.retryDelayMs,
        scheduler: options.scheduler,
        onRetry: (module, error, note) => {
          attempts += 1;
          options.onRetry?.(module, error, note);
        },
        onUsage: (module, model, used, detail) => {
          addUsage(usage, module, used);
          options.onUsage?.(module, model, used, detail);
        },
      });
      const call: PromptCall = (model, request) =>
        defer(() => {
          attempts = 1;
          answers += 1;
          return retrying(model, request);
        });
      return options.judge.judge({ ...interaction, facts: factsOf(interaction) }, call, extra).pipe(
        map((quality): Outcome => ({ ...outcome, interaction: { ...interaction, metadata: { ...interaction.metadata, quality, usage } } })),
        catchError((error: unknown) => {
          const fatal = runEndingError(error, attempts);
          if (fatal !== undefined) return throwError(() => fatal);
          return of<Outcome>({ ok: false, failure: failureOf(interaction, usage, error, error instanceof RejectedAnswerError ? answers : attempts, now()), ...(outcome.task === undefined ? {} : { task: outcome.task }), ...(outcome.rejections === undefined ? {} : { rejections: outcome.rejections }) });
        }),
      );
    });
  }, options.concurrency);
}

/** What the user knew: the input's facts, and the details the noise left out of its messages (it may give them later). */
function factsOf(interaction: Interaction): string[] {
  const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);
  return [...strings(interaction.metadata.facts), ...strings(interaction.metadata.noise_dropped).map((detail) => `${detail} (left out of a noised message; the user knows it)`)];
}

function nearDuplicate(duplicates: NearDuplicates | undefined, interaction: Interaction): Finding[] {
  if (duplicates === undefined) return [];
  const opening = interaction.messages.findIndex((m) => m.role === 'user');
  const users = interaction.messages.filter((m, i) => m.role === 'user' && i > opening).map((m) => (typeof m.metadata.clean_version === 'string' ? m.metadata.clean_version : m.content));
  const found = duplicates.check(interaction.persona_id, interaction.interaction_id, users);
  return found === undefined ? [] : [{ tag: 'near_duplicate', turn: 0, detail: `nearly repeats ${found.of} (similarity ${found.similarity.toFixed(2)})` }];
}

function failureOf(interaction: Interaction, usage: Record<string, UsageEntry>, error: unknown, attempts: number, time: Date) {
  return {
    persona_id: interaction.persona_id,
    query_id: interaction.metadata.query_id,
    interaction_id: interaction.interaction_id,
    attempts,
    error: { kind: 'judge', message: describeError(error) },
    assistant_model: interaction.metadata.assistant_model,
    user_model: interaction.metadata.user_model,
    time: time.toISOString(),
    usage,
  };
}
