// Stand-ins for the models of a run, for `personaflow estimate`: sim answers every call, and each call is counted as the real model would be billed for it.
import type { ChatMessage, ChatModel, ChatRequest } from '../chat.js';
import { ModelError } from '../errors.js';
import { createSimModel } from '../models/sim.js';
import type { Spec } from '../models/specs.js';
import { PER_MESSAGE, REPLY_PRIMING, counterFor, methodFor, type Counter, type TokenMethod } from '../models/tokens.js';
import { DEFAULT_STOP_TOKEN } from '../prompts/simulator.js';

/**
 * Which end of the range a rendering stands for. `low`: conversations end at min_turns (the simulated
 * user stops as soon as it may), the assistant writes its typical reply, every other reply is as long as
 * sim's and every answer is taken at once. `high`: the user never stops first (max_turns, or the dice of
 * stop_policy personagym), every reply is billed at its completion cap, and the judge is asked again as
 * often as it may be.
 */
export type Scenario = 'low' | 'high';

/** How a model's tokens are counted: an OpenAI encoding, characters / 4, or sim's own count (a sim model is billed what sim says). */
export type Counting = TokenMethod | 'sim';

/** A completion cap that is not set counts as this many tokens at the high end (as --max-cost's worst case does). */
export const UNCAPPED_TOKENS = 4096;

/** What the stand-ins assume. */
export interface StandInOptions {
  /** The assistant's typical reply, in tokens (the low end; capped by its max_completion_tokens). */
  readonly replyTokens: number;
  /** Answers of the judge's review that may be rejected before the conversation fails (`judge.validation_retries`): the high end uses them all. */
  readonly judgeRetries: number;
}

/** A stand-in assistant reply: its text as the transcript holds it, and the tokens the real reply is assumed to take. */
interface Reply {
  readonly text: string;
  readonly assumed: number;
}

/**
 * Assistant replies carry a marker of private-use characters (`\uE000`, the reply's number in
 * `\uE001`..`\uE00A`, `\uE000`): wherever a reply comes back in a later prompt (the assistant's own
 * history, the simulator's inverted one, the judge's transcript), its tokens are replaced by the length
 * assumed for it. Sim's replies are short; a real model's are not, and every later prompt carries them.
 */
const MARKER = /\uE000([\uE001-\uE00A]+)\uE000/g;
const markerOf = (id: number): string => `\uE000${[...String(id)].map((digit) => String.fromCharCode(0xe001 + Number(digit))).join('')}\uE000`;
const idOf = (digits: string): number => Number([...digits].map((char) => String(char.charCodeAt(0) - 0xe001)).join(''));

/** What the judge says when the high end has it asked again. */
const NOT_JSON = 'This is not the JSON object that was asked for.';

/** sim counts characters / 4 per message, at least 1, with no overhead for the chat format. */
const simCount: Counter = (text) => Math.max(1, Math.ceil(text.length / 4));

/**
 * Makes the stand-in of each model a run would call, and counts what each call sends with the model's
 * tokenizer. One set of stand-ins serves every rendering of an estimate; `scenario` says which end the
 * next rendering stands for, and `reset` forgets the replies of the last one.
 *
 * @example
 * const standIns = new StandIns({ replyTokens: 250, judgeRetries: 2 });
 * const conversations = await setUpConversations(loaded, settings, { standIn: (spec) => standIns.model(spec), ... }, report);
 * await standIns.ready();
 * standIns.scenario = 'high';
 */
export class StandIns {
  scenario: Scenario = 'low';
  readonly #options: StandInOptions;
  /** How each model (`provider/model`) is counted. */
  readonly #counting = new Map<string, Counting>();
  readonly #counters = new Map<Counting, Counter>([['sim', simCount]]);
  /** Token counts by counting and text: a transcript comes back in every later prompt. */
  readonly #counted = new Map<Counting, Map<string, number>>();
  readonly #replies: Reply[] = [];
  /** Judge prompts asked so far in this rendering, by prompt: the high end rejects the first answers. */
  readonly #judgeAsks = new Map<string, number>();

  constructor(options: StandInOptions) {
    if (!Number.isSafeInteger(options.replyTokens) || options.replyTokens < 1) throw new TypeError(`Expected \`replyTokens\` to be a positive integer, got \`${String(options.replyTokens)}\``);
    if (!Number.isSafeInteger(options.judgeRetries) || options.judgeRetries < 0) throw new TypeError(`Expected \`judgeRetries\` to be a non-negative integer, got \`${String(options.judgeRetries)}\``);
    this.#options = options;
  }

  /** How each model the stand-ins stand for is counted, by `provider/model`. */
  get counting(): ReadonlyMap<string, Counting> {
    return this.#counting;
  }

