// The built-in `sim` provider: deterministic, offline, persona-aware replies with optional latency and faults.
import { ModelError, type ModelErrorKind } from '../errors.js';
import { wordNet, type Lexicon } from '../noise/lexicon.js';
import { holds, protectedTokens } from '../noise/slots.js';
import { STRATEGIES } from '../noise/strategies.js';
import { pick, rngFor, type Rng } from '../rng.js';
import { sleep } from '../sleep.js';
import type { CallHints, ChatModel, ChatRequest, ChatResponse, ModelRef } from '../chat.js';

export interface SimOptions {
  /** Mean latency per call in milliseconds (default 0: answer on the next microtask). */
  readonly latencyMs?: number;
  /** Uniform jitter added to the latency, ± this many milliseconds. */
  readonly jitterMs?: number;
  /** Probability per call of each injected fault. */
  readonly faults?: Partial<Record<'rate_limit' | 'server' | 'timeout' | 'malformed', number>>;
  /** Retry-After sent with injected 429s, in milliseconds (default 50). */
  readonly retryAfterMs?: number;
  /** Seeds fault and jitter draws (the reply text never depends on it). */
  readonly seed?: number;
}

const TOPICS_FALLBACK = ['that', 'this part', 'the next step'];
const OPENERS = ['Sure.', 'Good question.', 'Here is how I would approach it.', 'Happy to help.', 'Let us break it down.'];
const BODIES = [
  'Start with the smallest version that works, then check each step before adding the next.',
  'The key idea is to separate the data from the logic that uses it, so each part can be tested on its own.',
  'A common pitfall is skipping the edge cases; list them first and handle them explicitly.',
  'There are two reasonable options here, and the trade-off is mostly simplicity against flexibility.',
  'If you share a concrete example, I can adapt this to your exact situation.',
  'In practice, measuring before and after the change tells you whether it helped.',
];
const CASUAL_FOLLOWUPS = ['ok but what about {topic}', 'hmm not sure i get {topic}, example?', 'cool. and {topic}?', 'wait, does that work for {topic} too'];
const FORMAL_FOLLOWUPS = [
  'Could you explain {topic} in more detail?',
  'How would this apply to {topic}?',
  'What are the risks regarding {topic}?',
  'Could you give a concrete example for {topic}?',
];

/**
 * What the reply depends on: the model, the module, how long the conversation is and its last two
 * messages. A pure function of the request (so never of timing), without hashing the whole history and
 * system prompt on every call.
 */
function fingerprint(model: string, request: ChatRequest): string {
  const { messages } = request;
  const tail = messages.slice(-2).map((message) => `${message.role}:${message.content}`);
  return `${model}\u0000${request.module}\u0000${messages.length}\u0000${tail.join('\u0000')}`;
}


const STOPWORDS = new Set(['that', 'this', 'with', 'what', 'from', 'have', 'your', 'about', 'would', 'could', 'should', 'there', 'their', 'which', 'when', 'where', 'help', 'write', 'need', 'some', 'into', 'them', 'then', 'than', 'does', 'just', 'like', 'make', 'want']);

