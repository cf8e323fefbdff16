// Prices: which models cost what, and how a run's cost is counted from them.
import { describe, expect, it } from 'vitest';
import { UsageTotals, priceOf, type PriceTable } from '../../src/sinks/usage.js';

const prices: PriceTable = { 'gpt-4o-mini': { input: 0.15, output: 0.6 }, 'openrouter/gpt-4o-mini': { input: 0.2, output: 0.8 } };

describe('priceOf', () => {
  it('takes provider/model before the bare model name', () => {
    expect(priceOf(prices, 'openrouter', 'gpt-4o-mini')).toEqual({ input: 0.2, output: 0.8 });
    expect(priceOf(prices, 'openai', 'gpt-4o-mini')).toEqual({ input: 0.15, output: 0.6 });
  });

  it('knows that sim and a local llama model cost nothing, and that an unlisted hosted model has no price', () => {
    expect(priceOf({}, 'sim', 'gpt-4o')).toEqual({ input: 0, output: 0 });
    expect(priceOf({}, 'llama', '/models/m.gguf')).toEqual({ input: 0, output: 0 });
    expect(priceOf({}, 'openai', 'gpt-4o')).toBeUndefined();
  });
});

describe('UsageTotals cost', () => {
  it('adds each call at its model price, and lists unpriced models instead of counting them free', () => {
    const usage = new UsageTotals(prices);
    usage.call('assistant', { provider: 'openai', model: 'gpt-4o-mini' }, { input: 1_000_000, output: 500_000 });
    usage.call('user_simulator', { provider: 'llama', model: 'm.gguf' }, { input: 900, output: 90 });
    usage.call('assistant', { provider: 'openai', model: 'mystery' }, { input: 10, output: 10 });
    expect(usage.runCost).toBeCloseTo(0.15 + 0.3, 10);
    expect(usage.unpriced).toEqual(['openai/mystery']);
    expect(usage.cost()).toMatchObject({ total: expect.closeTo(0.45, 10) as unknown, by_model: { 'openai/gpt-4o-mini': expect.closeTo(0.45, 10) as unknown, 'llama/m.gguf': 0 }, unpriced_models: ['openai/mystery'] });
  });
});
