// A persona's features as concrete writing rules for the simulated user: length in words, register, knowledge, habits.
import type { Features } from '../types.js';

/** The most words a message of each `query_length_pref` should have. */
export const LENGTH_BANDS: Readonly<Record<string, number>> = { very_short: 15, short: 35, medium: 80, long: 160 };

/** Above this many words a message is too long for anyone who did not ask for long ones. */
export const UNBOUNDED_WORDS = 200;

/** One feature and what it makes the user do. */
export interface FeatureRule {
  /** The feature as the persona file names it (`communication_style`). */
  readonly feature: string;
  readonly value: string;
  /** What it means for each message, in words the model can follow. */
  readonly rule: string;
}

/** What the persona's features ask of every message. */
export interface WritingRules {
  /** The most words a message should have, from `query_length_pref` (undefined: none given). */
  readonly maxWords: number | undefined;
  readonly rules: readonly FeatureRule[];
  /** A message this user would write, and one it would not, for the same question. */
  readonly example: { readonly write: string; readonly not: string };
  /** Two or three short traits, restated in the reminder every turn. */
  readonly traits: readonly string[];
}

type Register = 'casual' | 'terse' | 'formal' | 'verbose' | 'neutral';
type Knowledge = 'novice' | 'intermediate' | 'expert' | undefined;

const norm = (text: string): string => text.trim().toLowerCase().replace(/[\s-]+/g, '_');
const valueText = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

/** Which feature a key is, whatever a persona file calls it. */
const KINDS: ReadonlyArray<readonly [RegExp, 'length' | 'style' | 'knowledge' | 'age' | 'role' | 'language']> = [
  [/length|verbosity/, 'length'],
  [/communication|style|tone|register|formality/, 'style'],
  [/proficiency|expertise|skill|knowledge|tech|experience|literacy/, 'knowledge'],
  [/^age|age_/, 'age'],
  [/role|occupation|profession|job/, 'role'],
  [/language|english|native/, 'language'],
];

const kindOf = (key: string): (typeof KINDS)[number][1] | undefined => KINDS.find(([pattern]) => pattern.test(norm(key)))?.[1];

function registerOf(style: string): Register {
  if (/terse|concise|blunt|minimal|brief/.test(style)) return 'terse';
  if (/formal|polite|professional|academic/.test(style)) return 'formal';
  if (/verbose|detailed|chatty|elaborate|storytell/.test(style)) return 'verbose';
  if (/casual|informal|friendly|relaxed|colloquial|slang/.test(style)) return 'casual';
  return 'neutral';
}

function knowledgeOf(level: string): Knowledge {
  if (/novice|beginner|low|basic|none|non_technical|newbie/.test(level)) return 'novice';
  if (/expert|advanced|high|senior|professional/.test(level)) return 'expert';
  if (/intermediate|medium|moderate|some/.test(level)) return 'intermediate';
  return undefined;
}

const STYLE_RULES: Readonly<Record<Register, string>> = {
  casual: 'casual: lowercase is fine, contractions and everyday words, no greetings or sign-offs',
  terse: 'terse: a few words, often no full sentence and no punctuation',
  formal: 'formal: complete, polite sentences with correct spelling; no slang',
  verbose: 'detailed: you give context and your reasons in several sentences',
  neutral: 'plain and direct, as people type in a chat',
};

const KNOWLEDGE_RULES: Readonly<Record<Exclude<Knowledge, undefined>, string>> = {
  novice: 'no technical terms you would not know: describe what you see and what you want instead',
  intermediate: 'you know the common terms, not the fine details',
  expert: 'you use the precise technical terms and skip the basics',
};

function ageRule(age: string): string {
  if (/u18|under|teen|^1[0-7]|<\s*18|child|kid/.test(age)) return 'young: short, informal, slang and small typos come naturally';
  if (/55|60|65|70|senior|retire|older|elder/.test(age)) return 'older: full words and courteous phrasing, no slang or emoji';
  return 'write as people of this age do';
}

