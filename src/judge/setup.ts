// From configuration to a Judge: the `judge` section, its prompt template, its model.
import type { Config } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { ModelSettings } from '../models/build.js';
import { DEFAULT_JUDGE_TEMPLATE, JUDGE_TAGS, JUDGE_TEMPLATE } from '../prompts/judge.js';
import { loadTemplate } from '../prompts/template.js';
import { CHECK_TAGS } from './checks.js';
import { createJudge, type Judge } from './judge.js';

/** Every tag a conversation can be given: the checks' and the review's. */
export const ALL_TAGS: readonly string[] = [...CHECK_TAGS, ...JUDGE_TAGS];

export interface JudgeSetup {
  /** The judge's model; needed unless `judge.review` is false. */
  readonly model: ModelSettings | undefined;
  /** Fewer exchanges than this is a `too_short` finding (`personaflow judge --min-turns`). */
  readonly minTurns?: number | undefined;
}

/** The judge the `judge` section describes; a tag in `reject_tags` that no check or review gives is an error. */
export async function setUpJudge(config: Config, baseDir: string, setup: JudgeSetup): Promise<Judge> {
  const section = config.judge;
  (section.reject_tags ?? []).forEach((tag, index) => {
    if (!ALL_TAGS.includes(tag)) throw new ConfigError(`judge.reject_tags[${index}]: unknown tag \`${tag}\`; known: ${ALL_TAGS.join(', ')}`);
  });
  const template = await loadTemplate(section.template, baseDir, 'judge.template', DEFAULT_JUDGE_TEMPLATE, JUDGE_TEMPLATE);
  const { model } = setup;
  if (section.review && model === undefined) throw new TypeError('setUpJudge: a reviewing judge needs its model');
  return createJudge({
    reviewer: !section.review || model === undefined ? undefined : { ...model, validationRetries: section.validation_retries },
    template,
    minScore: section.min_score,
    ...(section.reject_tags === undefined ? {} : { rejectTags: section.reject_tags }),
    minTurns: setup.minTurns,
  });
}
