// --max-cost: a ceiling on the directory's spend; a conversation starts only if its worst case still fits under it.
import { interactionId, type Outcome, type Task } from '../types.js';

/** USD per million input and output tokens. */
export interface Price {
  readonly input: number;
  readonly output: number;
}

/** What a conversation's worst case is made of: its models' length caps and prices, and the fixed parts of their prompts. */
export interface CostShape {
  readonly minTurns: number;
  readonly maxTurns: number;
  /** The assistant: the largest completion cap and the highest prices of the pool (the model is drawn later). */
  readonly assistant: { readonly maxTokens: number; readonly price: Price; readonly promptTokens: number };
  /** The user simulator, with its template's tokens. */
  readonly user: { readonly maxTokens: number; readonly price: Price; readonly promptTokens: number };
  /** The semantic distractor, when the run noises turns with it: one call per user turn. */
  readonly distractor?: { readonly maxTokens: number; readonly price: Price; readonly promptTokens: number } | undefined;
  /** Style transfer, when enabled: one call before the first turn. */
  readonly styleTransfer?: { readonly maxTokens: number; readonly price: Price; readonly promptTokens: number } | undefined;
  /** The judge's review, when a judge with a model is on: one call after the last turn, reading the whole conversation. */
  readonly judge?: { readonly maxTokens: number; readonly price: Price; readonly promptTokens: number } | undefined;
}

/**
 * Tokens a text may take, estimated on the high side: UTF-8 bytes / 3. English runs about 4.5 bytes a
 * token in OpenAI's tokenizers, and other scripts closer to 3, so this errs towards reserving too much.
 */
export const tokensOf = (text: string): number => Math.ceil(Buffer.byteLength(text) / 3);

/** Tokens the chat format adds to each message. */
const PER_MESSAGE = 8;

const usd = (price: Price, input: number, output: number): number => (input * price.input + output * price.output) / 1e6;

/**
 * The most one task's conversation can cost when each call is made once: `T` turns (its target, within
 * the turn limits) where every assistant answer and every simulated user message takes its model's whole
 * completion cap, and every prompt carries the whole history so far. Per turn k: the assistant reads its
 * prompt, the opening and k-1 exchanges and writes a full answer; the simulator (T-1 times) reads its
 * template, the persona and the history and writes a full message; the distractor (when on) reads a
 * message and writes one; style transfer (when on) rewrites the opening once; the judge (when on) reads
 * the whole conversation once and writes its verdict. What it leaves out are the
 * calls made again: retried attempts the provider billed, and replies the guards or a check asked again.
 */
export function worstCase(task: Task, shape: CostShape): number {
  const turns = Math.min(shape.maxTurns, Math.max(shape.minTurns, task.targetTurns));
  const { assistant, user, distractor, styleTransfer, judge } = shape;
  const persona = tokensOf(JSON.stringify(task.personaFeatures)) + tokensOf(task.systemPrompt ?? '');
  const opening = Math.max(tokensOf(task.initialQuery), styleTransfer?.maxTokens ?? 0);
  const userTurn = Math.max(user.maxTokens, distractor?.maxTokens ?? 0) + PER_MESSAGE;
  const answer = assistant.maxTokens + PER_MESSAGE;
  let cost = 0;
  for (let k = 1; k <= turns; k += 1) {
    cost += usd(assistant.price, assistant.promptTokens + opening + PER_MESSAGE + (k - 1) * (userTurn + answer), assistant.maxTokens);
    if (k < turns) cost += usd(user.price, user.promptTokens + persona + opening + k * answer + (k - 1) * userTurn, user.maxTokens);
  }
  if (distractor !== undefined) cost += turns * usd(distractor.price, distractor.promptTokens + persona + userTurn, distractor.maxTokens);
  if (styleTransfer !== undefined) cost += usd(styleTransfer.price, styleTransfer.promptTokens + persona + tokensOf(task.originalQuery), styleTransfer.maxTokens);
  if (judge !== undefined) cost += usd(judge.price, judge.promptTokens + persona + opening + turns * (userTurn + answer), judge.maxTokens);
  return cost;
}

