import { describe, expect, it } from 'vitest';
import { createPool } from '../../src/models/pool.js';
import { createSimModel } from '../../src/models/sim.js';
import { rngFor } from '../../src/rng.js';

const model = (name: string) => createSimModel({ provider: 'sim', model: name });

describe('createPool', () => {
  it('rejects an empty pool, negative weights and all-zero weights', () => {
    expect(() => createPool([])).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected at least one model in the pool, got none]`);
    expect(() => createPool([{ model: model('a'), weight: -1 }])).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected the weight of sim/a to be a finite number ≥ 0, got \`-1\`]`);
    expect(() => createPool([{ model: model('a'), weight: 0 }])).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected at least one model with a positive weight, got all zero]`);
  });

  it('normalises weights that do not sum to one', () => {
    const pool = createPool([{ model: model('a'), weight: 3 }, { model: model('b'), weight: 1 }]);
    let a = 0;
    for (let i = 0; i < 4000; i += 1) if (pool.draw(rngFor(1, String(i), 'x')) === 0) a += 1;
    expect(Math.abs(a / 4000 - 0.75)).toBeLessThan(0.03);
  });

  it('keeps entries that name the same model apart (two servers for one model)', () => {
    const pool = createPool([
      { model: model('llama'), weight: 1 },
      { model: model('llama'), weight: 1 },
    ]);
    const drawn = new Set(Array.from({ length: 200 }, (_, i) => pool.draw(rngFor(2, String(i), 'x'))));
    expect(drawn).toEqual(new Set([0, 1]));
  });
});
