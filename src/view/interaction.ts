// One interaction line read for the viewer: its facets (what filters and the dashboard count), its list row, and its conversation view.
import { noiseOfTurns } from '../export/statistics.js';
import type { InteractionInput } from '../export/samples.js';
import { priceOf, type PriceTable } from '../sinks/usage.js';
import type { ConversationView, MessageView, RejectionView, Row, UsageRow } from './api.js';
import { redact } from './redact.js';

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const finite = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

/** Longest feature value kept as a filter value or a chart label, in characters. */
export const MAX_VALUE_CHARS = 120;
/** Characters of the first user message in a list row. */
export const PREVIEW_CHARS = 160;

/** A feature value as a string: strings as they are, anything else as JSON, cut to MAX_VALUE_CHARS. */
export function featureValue(value: unknown): string {
  const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS - 1)}…` : s;
}

/** `provider/model` of a `{provider, model}` record, or `?`. */
export function modelName(ref: unknown): string {
  if (!isRecord(ref)) return '?';
  const model = text(ref.model) ?? '?';
  const provider = text(ref.provider);
  return provider === null ? model : `${provider}/${model}`;
}

/**
 * The judge's record (`metadata.quality`, written by `--judge` and `personaflow judge`): its verdict, the
 * review's scores as `user.<criterion>` / `assistant.<criterion>`, and as tags the checks' findings, the
 * review's tags and the reasons it was rejected. Records of other tools in the usual shapes (`label`,
 * `pass`, `scores`) are read too.
 */
export function qualityOf(metadata: Record<string, unknown>): { verdict: string | null; scores: [string, number][]; tags: string[] } | null {
  const quality = metadata.quality;
  if (!isRecord(quality)) return null;
  let verdict = text(quality.verdict) ?? text(quality.label);
  if (verdict === null && typeof quality.pass === 'boolean') verdict = quality.pass ? 'pass' : 'fail';
  if (verdict === null && typeof quality.passed === 'boolean') verdict = quality.passed ? 'pass' : 'fail';
  const scores: [string, number][] = [];
  const scored = (from: Record<string, unknown>, prefix: string): void => {
    for (const [name, value] of Object.entries(from)) {
      const score = finite(value) ?? (isRecord(value) ? finite(value.score) ?? finite(value.value) : null);
      if (score !== null) scores.push([`${prefix}${name}`, score]);
    }
  };
  const review = isRecord(quality.review) ? quality.review : null;
  if (review !== null) {
    for (const side of ['user', 'assistant']) if (isRecord(review[side])) scored(review[side], `${side}.`);
  } else scored(isRecord(quality.scores) ? quality.scores : quality, '');
  const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);
  const findings = Array.isArray(quality.checks) ? quality.checks.flatMap((finding) => (isRecord(finding) && typeof finding.tag === 'string' ? [finding.tag] : [])) : [];
  const tags = [...new Set([...strings(quality.tags), ...findings, ...strings(review?.tags), ...strings(quality.reasons)])];
  return { verdict, scores, tags };
}

/** What the filters and the dashboard need of one interaction: small, and nothing of its texts but word counts. */
export interface Facets {
  readonly id: string;
  readonly persona: string;
  readonly queryId: string;
  readonly features: readonly (readonly [string, string])[];
  readonly model: string;
  readonly endReason: string | null;
  /** Guard reasons with a count above zero (`metadata.guard`). */
  readonly guard: readonly (readonly [string, number])[];
  readonly noised: boolean;
  /** Strategies of each noised user turn. */
  readonly noise: readonly string[];
  readonly noisedTurns: number;
  readonly round: number | null;
  readonly verdict: string | null;
  readonly scores: readonly (readonly [string, number])[];
  readonly turns: number;
  /** Words of each user turn. */
  readonly userWords: readonly number[];
}

const words = (s: string): number => (s.match(/\S+/g) ?? []).length;

interface Message {
  readonly role: string;
  readonly content: string;
  readonly metadata: Record<string, unknown> | null;
}

function messagesOf(line: Record<string, unknown>): Message[] {
  if (!Array.isArray(line.messages)) return [];
  return line.messages.filter(isRecord).map((m) => ({ role: text(m.role) ?? '?', content: text(m.content) ?? (m.content === undefined ? '' : JSON.stringify(m.content)), metadata: isRecord(m.metadata) ? m.metadata : null }));
}

const wasNoised = (m: Message): boolean => (typeof m.metadata?.was_noised === 'boolean' ? m.metadata.was_noised : typeof m.metadata?.clean_version === 'string' && m.metadata.clean_version !== m.content);

function featuresOf(line: Record<string, unknown>): [string, string][] {
  const features = isRecord(line.persona_features) ? line.persona_features : isRecord(line.features) ? line.features : {};
  return Object.entries(features).map(([key, value]) => [key, featureValue(value)]);
}

/** How each noised user turn was noised (export's reading of the metadata), for messages that can be read. */
function noiseByTurn(line: Record<string, unknown>, messages: readonly Message[]): string[][] {
  try {
    const input = { ...line, messages: messages.filter((m) => m.role === 'user' || m.role === 'assistant' || m.role === 'system'), metadata: isRecord(line.metadata) ? line.metadata : {} } as unknown as InteractionInput;
    return noiseOfTurns(input).map((turn) => (turn.strategies.length > 0 ? [...turn.strategies] : [turn.layer]));
  } catch {
    return [];
  }
}

const roundOf = (metadata: Record<string, unknown>): number | null => finite(metadata.supplement_round);
const turnsOf = (line: Record<string, unknown>, messages: readonly Message[]): number => finite(line.num_turns) ?? messages.filter((m) => m.role === 'assistant').length;

/** The facets of a parsed interaction line; undefined when it is not an interaction (no id or persona). */
export function facetsOf(line: unknown): Facets | undefined {
  if (!isRecord(line)) return undefined;
  const id = text(line.interaction_id);
  const persona = text(line.persona_id);
  if (id === null || persona === null) return undefined;
  const metadata = isRecord(line.metadata) ? line.metadata : {};
  const messages = messagesOf(line);
  const users = messages.filter((m) => m.role === 'user');
  const noise = noiseByTurn(line, messages).flat();
  const quality = qualityOf(metadata);
  const guard = isRecord(metadata.guard) ? Object.entries(metadata.guard).filter((entry): entry is [string, number] => typeof entry[1] === 'number' && entry[1] > 0) : [];
  const noisedTurns = users.filter(wasNoised).length;
  return {
    id,
    persona,
    queryId: text(metadata.query_id) ?? '',
    features: featuresOf(line),
    model: modelName(metadata.assistant_model),
    endReason: text(metadata.end_reason),
    guard,
    noised: noisedTurns > 0,
    noise,
    noisedTurns,
    round: roundOf(metadata),
    verdict: quality?.verdict ?? null,
    scores: quality?.scores ?? [],
    turns: turnsOf(line, messages),
    userWords: users.map((m) => words(m.content)),
  };
}

const preview = (s: string): string => (s.length > PREVIEW_CHARS ? `${s.slice(0, PREVIEW_CHARS - 1)}…` : s);

/** The list row of a parsed interaction line at byte offset `at`, number `n`; `reasons` are its rejection reasons from guard-rejections.ndjson. */
export function rowOf(line: unknown, at: number, n: number, rejectionReasons: readonly string[] = []): Row {
  const facets = facetsOf(line);
  const record = isRecord(line) ? line : {};
  const first = messagesOf(record).find((m) => m.role === 'user')?.content ?? '';
  return {
    at,
    n,
    id: facets?.id ?? text(record.interaction_id) ?? '?',
    persona: facets?.persona ?? text(record.persona_id) ?? '?',
    model: facets?.model ?? '?',
    turns: facets?.turns ?? 0,
    endReason: facets?.endReason ?? null,
    noised: facets?.noised ?? false,
    round: facets?.round ?? null,
    verdict: facets?.verdict ?? null,
    first: preview(first),
    reasons: [...new Set([...(facets?.guard.map(([reason]) => reason) ?? []), ...rejectionReasons])],
  };
}

/** A rejection line (guard-rejections.ndjson) as the pane shows it; the text under whichever name it has. */
export function rejectionOf(line: unknown): RejectionView | undefined {
  if (!isRecord(line)) return undefined;
  const reason = text(line.reason) ?? text(line.kind) ?? (Array.isArray(line.reasons) ? line.reasons.filter((r) => typeof r === 'string').join(', ') : null) ?? '?';
  const body = text(line.text) ?? text(line.content) ?? text(line.reply) ?? text(line.rejected) ?? '';
  return { reason, text: body, turn: finite(line.turn), role: text(line.role) ?? text(line.module) };
}

/** Keys under which a rejection line is filed for its conversation: its interaction id, and its persona and query ids. */
export function rejectionKeys(line: unknown): string[] {
  if (!isRecord(line)) return [];
  const keys: string[] = [];
  const id = text(line.interaction_id);
  if (id !== null) keys.push(`id\u0000${id}`);
  const persona = text(line.persona_id);
  const query = text(line.query_id);
  if (persona !== null && query !== null) keys.push(`pq\u0000${persona}\u0000${query}`);
  return keys;
}

/** The keys an interaction's rejections may be filed under (see rejectionKeys). */
export const interactionKeys = (facets: { readonly id: string; readonly persona: string; readonly queryId: string }): string[] => [`id\u0000${facets.id}`, `pq\u0000${facets.persona}\u0000${facets.queryId}`];

/** Per-module usage of one interaction (`metadata.usage`), as rows. */
function usageRows(metadata: Record<string, unknown>): UsageRow[] {
  if (!isRecord(metadata.usage)) return [];
  return Object.entries(metadata.usage)
    .filter((entry): entry is [string, Record<string, unknown>] => isRecord(entry[1]))
    .map(([name, u]) => ({ name, calls: finite(u.calls) ?? finite(u.call_count) ?? 0, input: finite(u.input_tokens) ?? 0, output: finite(u.output_tokens) ?? 0, cost: null }));
}

/**
 * What one conversation cost at `prices`: the assistant module at the assistant model's price, the user
 * simulator's at the user model's; other modules (distractor, style transfer) do not record their model,
 * so they are listed as unpriced rather than guessed.
 */
function costOf(metadata: Record<string, unknown>, rows: UsageRow[], prices: PriceTable): { usd: number | null; unpriced: string[]; rows: UsageRow[] } {
  const models: Record<string, unknown> = { assistant: metadata.assistant_model, user_simulator: metadata.user_model };
  let usd = 0;
  const unpriced: string[] = [];
  const priced = rows.map((row) => {
    const ref = Object.hasOwn(models, row.name) ? models[row.name] : undefined;
    const price = isRecord(ref) ? priceOf(prices, text(ref.provider) ?? '', text(ref.model) ?? '') : undefined;
    if (price === undefined) {
      if (row.input + row.output > 0) unpriced.push(row.name);
      return row;
    }
    const cost = (row.input * price.input + row.output * price.output) / 1e6;
    usd += cost;
    return { ...row, cost };
  });
  return { usd: rows.length === 0 ? null : usd, unpriced, rows: priced };
}

/**
 * The conversation pane's view of a parsed interaction line: messages with each noised user turn's clean
 * version and strategies, persona, judge record, usage and cost, and its rejected replies. Texts from
 * models and persona files are passed on as they are (the page shows them as text); metadata is redacted.
 */
export function conversationOf(line: unknown, at: number, n: number, rejections: readonly RejectionView[], prices: PriceTable): ConversationView {
  const record = isRecord(line) ? line : {};
  const metadata = isRecord(record.metadata) ? record.metadata : {};
  const messages = messagesOf(record);
  const noise = noiseByTurn(record, messages);
  let noised = 0;
  const views: MessageView[] = messages.map((m) => {
    const isNoised = m.role === 'user' && wasNoised(m);
    const strategies = isNoised ? (noise[noised++] ?? []) : [];
    return { role: m.role, content: m.content, turn: finite(m.metadata?.turn), clean: isNoised ? (text(m.metadata?.clean_version) ?? null) : null, noise: strategies };
  });
  const quality = qualityOf(metadata);
  const cost = costOf(metadata, usageRows(metadata), prices);
  const systemPrompt = text(record.system_prompt) ?? text(metadata.system_prompt);
  return {
    at,
    n,
    id: text(record.interaction_id) ?? '?',
    persona: { id: text(record.persona_id) ?? '?', features: featuresOf(record), systemPrompt },
    originalQuery: text(record.original_query),
    messages: views,
    model: modelName(metadata.assistant_model),
    userModel: modelName(metadata.user_model),
    turns: turnsOf(record, messages),
    endReason: text(metadata.end_reason),
    round: roundOf(metadata),
    quality,
    guard: isRecord(metadata.guard) ? Object.entries(metadata.guard).filter((entry): entry is [string, number] => typeof entry[1] === 'number') : [],
    usage: cost.rows,
    cost: { usd: cost.usd, unpriced: cost.unpriced },
    rejections,
    metadata: redact(metadata),
  };
}
