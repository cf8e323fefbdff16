// The judge's prompt: a rubric per side, the persona and the turns (clean and noisy) in, scores, tags and a verdict out.
import type { Features, InteractionMessage } from '../types.js';
import type { Checked } from './ask.js';
import { jsonObjectIn } from './json.js';
import { bundledTemplate, fill, formatPersona, type TemplateContract } from './template.js';

export const DEFAULT_JUDGE_TEMPLATE = bundledTemplate('judge');

/** The judge's placeholders: it must see the conversation. */
export const JUDGE_TEMPLATE = {
  placeholders: ['persona', 'facts', 'conversation', 'rubric', 'tags'],
  required: [['conversation']],
} as const satisfies TemplateContract;

/** The rubric's version, recorded with every verdict so that scores from different rubrics are not mixed. */
export const RUBRIC_VERSION = 'personaflow-judge-1';

/** One criterion: what it judges, and what a 4 and a 0 look like (0-4, as DataDesigner's judge columns). */
export interface Criterion {
  readonly name: string;
  readonly question: string;
  readonly four: string;
  readonly zero: string;
}

/** The user side (tau2-bench's review of the user simulator) and the assistant side, judged apart (PROMPTS.md 13). */
export const RUBRIC: { readonly user: readonly Criterion[]; readonly assistant: readonly Criterion[] } = {
  user: [
    { name: 'persona_adherence', question: 'Does every user message fit the persona: register, length, what it knows?', four: 'every message could only be this person', zero: 'it reads like someone else, or like an assistant' },
    { name: 'naturalness', question: 'Does the user write like a real person typing in a chat?', four: 'natural, one thing at a time, no formatting', zero: 'stilted, templated, lists, lavish thanks' },
    { name: 'ending', question: 'Does the user end when the request is resolved or refused, and not before?', four: 'it ends exactly when done (or goes on while something is open)', zero: 'it stops with its request open, or never stops though done' },
    { name: 'information', question: 'Does the user reveal details only when they matter or are asked, and invent none?', four: 'one piece at a time, only what it knows', zero: 'everything at once, or invented facts' },
    { name: 'consistency', question: 'Is the user consistent across turns?', four: 'no contradiction', zero: 'it contradicts itself or changes its request for no reason' },
  ],
  assistant: [
    { name: 'answered', question: 'Does the assistant answer what was asked, accurately?', four: 'every question answered well', zero: 'questions ignored or answered wrongly' },
    { name: 'clarification', question: 'Does the assistant ask when details it needs are missing?', four: 'it asks when needed (or nothing was missing)', zero: 'it guesses details it should have asked for' },
    { name: 'noise_handling', question: 'Does the assistant cope with the noisy messages (typos, vague or missing details)?', four: 'it understood or asked (or there was no noise)', zero: 'it misread the noisy messages' },
  ],
};

/** The tags a judge may give: tau2-bench's user-review tags and the assistant's defects. */
export const JUDGE_TAGS = [
  'hallucination',
  'revealed_info_early',
  'premature_termination',
  'missing_termination',
  'inconsistent_behavior',
  'persona_break',
  'assistant_voice',
  'unanswered',
  'no_clarification',
  'noise_misread',
  'refusal',
  'truncated',
] as const;
export type JudgeTag = (typeof JUDGE_TAGS)[number];

/** One criterion's score and the judge's reason for it. */
export interface Scored {
  readonly score: number;
  readonly reason: string;
}

/** What the judge said of a conversation. */
export interface Review {
  readonly user: Readonly<Record<string, Scored>>;
  readonly assistant: Readonly<Record<string, Scored>>;
  readonly tags: readonly JudgeTag[];
  readonly verdict: 'accept' | 'reject';
  readonly verdict_reason: string;
}

/**
 * The turns as the judge sees them: who said what, each noised user message followed by what it meant; no
 * model names, and no system message (an interaction line from a file may have one: a generation setting).
 */
export function renderConversation(messages: readonly Pick<InteractionMessage, 'role' | 'content' | 'metadata'>[]): string {
  return messages
    .filter((message) => message.role === 'user' || message.role === 'assistant')
    .map((message) => {
      const who = message.role === 'user' ? 'User' : 'Assistant';
      const clean = message.metadata.clean_version;
      const meant = message.role === 'user' && message.metadata.was_noised === true && typeof clean === 'string' && clean !== message.content ? ` [meant: ${clean}]` : '';
      return `${who}: ${message.content}${meant}`;
    })
    .join('\n');
}

const renderRubric = (): string =>
  [
    'User side:',
    ...RUBRIC.user.map((c) => `- ${c.name}: ${c.question} (4: ${c.four}; 0: ${c.zero})`),
    'Assistant side:',
    ...RUBRIC.assistant.map((c) => `- ${c.name}: ${c.question} (4: ${c.four}; 0: ${c.zero})`),
  ].join('\n');

/** Fills `{persona}`, `{facts}`, `{conversation}`, `{rubric}` and `{tags}`. The generation settings are never shown (PROMPTS.md 15). */
export function judgePrompt(template: string, values: { readonly persona: Features; readonly facts: readonly string[]; readonly messages: readonly Pick<InteractionMessage, 'role' | 'content' | 'metadata'>[] }): string {
  return fill<(typeof JUDGE_TEMPLATE.placeholders)[number]>(template, {
    persona: () => formatPersona(values.persona),
    facts: () => (values.facts.length === 0 ? '- (none given)' : values.facts.map((fact) => `- ${fact}`).join('\n')),
    conversation: () => renderConversation(values.messages),
    rubric: renderRubric,
    tags: () => JUDGE_TAGS.join(', '),
  });
}

function scoredSide(value: unknown, criteria: readonly Criterion[], side: string): Checked<Record<string, Scored>> {
  if (typeof value !== 'object' || value === null) return { ok: false, reason: `no "${side}" object` };
  const out: Record<string, Scored> = {};
  for (const { name } of criteria) {
    const entry = (value as Record<string, unknown>)[name];
    const score = typeof entry === 'object' && entry !== null ? (entry as { score?: unknown }).score : entry;
    if (typeof score !== 'number' || !Number.isInteger(score) || score < 0 || score > 4) return { ok: false, reason: `${side}.${name}: a score from 0 to 4 is needed` };
    const reason = typeof entry === 'object' && entry !== null && typeof (entry as { reason?: unknown }).reason === 'string' ? ((entry as { reason: string }).reason) : '';
    out[name] = { score, reason };
  }
  return { ok: true, value: out };
}

/** Reads a judge's answer: every criterion scored 0-4, tags from the list (others dropped), a verdict; else why not. */
export function parseJudgeAnswer(content: string): Checked<Review> {
  const json = jsonObjectIn(content);
  if (json === undefined) return { ok: false, reason: 'no JSON object' };
  const user = scoredSide(json.user, RUBRIC.user, 'user');
  if (!user.ok) return user;
  const assistant = scoredSide(json.assistant, RUBRIC.assistant, 'assistant');
  if (!assistant.ok) return assistant;
  if (json.verdict !== 'accept' && json.verdict !== 'reject') return { ok: false, reason: 'verdict must be "accept" or "reject"' };
  const tags = Array.isArray(json.tags) ? json.tags.filter((tag): tag is JudgeTag => typeof tag === 'string' && (JUDGE_TAGS as readonly string[]).includes(tag)) : [];
  return { ok: true, value: { user: user.value, assistant: assistant.value, tags: [...new Set(tags)], verdict: json.verdict, verdict_reason: typeof json.verdict_reason === 'string' ? json.verdict_reason : '' } };
}