/**
 * The run's budget, `--max-cost`: a ceiling on what the directory has spent (earlier runs into it
 * included), not a target. A conversation is admitted only if what is spent, plus the worst case of every
 * conversation in flight, plus its own worst case stays within the ceiling; its reservation is given back
 * when its outcome is written. So the spend can pass the ceiling only by calls a worst case leaves out
 * (see `worstCase`) made by the conversations in flight, and by supplement rounds' query generation;
 * without retries or re-asks it never does. A conversation that does not fit waits for those in flight to
 * give their reservations back (worst cases are far above what conversations usually cost); once it does
 * not fit with nothing in flight, the budget is reached for good: no conversation starts after it.
 * Without a limit it admits everything.
 *
 * @example
 * const budget = new Budget(5, () => totals.cost().total, (task) => worstCase(task, shape));
 * if (await budget.admit(task)) start(task); // later: budget.settle(outcome)
 */
/** What the budget holds a reservation for: one conversation, by its persona and query. */
export interface Reserved {
  readonly personaId: string;
  readonly queryId: string;
}

export class Budget<T extends Reserved = Task> {
  #begun = 0;
  #reached = false;
  #reserved = 0;
  readonly #held = new Map<string, number>();
  /** Wakes an `admit` waiting for reservations to come back. */
  #settled: (() => void) | undefined;

  constructor(
    readonly maxCost: number | undefined,
    /** USD the directory has spent so far. */
    readonly spent: () => number,
    /** A conversation's worst case, in USD. */
    readonly reserve: (task: T) => number,
  ) {}

  /** Conversations started so far. */
  get begun(): number {
    return this.#begun;
  }

  get reached(): boolean {
    return this.#reached;
  }

  /** USD held for the conversations in flight. */
  get reserved(): number {
    return this.#reserved;
  }

  /**
   * Starts `task` now if its worst case fits (`admitted`, holding it); `wait` if it would fit once the
   * conversations in flight give their reservations back; `refused` (and reached for good) if it does not
   * fit with nothing in flight.
   */
  tryAdmit(task: T): 'admitted' | 'wait' | 'refused' {
    if (this.maxCost === undefined) {
      this.#begun += 1;
      return 'admitted';
    }
    if (this.#reached) return 'refused';
    const worst = this.reserve(task);
    if (this.spent() + this.#reserved + worst > this.maxCost) {
      if (this.#held.size > 0) return 'wait';
      this.#reached = true;
      return 'refused';
    }
    const id = interactionId(task.personaId, task.queryId);
    this.#held.set(id, (this.#held.get(id) ?? 0) + worst);
    this.#reserved += worst;
    this.#begun += 1;
    return 'admitted';
  }

  /** Starts `task` once its worst case fits, waiting for conversations in flight to settle; false once the budget is reached. */
  async admit(task: T): Promise<boolean> {
    for (;;) {
      const verdict = this.tryAdmit(task);
      if (verdict !== 'wait') return verdict === 'admitted';
      await new Promise<void>((resolve) => (this.#settled = resolve));
    }
  }

  /** Gives back the reservation of the conversation `outcome` ends. */
  settle(outcome: Outcome): void {
    const id = outcome.ok ? interactionId(outcome.interaction.persona_id, outcome.interaction.metadata.query_id) : interactionId(outcome.failure.persona_id, outcome.failure.query_id);
    const held = this.#held.get(id);
    if (held === undefined) return;
    this.#held.delete(id);
    this.#reserved = this.#held.size === 0 ? 0 : Math.max(0, this.#reserved - held);
    const wake = this.#settled;
    this.#settled = undefined;
    wake?.();
  }

  /** Whether no further conversation may start: the budget is reached. */
  over(): boolean {
    return this.#reached;
  }
}
