// The semantic distractor's prompt: one layer's template filled with the persona, the text and the strategies; its answer read and checked.
import type { Layer, StrategyFile } from '../config/schema.js';
import type { Features } from '../types.js';
import { cleanRewrite, normalise, rewriteProblem } from './checks.js';
import { jsonIn, stripFence } from './json.js';
import { bundledTemplate, fill, formatPersona, type TemplateContract } from './template.js';

/** The bundled template of a layer (config/prompts/distractor_<layer>.txt). */
export const distractorTemplate = (layer: Layer): string => bundledTemplate(`distractor_${layer}`);

/** A layer's placeholders: the text to noise must be in it. */
export const DISTRACTOR_TEMPLATE = { placeholders: ['persona', 'text', 'layer', 'strategies'], required: [['text']] } as const satisfies TemplateContract;

/** What the model reports about the meaning of the text it noised (PersonaGym's extracted_semantics). */
export interface ExtractedSemantics {
  readonly intent: string;
  readonly slots: Readonly<Record<string, unknown>>;
  readonly original_text: string;
  readonly compressed_text: string;
  readonly confidence: number;
}

/** Fills a layer's template: `{persona}`, `{text}`, `{layer}`, and `{strategies}` as a numbered list with their descriptions. */
export function distractorPrompt(template: string, values: { readonly persona: Features; readonly text: string; readonly layer: Layer; readonly strategies: readonly string[]; readonly table: StrategyFile['strategies'][Layer] }): string {
  const table = values.table ?? {};
  return fill<(typeof DISTRACTOR_TEMPLATE.placeholders)[number]>(template, {
    persona: () => formatPersona(values.persona),
    text: () => values.text,
    layer: () => values.layer,
    strategies: () => values.strategies.map((name, i) => `${i + 1}. **${name}**: ${table[name]?.description ?? name.replace(/_/g, ' ')}`).join('\n'),
  });
}

export type NoiseAnswer =
  | { readonly ok: true; readonly noisyText: string; readonly applied: readonly string[] | undefined; readonly semantics: ExtractedSemantics | null; readonly slotsDropped: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads and checks the model's answer: JSON as the bundled templates ask, or plain text (PersonaGym's
 * own templates ask for the noisy text alone). Rejected: no text, the input unchanged, a refusal, an
 * explanation or a wrapper instead of a message, a text far longer than the input, and, for surface
 * noise, a number of the input that went missing (a slot value changed).
 */
export function parseNoiseAnswer(content: string, input: string, layer: Layer): NoiseAnswer {
  let noisy: string | undefined;
  let applied: string[] | undefined;
  let semantics: ExtractedSemantics | null = null;
  let slotsDropped: string[] = [];
  const found = jsonIn(content);
  if ('object' in found) {
    const parsed = found.object;
    if (typeof parsed.noisy_text !== 'string') return { ok: false, reason: 'JSON without a "noisy_text" string' };
    noisy = parsed.noisy_text;
    if (Array.isArray(parsed.applied_strategies)) applied = parsed.applied_strategies.filter((s): s is string => typeof s === 'string');
    if (Array.isArray(parsed.slots_dropped)) slotsDropped = parsed.slots_dropped.filter((s): s is string => typeof s === 'string');
    const slots = typeof parsed.slots === 'object' && parsed.slots !== null && !Array.isArray(parsed.slots) ? (parsed.slots as Record<string, unknown>) : {};
    if (typeof parsed.intent === 'string' || Object.keys(slots).length > 0) {
      semantics = {
        intent: typeof parsed.intent === 'string' ? parsed.intent : 'unknown',
        slots,
        original_text: input,
        compressed_text: typeof parsed.compressed_text === 'string' ? parsed.compressed_text : input,
        confidence: 1,
      };
    }
  } else if (found.start === 0) {
    // An answer that opens as JSON and is not: broken, not a message.
    return { ok: false, reason: found.problem === 'cut' ? 'JSON cut off (no closing brace)' : 'invalid JSON' };
  }
  noisy = cleanRewrite(noisy ?? stripFence(content));
  if (noisy === '') return { ok: false, reason: 'empty text' };
  if (normalise(noisy) === normalise(input)) return { ok: false, reason: 'identical to the input' };
  const problem = rewriteProblem(noisy, input);
  if (problem !== undefined) return { ok: false, reason: problem };
  if (noisy.length > input.length * 3 + 80) return { ok: false, reason: 'far longer than the input' };
  if (layer === 'surface_noise') {
    const lost = (input.match(/\d+(?:[.,:]\d+)*/g) ?? []).find((number) => !noisy.includes(number));
    if (lost !== undefined) return { ok: false, reason: `a detail changed under surface noise (${lost})` };
  }
  return { ok: true, noisyText: noisy, applied, semantics, slotsDropped };
}
