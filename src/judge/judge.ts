// The judge: deterministic checks, then a model's review against a rubric, then one verdict per conversation.
import { Observable, defer, map, of } from 'rxjs';
import type { ModelRef } from '../chat.js';
import { askChecked, type PromptCall, type PromptModel } from '../prompts/ask.js';
import { RUBRIC_VERSION, judgePrompt, parseJudgeAnswer, type Review } from '../prompts/judge.js';
import { CHECK_TAGS, deterministicChecks, type Checkable, type Finding } from './checks.js';

/** What `metadata.quality` records. */
export interface Quality {
  readonly verdict: 'accept' | 'reject';
  /**
   * Why a conversation was rejected (empty when accepted): check and review tags, `user.<criterion>` /
   * `assistant.<criterion>` for a score below the minimum, `verdict` for the judge's own reject.
   */
  readonly reasons: readonly string[];
  /** Tags of the deterministic checks, with what each found. */
  readonly checks: readonly Finding[];
  /** The model's scores (0-4, with a reason each), tags and verdict; null when only the checks ran. */
  readonly review: (Review & { readonly judge_model: ModelRef }) | null;
  readonly rubric_version: string;
}

export interface JudgeOptions {
  /** The model that reviews each conversation against the rubric; without one, the deterministic checks only. */
  readonly reviewer?: PromptModel | undefined;
  /** The judge prompt (config/prompts/judge.txt). */
  readonly template: string;
  /** A criterion scored below this rejects the conversation. Default 2. */
  readonly minScore?: number;
  /** Check tags and review tags that reject a conversation. Default: every check tag, and the review's own verdict. */
  readonly rejectTags?: readonly string[];
  /** Fewer exchanges than this is a `too_short` finding (conversations read from a file). */
  readonly minTurns?: number;
}

export interface Judge {
  /**
   * Judges one conversation; extra findings (a near-duplicate, known only to the caller) are added to the
   * checks. Model errors pass through (the caller's `call` retries them); answers rejected every time error
   * with a RejectedAnswerError: a conversation is never passed unjudged.
   */
  judge(conversation: Checkable & { readonly facts?: readonly string[] }, call: PromptCall, extra?: readonly Finding[]): Observable<Quality>;
  /** The reviewing model; undefined when only the checks run. */
  readonly model: ModelRef | undefined;
}

/** A judge from its options: PROMPTS.md 13-17 (both sides apart, a rubric with a reason before each score, JSON, re-asked when bad). */
export function createJudge(options: JudgeOptions): Judge {
  const minScore = options.minScore ?? 2;
  const rejectTags = new Set<string>(options.rejectTags ?? CHECK_TAGS);
  const { reviewer } = options;
  const model: ModelRef | undefined = reviewer === undefined ? undefined : { provider: reviewer.model.provider, model: reviewer.model.model };
  return {
    model,
    judge: (conversation, call, extra = []) =>
      defer(() => {
        const checks = [...deterministicChecks(conversation, { minTurns: options.minTurns }), ...extra];
        const fromChecks = [...new Set(checks.map((c) => c.tag).filter((tag) => rejectTags.has(tag)))];
        const verdictOf = (review: Review | undefined): Quality => {
          const reasons: string[] = [...fromChecks];
          if (review !== undefined) {
            for (const [side, scores] of [['user', review.user], ['assistant', review.assistant]] as const) {
              for (const [name, { score }] of Object.entries(scores)) if (score < minScore) reasons.push(`${side}.${name}`);
            }
            for (const tag of review.tags) if (rejectTags.has(tag)) reasons.push(tag);
            if (review.verdict === 'reject') reasons.push('verdict');
          }
          return { verdict: reasons.length === 0 ? 'accept' : 'reject', reasons: [...new Set(reasons)], checks, review: review === undefined || model === undefined ? null : { ...review, judge_model: model }, rubric_version: RUBRIC_VERSION };
        };
        if (reviewer === undefined) return of(verdictOf(undefined));
        const prompt = judgePrompt(options.template, { persona: conversation.persona_features ?? {}, facts: conversation.facts ?? [], messages: conversation.messages });
        const hints = { judge: { checks: checks.map((c) => c.tag), key: conversation.messages.map((m) => m.content).join('\n').slice(0, 2000) } };
        return askChecked<Review>(reviewer, { module: 'judge', prompt, hints, again: 'Answer again with the JSON object only, every criterion scored 0 to 4, and a verdict.' }, call, (content) => parseJudgeAnswer(content)).pipe(map((review) => verdictOf(review)));
      }),
  };
}
