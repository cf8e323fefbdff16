// How many slips a persona makes: a formal expert types carefully, a casual teenager does not.
import type { Features } from '../types.js';

/** Words in a persona's features and what each does to the rate of slips (multiplied together). */
const FACTORS: ReadonlyArray<readonly [RegExp, number]> = [
  [/\b(?:casual|informal|colloquial|chatty|slang|playful|friendly|relaxed)\b/, 1.4],
  [/\b(?:formal|professional|polite|academic|precise|meticulous|careful)\b/, 0.5],
  [/\b(?:u18|under ?18|teen(?:ager)?s?|1[3-7]|13-17|child|kid)\b/, 1.3],
  [/\b(?:18-24|young|student)\b/, 1.15],
  [/\b(?:expert|advanced|senior|specialist)\b/, 0.7],
  [/\b(?:beginner|novice|non[ -]?native|learner)\b/, 1.2],
  [/\b(?:rushed|hurried|in a rush|mobile|phone)\b/, 1.2],
];

/** The lowest and highest rate: even a careful typist slips now and then; nobody garbles every word. */
export const SLIP_RANGE = [0.25, 2] as const;

/**
 * The persona's rate of slips relative to an average user (1): the product of the factors its features
 * match (communication style, age band, proficiency, situation), within SLIP_RANGE. Rule noise multiplies
 * its probabilities and rates by it; the semantic prompt turns it into words (`noiseLevel`).
 *
 * @example
 * slipRate({ communication_style: 'formal', tech_proficiency: 'expert' }) // 0.35
 * slipRate({ communication_style: 'casual', age_band: 'u18' })            // 1.82
 */
export function slipRate(persona: Features): number {
  const words = Object.values(persona)
    .map((value) => (typeof value === 'string' ? value : JSON.stringify(value)))
    .join(' ')
    .toLowerCase()
    .replace(/_/g, ' ');
  let rate = 1;
  for (const [pattern, factor] of FACTORS) if (pattern.test(words)) rate *= factor;
  return Math.min(SLIP_RANGE[1], Math.max(SLIP_RANGE[0], Math.round(rate * 1000) / 1000));
}

/** The rate in words, for a prompt that asks a model for the noise. */
export function noiseLevel(rate: number): string {
  if (rate < 0.6) return 'very light: at most one small slip; this person types carefully and uses no slang or emoji';
  if (rate < 1.2) return 'light: one or two small slips';
  return 'casual: a few slips, as someone typing fast on a phone';
}