  /** Loads the tokenizers of the models made so far (call once they are all made, before the first call). */
  async ready(): Promise<void> {
    for (const counting of new Set(this.#counting.values())) {
      if (!this.#counters.has(counting)) this.#counters.set(counting, await counterFor(counting as TokenMethod));
    }
  }

  /** Forgets the replies and counts of the last rendering. */
  reset(): void {
    this.#replies.length = 0;
    this.#judgeAsks.clear();
    this.#counted.clear();
  }

  /** The stand-in of one configured model: it keeps the model's provider and name, so usage is counted under them. */
  model(spec: Pick<Spec, 'provider' | 'model' | 'maxCompletionTokens'>): ChatModel {
    const counting: Counting = spec.provider === 'sim' ? 'sim' : methodFor(spec.model);
    this.#counting.set(`${spec.provider}/${spec.model}`, counting);
    const sim = createSimModel({ provider: 'sim', model: spec.model });
    return {
      provider: spec.provider,
      model: spec.model,
      complete: async (request, signal) => {
        if (signal.aborted) throw new ModelError('aborted', 'request aborted');
        if (counting === 'sim') {
          // A sim model is what the run will call: its replies are the real ones, and so is its count.
          const response = await sim.complete(request, signal);
          return { content: response.content, usage: { input: this.#input('sim', request.messages), output: response.usage.output } };
        }
        const { content, output } = await this.#answer(sim, request, signal, spec.maxCompletionTokens, counting);
        return { content, usage: { input: this.#input(counting, request.messages), output } };
      },
    };
  }

  /** A real model's stand-in answer, and the output tokens the real answer is assumed to be billed. */
  async #answer(sim: ChatModel, request: ChatRequest, signal: AbortSignal, specCap: number | undefined, counting: TokenMethod): Promise<{ content: string; output: number }> {
    const high = this.scenario === 'high';
    const cap = request.maxCompletionTokens ?? specCap;
    const billed = (content: string): { content: string; output: number } => {
      const counted = this.#count(counting, content);
      return { content, output: high ? Math.max(counted, cap ?? UNCAPPED_TOKENS) : counted };
    };
    const simReply = async (hinted: ChatRequest = request): Promise<string> => (await sim.complete(hinted, signal)).content;
    switch (request.module) {
      case 'assistant': {
        const assumed = high ? (cap ?? UNCAPPED_TOKENS) : Math.min(cap ?? Number.POSITIVE_INFINITY, this.#options.replyTokens);
        const id = this.#replies.length;
        const text = `${await simReply()} ${markerOf(id)}`;
        this.#replies.push({ text, assumed });
        return { content: text, output: assumed };
      }
      case 'user_simulator': {
        const hints = request.hints ?? {};
        // Low: the user stops as soon as it may. High: it never stops first.
        if (!high && (hints.turn ?? 0) >= (hints.minTurns ?? 1)) return billed(hints.stopToken ?? DEFAULT_STOP_TOKEN);
        return billed(await simReply({ ...request, hints: { ...hints, minTurns: Number.POSITIVE_INFINITY } }));
      }
      case 'judge': {
        const prompt = request.messages[0]?.content ?? '';
        const asked = this.#judgeAsks.get(prompt) ?? 0;
        this.#judgeAsks.set(prompt, asked + 1);
        if (high && asked < this.#options.judgeRetries) return billed(NOT_JSON);
        // Sim's verdict is drawn from the messages it is shown: show it the conversation's first message
        // only, so a conversation is rejected (and topped up) or not whatever its length (more turns never
        // cost less), while its checks' findings still count.
        const opening = (request.hints?.judge?.key ?? prompt).split('\n')[0] ?? '';
        return billed(await simReply({ ...request, messages: [{ role: 'user', content: opening }] }));
      }
      default:
        return billed(await simReply());
    }
  }

  /** The input tokens of a prompt: its messages (with the chat format's overhead), each stand-in reply counted at its assumed length. */
  #input(counting: Counting, messages: readonly ChatMessage[]): number {
    const overhead = counting === 'sim' ? 0 : PER_MESSAGE;
    let total = counting === 'sim' ? 0 : REPLY_PRIMING;
    for (const message of messages) {
      total += overhead + this.#count(counting, message.content);
      for (const match of message.content.matchAll(MARKER)) {
        const reply = this.#replies[idOf(match[1] as string)];
        if (reply !== undefined) total += reply.assumed - this.#count(counting, reply.text);
      }
    }
    return Math.max(0, total);
  }

  #count(counting: Counting, text: string): number {
    let counted = this.#counted.get(counting);
    if (counted === undefined) this.#counted.set(counting, (counted = new Map<string, number>()));
    const known = counted.get(text);
    if (known !== undefined) return known;
    const counter = this.#counters.get(counting);
    if (counter === undefined) throw new TypeError(`StandIns: the ${counting} tokenizer is not loaded (call ready() first)`);
    const tokens = counter(text);
    counted.set(text, tokens);
    return tokens;
  }
}
