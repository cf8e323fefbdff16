// The semantic distractor's prompt: one layer's template filled with the persona, the text and the strategies; its answer read and checked.
import type { Layer, StrategyFile } from '../config/schema.js';
import { holds, protectedTokens } from '../noise/slots.js';
import type { Features } from '../types.js';
import { cleanRewrite, normalise, rewriteProblem } from './checks.js';
import { jsonIn, stripFence } from './json.js';
import { bundledTemplate, fill, formatPersona, type TemplateContract } from './template.js';

/** The bundled template of a layer (config/prompts/distractor_<layer>.txt). */
export const distractorTemplate = (layer: Layer): string => bundledTemplate(`distractor_${layer}`);

/** A layer's placeholders: the text to noise must be in it. */
export const DISTRACTOR_TEMPLATE = { placeholders: ['persona', 'text', 'layer', 'strategies', 'noise_level'], required: [['text']] } as const satisfies TemplateContract;

/** What the model reports about the meaning of the text it noised (PersonaGym's extracted_semantics). */
export interface ExtractedSemantics {
  readonly intent: string;
  readonly slots: Readonly<Record<string, unknown>>;
  readonly original_text: string;
  readonly compressed_text: string;
  readonly confidence: number;
}

/**
 * Fills a layer's template: `{persona}`, `{text}`, `{layer}`, `{strategies}` as a numbered list with their
 * descriptions, and `{noise_level}`, how many slips this person makes (`noiseLevel`).
 */
export function distractorPrompt(template: string, values: { readonly persona: Features; readonly text: string; readonly layer: Layer; readonly strategies: readonly string[]; readonly table: StrategyFile['strategies'][Layer]; readonly noiseLevel?: string }): string {
  const table = values.table ?? {};
  return fill<(typeof DISTRACTOR_TEMPLATE.placeholders)[number]>(template, {
    persona: () => formatPersona(values.persona),
    text: () => values.text,
    layer: () => values.layer,
    noise_level: () => values.noiseLevel ?? 'light: one or two small slips',
    strategies: () => values.strategies.map((name, i) => `${i + 1}. **${name}**: ${table[name]?.description ?? name.replace(/_/g, ' ')}`).join('\n'),
  });
}

export type NoiseAnswer =
  | {
      readonly ok: true;
      readonly noisyText: string;
      readonly applied: readonly string[] | undefined;
      readonly semantics: ExtractedSemantics | null;
      /** `slots_dropped` as the model wrote it (names of its slots, or values). */
      readonly slotsDropped: readonly string[];
      /** The dropped details as values of the input: the dropped slots' values, the protected tokens they cover. */
      readonly dropped: readonly string[];
      /** What the noisy text now asks: the model's `means`, else the noisy text (heavier layers); the input (surface noise). */
      readonly means: string;
    }
  | { readonly ok: false; readonly reason: string };

const stringValue = (value: unknown): string | undefined => (typeof value === 'string' ? value.trim() : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined);
const list = (items: readonly string[]): string => items.slice(0, 5).join(', ') + (items.length > 5 ? ', ...' : '');

/**
 * Reads and checks the model's answer: JSON as the bundled templates ask, or plain text (PersonaGym's
 * own templates ask for the noisy text alone). Rejected: no text, the input unchanged, a refusal, an
 * explanation or a wrapper instead of a message, a text far longer than the input; and a lost detail:
 * every slot the model reported with a value from the input, and every protected token of the input
 * (`keep`, default `protectedTokens(input)`), must be in the noisy text (ignoring case and curly quotes),
 * unless, under the heavier layers, the model listed it in `slots_dropped` (by its slot's name or its
 * value). Surface noise may drop nothing.
 */
export function parseNoiseAnswer(content: string, input: string, layer: Layer, keep: readonly string[] = protectedTokens(input)): NoiseAnswer {
  let noisy: string | undefined;
  let applied: string[] | undefined;
  let semantics: ExtractedSemantics | null = null;
  let slotsDropped: string[] = [];
  let slots: Record<string, unknown> = {};
  let means: string | undefined;
  const found = jsonIn(content);
  if ('object' in found) {
    const parsed = found.object;
    if (typeof parsed.noisy_text !== 'string') return { ok: false, reason: 'JSON without a "noisy_text" string' };
    noisy = parsed.noisy_text;
    if (Array.isArray(parsed.applied_strategies)) applied = parsed.applied_strategies.filter((s): s is string => typeof s === 'string');
    if (Array.isArray(parsed.slots_dropped)) slotsDropped = parsed.slots_dropped.filter((s): s is string => typeof s === 'string');
    if (typeof parsed.means === 'string' && parsed.means.trim() !== '') means = parsed.means.trim();
    slots = typeof parsed.slots === 'object' && parsed.slots !== null && !Array.isArray(parsed.slots) ? (parsed.slots as Record<string, unknown>) : {};
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
  const lost = lostDetails(noisy, input, layer, keep, slots, slotsDropped);
  if (!lost.ok) return lost;
  return { ok: true, noisyText: noisy, applied, semantics, slotsDropped, dropped: lost.dropped, means: layer === 'surface_noise' ? input : (means ?? noisy) };
}

/** The details of `input` missing from `noisy`: allowed (and returned as values) only when reported as dropped under a heavier layer. */
function lostDetails(noisy: string, input: string, layer: Layer, keep: readonly string[], slots: Readonly<Record<string, unknown>>, slotsDropped: readonly string[]): { ok: true; dropped: string[] } | { ok: false; reason: string } {
  const named = new Set(slotsDropped.map((name) => name.trim().toLowerCase()));
  // The values of the reported slots that come from the input; dropped when listed by name or by value.
  const reported = Object.entries(slots).flatMap(([name, value]) => {
    const text = stringValue(value);
    return text === undefined || text === '' || !holds(input, text, true) ? [] : [{ text, dropped: named.has(name.trim().toLowerCase()) || named.has(text.toLowerCase()) }];
  });
  // A detail the model says it dropped and that is still there was not dropped.
  const droppedValues = [...reported.filter((slot) => slot.dropped).map((slot) => slot.text), ...slotsDropped.filter((value) => holds(input, value.trim(), true) && !reported.some((slot) => slot.text.toLowerCase() === value.trim().toLowerCase())).map((value) => value.trim())].filter((value) => !holds(noisy, value, true));
  if (layer === 'surface_noise' && droppedValues.length > 0) return { ok: false, reason: `surface noise dropped a detail (${list(droppedValues)}): keep every detail as written` };
  const changed = reported.filter((slot) => !slot.dropped && !holds(noisy, slot.text, true)).map((slot) => slot.text);
  const covered = (token: string): boolean => droppedValues.some((value) => holds(value, token, true) || holds(token, value, true));
  const unreported = keep.filter((token) => !holds(noisy, token, true) && !covered(token));
  const missing = [...new Set([...changed, ...unreported])];
  if (missing.length > 0) {
    return {
      ok: false,
      reason: layer === 'surface_noise' ? `a detail changed under surface noise (${list(missing)}): keep it exactly as written` : `a detail changed or left out without being reported (${list(missing)}): keep it as written, or give it in "slots" and list it in "slots_dropped"`,
    };
  }
  const dropped = [...new Set([...droppedValues, ...keep.filter((token) => !holds(noisy, token, true) && !droppedValues.some((value) => holds(value, token, true)))])];
  return { ok: true, dropped };
}