function languageRule(language: string): string {
  if (/native|fluent|c2/.test(language) && !/non/.test(language)) return 'you write as a native speaker';
  return 'English is not your first language: simple sentences, small grammar slips are natural, now and then a word of your own language';
}

const EXAMPLES: Readonly<Record<Register, { write: string; not: string }>> = {
  casual: { write: 'ok but what about csv', not: 'Thank you for the detailed explanation! Could you also explain how this works with CSV files?' },
  terse: { write: 'csv too?', not: 'I was wondering whether the same approach would also work for CSV files, if that is possible.' },
  formal: { write: 'Could you clarify whether the same approach works for CSV files?', not: 'ok csv?? same thing' },
  verbose: {
    write: 'That part worked. The files our supplier sends are CSVs though, sometimes with semicolons instead of commas, so does the same approach hold or do I convert them first?',
    not: 'csv?',
  },
  neutral: { write: 'does that also work for csv files?', not: 'Thank you so much for this detailed explanation! Could you also kindly explain the CSV case?' },
};

/**
 * Turns a persona's features into rules for each message: a length band in words (`query_length_pref`,
 * else the style), the register (`communication_style`), what the user knows (`tech_proficiency`,
 * `expertise`...), how age and language show, and for any other feature that it shapes what the user
 * asks and how. Keys are matched loosely (`communication_style`, `style`, `tone`), values too.
 *
 * @example
 * writingRules({ communication_style: 'casual', query_length_pref: 'very_short' }).maxWords // 15
 */
export function writingRules(features: Features): WritingRules {
  const rules: FeatureRule[] = [];
  let maxWords: number | undefined;
  let register: Register = 'neutral';
  let knowledge: Knowledge;
  for (const [feature, raw] of Object.entries(features)) {
    const value = valueText(raw);
    const v = norm(value);
    const kind = kindOf(feature);
    let rule: string;
    if (kind === 'length') {
      maxWords = LENGTH_BANDS[v] ?? maxWords;
      rule = maxWords === undefined ? `messages of this length: ${value}` : `at most ${maxWords} words a message, most of them fewer`;
    } else if (kind === 'style') {
      register = registerOf(v);
      rule = STYLE_RULES[register];
    } else if (kind === 'knowledge') {
      knowledge = knowledgeOf(v);
      rule = knowledge === undefined ? `you know as much about technology as this says: ${value}` : KNOWLEDGE_RULES[knowledge];
    } else if (kind === 'age') rule = ageRule(v);
    else if (kind === 'role') rule = `you ask from your own situation as a ${value}, and mention it only when it matters`;
    else if (kind === 'language') rule = languageRule(v);
    else rule = 'let it shape what you ask about and how you put it';
    rules.push({ feature, value, rule });
  }
  const traits = [
    ...(maxWords === undefined ? [] : [`under ${maxWords} words`]),
    ...(register === 'neutral' ? [] : [register === 'verbose' ? 'detailed' : register]),
    ...(knowledge === undefined ? [] : [knowledge === 'novice' ? 'no jargon' : knowledge === 'expert' ? 'precise terms' : 'common terms only']),
  ].slice(0, 3);
  return { maxWords, rules, example: EXAMPLES[register], traits };
}

/** The rules as prompt lines: `- Communication Style (casual): casual: lowercase is fine, ...`, then the contrast example. */
export function renderWritingRules(rules: WritingRules): string {
  const label = (key: string): string => key.replace(/_/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
  const lines = rules.rules.map(({ feature, value, rule }) => `- ${label(feature)} (${value}): ${rule}.`);
  if (lines.length === 0) lines.push('- (no features given): write as an ordinary person would, briefly.');
  return [...lines, `For example, you would write "${rules.example.write}", NOT "${rules.example.not}".`].join('\n');
}

/** Words in a text, as people count them. */
export const wordCount = (text: string): number => (text.trim() === '' ? 0 : text.trim().split(/\s+/).length);