function topicOf(text: string | undefined, rng: Rng): string {
  const words = ((text ?? '').toLowerCase().match(/[a-z][a-z'-]{2,}/g) ?? []).filter((word) => !STOPWORDS.has(word) && word.length > 3);
  return words.length === 0 ? pick(rng, TOPICS_FALLBACK) : pick(rng, words);
}

function isCasual(persona: CallHints['persona']): boolean {
  const style = JSON.stringify(persona ?? {}).toLowerCase();
  return /casual|informal|concise|very_short|short|friendly|colloquial/.test(style);
}

function assistantReply(model: string, request: ChatRequest, rng: Rng): string {
  const lastUser = [...request.messages].reverse().find((message) => message.role === 'user')?.content;
  const topic = topicOf(lastUser, rng);
  return `${pick(rng, OPENERS)} On ${topic}: ${pick(rng, BODIES)} ${pick(rng, BODIES)} (${model})`;
}

const CASUAL_CLOSINGS = ['ok that works, thx', 'got it', 'cool, done', ''];
const FORMAL_CLOSINGS = ['Thank you, that answers my question.', 'That is clear now, thank you.', ''];

/** How many answers a simulated user needs for a request: 1 to 4, a pure function of the request's text. */
const answersWanted = (query: string | undefined): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < (query ?? '').length; i += 1) h = Math.imul(h ^ (query as string).charCodeAt(i), 0x01000193);
  return 1 + ((h >>> 0) % 4);
};

function userReply(request: ChatRequest, rng: Rng): string {
  const hints = request.hints ?? {};
  const turn = hints.turn ?? 1;
  const stopToken = hints.stopToken ?? '###STOP###';
  // The simulated user is done once it has had the answers its request needs (never before min_turns):
  // closing words, sometimes, then the stop signal alone on the last line.
  if (turn >= Math.max(hints.minTurns ?? 1, answersWanted(hints.originalQuery))) {
    const closing = pick(rng, isCasual(hints.persona) ? CASUAL_CLOSINGS : FORMAL_CLOSINGS);
    return closing === '' ? stopToken : `${closing}\n${stopToken}`;
  }
  // Follow-ups stay on the user's own request, as a real user's do, and never say the same thing twice:
  // candidates are tried in a seeded order and the first one not already in the conversation wins.
  const templates = isCasual(hints.persona) ? CASUAL_FOLLOWUPS : FORMAL_FOLLOWUPS;
  const said = request.messages
    .filter((message) => message.role !== 'system')
    .map((message) => message.content)
    .join('\n');
  // Role-inverted: the assistant's latest answer is the last `user` message.
  const lastAnswer = [...request.messages].reverse().find((message) => message.role === 'user')?.content;
  let reply = '';
  for (let attempt = 0; attempt < 8; attempt += 1) {
    const topic = topicOf(attempt % 2 === 0 ? hints.originalQuery : lastAnswer, rng);
    reply = pick(rng, templates).replace('{topic}', topic);
    if (!said.includes(reply)) break;
  }
  return reply;
}

let lexicon: Lexicon | undefined;

/** Who answers which module's prompts. */
const REPLIES: Readonly<Record<ChatRequest['module'], (model: string, request: ChatRequest, rng: Rng) => string>> = {
  assistant: (model, request, rng) => assistantReply(model, request, rng),
  user_simulator: (_model, request, rng) => userReply(request, rng),
  distractor: (_model, request, rng) => distractorReply(request, rng),
  style_transfer: (_model, request, rng) => styleReply(request, rng),
  query_generation: (_model, request, rng) => queriesReply(request, rng),
  judge: (_model, request, rng) => judgeReply(request, rng),
};

/** Share of conversations without a finding that sim's judge still rejects (a persona break), so a dry run shows rejections and top-ups. */
export const SIM_JUDGE_REJECTS = 0.15;

/**
 * A judge answer: every criterion 3 or 4 for a conversation the deterministic checks passed, except a
 * seeded SIM_JUDGE_REJECTS of them scored as a persona break; with findings, the criteria they touch
 * scored 1 and their tags given. A pure function of the prompt.
 */
function judgeReply(request: ChatRequest, rng: Rng): string {
  const ask = request.hints?.judge;
  if (ask === undefined) return 'sim: a judge prompt without hints';
  const broke = ask.checks.length === 0 && rng.next() < SIM_JUDGE_REJECTS;
  const scored = (names: readonly string[], low: ReadonlySet<string>): Record<string, { reason: string; score: number }> =>
    Object.fromEntries(names.map((name) => [name, low.has(name) ? { reason: 'sim: below what this persona would write', score: 1 } : { reason: 'sim: fine', score: 3 + (rng.next() < 0.5 ? 1 : 0) }]));
  const low = new Set<string>(broke ? ['persona_adherence'] : []);
  const tags: string[] = broke ? ['persona_break'] : [];
  const effects: Readonly<Record<string, readonly [readonly string[], string]>> = {
    premature_stop: [['ending'], 'premature_termination'],
    truncated_answer: [['answered'], 'truncated'],
    assistant_refusal: [['answered'], 'refusal'],
    user_assistant_voice: [['persona_adherence', 'naturalness'], 'assistant_voice'],
  };
  for (const check of ask.checks) {
    const [criteria, tag] = effects[check] ?? (check.startsWith('user_') ? [['persona_adherence', 'naturalness'], 'persona_break'] : [[], '']);
    for (const criterion of criteria) low.add(criterion);
    if (tag !== '') tags.push(tag);
  }
  const reject = low.size > 0;
  return JSON.stringify({
    user: scored(['persona_adherence', 'naturalness', 'ending', 'information', 'consistency'], low),
    assistant: scored(['answered', 'clarification', 'noise_handling'], low),
    tags: [...new Set(tags)],
    verdict: reject ? 'reject' : 'accept',
    verdict_reason: reject ? `sim: ${[...low].join(', ')}` : 'sim: good data',
  });
}

/** A strategy of each layer that changes any non-empty text: what sim applies when the asked ones found nothing to change. */
const ALWAYS_CHANGES: Readonly<Record<string, string>> = { surface_noise: 'emotional_attitude', incomplete_info: 'unclear_priority', semantic_ambiguity: 'multi_intent' };

/**
 * A distractor answer: the strategies the prompt asked for, applied by their rule-based versions (which keep
 * the text's protected tokens, and report what the heavier ones drop), as the JSON the bundled templates ask
 * for. Honest like a good model: `applied_strategies` names only what changed the text, `slots` holds the
 * details kept and the ones dropped, `slots_dropped` names the latter, `means` says what the text now asks.
 */
function distractorReply(request: ChatRequest, rng: Rng): string {
  const ask = request.hints?.distractor;
  if (ask === undefined) return 'sim: a distractor prompt without hints';
  lexicon ??= wordNet();
  const keep = protectedTokens(ask.text, lexicon);
  const context = { rng, params: {}, lexicon, keep };
  let text = ask.text;
  const applied: string[] = [];
  const dropped: string[] = [];
  const apply = (name: string): void => {
    const strategy = STRATEGIES[name];
    if (strategy === undefined) return;
    const next = strategy(text, context);
    if (next.text === text) return;
    text = next.text;
    applied.push(name);
    dropped.push(...next.dropped.filter((detail) => !dropped.includes(detail)));
  };
  for (const name of ask.strategies) apply(name);
  // A change of case alone is no rewrite (the distractor rejects it as identical): add a change that shows.
  if (text.toLowerCase() === ask.text.toLowerCase()) apply(ALWAYS_CHANGES[ask.layer] ?? 'emotional_attitude');
  const intent = (ask.text.toLowerCase().match(/[a-z]+/g) ?? ['request']).slice(0, 2).join('_');
  const slots = Object.fromEntries([...keep.filter((token) => holds(text, token, true)).map((token, i): [string, string] => [`detail_${i + 1}`, token]), ...dropped.map((detail, i): [string, string] => [`dropped_${i + 1}`, detail])]);
  return JSON.stringify({
    intent,
    slots,
    noisy_text: text,
    applied_strategies: applied,
    slots_dropped: dropped.map((_, i) => `dropped_${i + 1}`),
    ...(ask.layer === 'surface_noise' ? {} : { means: text }),
  });
}

/** A style-transfer answer: the query in a casual or a formal voice, trimmed to the length asked for. */
function styleReply(request: ChatRequest, rng: Rng): string {
  const ask = request.hints?.styleTransfer;
  if (ask === undefined) return 'sim: a style-transfer prompt without hints';
  const words = ask.query.replace(/\s+/g, ' ').trim().split(' ');
  const limit = { very_short: 20, short: 40, medium: 80, long: 150 }[ask.targetLength] ?? 80;
  const body = words.slice(0, limit).join(' ');
  const casual = isCasual(request.hints?.persona);
  const adapted = casual ? `${pick(rng, ['hey, ', 'quick one: ', ''])}${body.charAt(0).toLowerCase()}${body.slice(1).replace(/[.]$/, '')}` : `${pick(rng, ['Could you help me with this: ', 'I would like some help. ', 'I have a question. '])}${body}`;
  const domain = /code|python|sql|script|bug|function/i.test(body) ? 'coding' : /data|csv|table/i.test(body) ? 'data' : /write|essay|story|email|letter/i.test(body) ? 'writing' : 'general';
  return JSON.stringify({ adapted_query: adapted, inferred_domain: domain, inferred_scenario: casual ? 'casual' : 'work_task' });
}

const GENERATED = [
  'how do i {verb} a {thing} for my {place}',
  'need ideas to {verb} the {thing} before the weekend',
  'what is the best way to {verb} {thing} as a {role}',
  'can you explain how {thing} works, step by step',
  'help me compare two options for {thing}',
];
const VERBS = ['plan', 'organise', 'budget', 'write up', 'clean up', 'automate', 'review'];
const THINGS = ['weekly schedule', 'project notes', 'team budget', 'shopping list', 'reading list', 'spreadsheet', 'presentation'];
const PLACES = ['team', 'family', 'small shop', 'class', 'club'];

/** A query-generation answer: `count` requests in the persona's role, none equal to one to avoid. */
function queriesReply(request: ChatRequest, rng: Rng): string {
  const ask = request.hints?.queryGeneration;
  if (ask === undefined) return 'sim: a query-generation prompt without hints';
  const role = typeof request.hints?.persona?.role === 'string' ? request.hints.persona.role : 'beginner';
  const norm = (query: string): string => query.toLowerCase().replace(/\s+/g, ' ').trim();
  const avoid = new Set(ask.avoid.map(norm));
  const queries: Array<{ query: string; domain: string; scenario: string }> = [];
  for (let tries = 0; queries.length < ask.count && tries < ask.count * 20; tries += 1) {
    const query = pick(rng, GENERATED).replace('{verb}', pick(rng, VERBS)).replace('{thing}', pick(rng, THINGS)).replace('{place}', pick(rng, PLACES)).replace('{role}', role);
    if (avoid.has(norm(query)) || queries.some((q) => q.query === query)) continue;
    queries.push({ query, domain: 'productivity', scenario: pick(rng, ['planning', 'learning', 'work_task']) });
  }
  return JSON.stringify({ queries });
}

const approxTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4));


