// Budget: --max-cost reached once the spend plus what is in flight would pass it, and then for good.
import { describe, expect, it } from 'vitest';
import { Budget } from '../../src/commands/budget.js';
import { UsageTotals } from '../../src/sinks/usage.js';
import type { Interaction } from '../../src/types.js';

/** Budget reads only the counts of outcomes: any interaction will do. */
const interaction = (): Interaction => ({ interaction_id: 'i', metadata: {} }) as unknown as Interaction;

describe('Budget', () => {
  const priced = (): UsageTotals => new UsageTotals({ m: { input: 1_000_000, output: 1_000_000 } });

  it('is never over without a limit', () => {
    const budget = new Budget(undefined, priced());
    for (let i = 0; i < 5; i += 1) budget.begin();
    expect(budget.over()).toBe(false);
    expect(budget.reached).toBe(false);
  });

  it('counts what the conversations in flight will likely cost at this run\'s average, and stays reached', () => {
    const totals = priced();
    const budget = new Budget(3, totals);
    for (let i = 0; i < 3; i += 1) budget.begin();
    // One conversation done for $1: two in flight are likely $2 more, $3 in all.
    totals.call('assistant', { provider: 'openai', model: 'm' }, { input: 1, output: 0 }, { operation: 'reply', failed: false });
    totals.outcome({ ok: true, interaction: interaction() });
    expect(budget.begun).toBe(3);
    expect(budget.over()).toBe(true);
    expect(budget.reached).toBe(true);
  });

  it('is not over while the likely spend stays under the limit', () => {
    const totals = priced();
    const budget = new Budget(10, totals);
    budget.begin();
    budget.begin();
    totals.call('assistant', { provider: 'openai', model: 'm' }, { input: 1, output: 0 }, { operation: 'reply', failed: false });
    totals.outcome({ ok: true, interaction: interaction() });
    expect(budget.over()).toBe(false);
  });
});
