// --max-cost: stop starting conversations once the spend, and what those in flight will likely add, reaches the budget.
import type { UsageTotals } from '../sinks/usage.js';

/**
 * The run's budget. `begin()` counts each conversation started; `over()` says whether what is spent plus
 * what the conversations in flight are likely to cost (this run's average so far) reaches `maxCost`, and
 * once it has, it stays so (`reached`). Without a budget it is never over.
 */
export class Budget {
  #begun = 0;
  #reached = false;

  constructor(
    readonly maxCost: number | undefined,
    readonly totals: UsageTotals,
  ) {}

  /** Conversations started so far. */
  get begun(): number {
    return this.#begun;
  }

  get reached(): boolean {
    return this.#reached;
  }

  begin(): void {
    this.#begun += 1;
  }

  over(): boolean {
    if (this.maxCost === undefined) return false;
    const { totals } = this;
    const done = totals.settled;
    const perConversation = done === 0 ? 0 : totals.runCost / done;
    if (totals.runCost + (this.#begun - done) * perConversation >= this.maxCost) this.#reached = true;
    return this.#reached;
  }
}