/**
 * Creates a simulated chat model. Replies are a pure function of (model name, module, messages), and
 * faults and latency of (seed, request, attempt number), so a run with a fixed seed is reproducible at any
 * concurrency and in any completion order, faults included: the same call fails on the same attempts.
 *
 * @example
 * const model = createSimModel({ provider: 'sim', model: 'gpt-4o-mini' }, { latencyMs: 50, faults: { rate_limit: 0.1 } });
 */
export function createSimModel(ref: ModelRef, options: SimOptions = {}): ChatModel {
  const latency = options.latencyMs ?? 0;
  const jitter = options.jitterMs ?? 0;
  const faults = Object.entries(options.faults ?? {}).filter(([, p]) => (p ?? 0) > 0) as [ModelErrorKind | 'server', number][];
  return {
    provider: ref.provider,
    model: ref.model,
    async complete(request: ChatRequest, signal: AbortSignal): Promise<ChatResponse> {
      if (signal.aborted) throw new ModelError('aborted', 'request aborted');
      const print = fingerprint(ref.model, request);
      const chaos = jitter > 0 || faults.length > 0 ? rngFor(options.seed ?? 0, print, `sim-chaos/${request.attempt ?? 1}`) : undefined;
      const wait = latency + (chaos !== undefined && jitter > 0 ? (chaos.next() * 2 - 1) * jitter : 0);
      if (wait > 0) await sleep(wait, signal, 'request aborted');
      for (const [kind, probability] of faults) {
        if (chaos === undefined || chaos.next() >= probability) continue;
        if (kind === 'rate_limit') throw new ModelError('rate_limit', 'sim: injected 429 Too Many Requests', { status: 429, retryAfterMs: options.retryAfterMs ?? 50 });
        if (kind === 'server') throw new ModelError('server', 'sim: injected 500 Internal Server Error', { status: 500 });
        if (kind === 'timeout') throw new ModelError('timeout', 'sim: injected timeout');
        throw new ModelError('malformed', 'sim: injected malformed response body');
      }
      const rng = rngFor(0, print, 'sim-reply');
      const content = REPLIES[request.module](ref.model, request, rng);
      const input = request.messages.reduce((sum, message) => sum + approxTokens(message.content), 0);
      return { content, usage: { input, output: approxTokens(content) } };
    },
  };
}
