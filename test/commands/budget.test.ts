// Budget: --max-cost is a ceiling: a conversation starts only if its worst case still fits, so the spend stays under it.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { Budget, tokensOf, worstCase, type CostShape } from '../../src/commands/budget.js';
import type { Interaction, Outcome, Task } from '../../src/types.js';

const task = (queryId: string, overrides: Partial<Task> = {}): Task => ({
  personaId: 'p',
  personaFeatures: {},
  systemPrompt: undefined,
  queryId,
  originalQuery: 'q',
  initialQuery: 'q',
  targetTurns: 2,
  key: `p/${queryId}`,
  source: 'in:1',
  ...overrides,
});
const done = (queryId: string): Outcome => ({ ok: true, interaction: { persona_id: 'p', metadata: { query_id: queryId } } as unknown as Interaction });

describe('Budget', () => {
  it('admits everything without a limit', async () => {
    const budget = new Budget(undefined, () => 1e9, () => 1e9);
    for (let i = 0; i < 5; i += 1) expect(await budget.admit(task(`q${i}`))).toBe(true);
    expect(budget.begun).toBe(5);
    expect(budget.reached).toBe(false);
  });

  it('regression: holds each conversation\'s worst case, so nothing starts that could pass the ceiling (0.0005 spent $0.0106)', () => {
    let spent = 0;
    const budget = new Budget(10, () => spent, () => 3);
    expect([budget.tryAdmit(task('a')), budget.tryAdmit(task('b')), budget.tryAdmit(task('c'))]).toEqual(['admitted', 'admitted', 'admitted']);
    // 9 held: a fourth worst case of 3 would make 12; it waits for a reservation to come back.
    expect(budget.tryAdmit(task('d'))).toBe('wait');
    // `a` spent 1 of its 3: 1 + 6 held + 3 fits.
    spent = 1;
    budget.settle(done('a'));
    expect(budget.reserved).toBe(6);
    expect(budget.tryAdmit(task('d'))).toBe('admitted');
    expect(budget.tryAdmit(task('e'))).toBe('wait');
    expect(budget.reached).toBe(false);
  });

  it('is reached for good when a conversation does not fit with nothing in flight', () => {
    const budget = new Budget(5, () => 3, () => 3);
    expect(budget.tryAdmit(task('a'))).toBe('refused');
    expect(budget.reached).toBe(true);
    expect(budget.tryAdmit(task('b'))).toBe('refused');
  });

  it('admit waits while conversations in flight may give back enough, then starts or refuses', async () => {
    let spent = 0;
    const budget = new Budget(10, () => spent, () => 4);
    expect(await budget.admit(task('a'))).toBe(true);
    expect(await budget.admit(task('b'))).toBe(true);
    const third = budget.admit(task('c'));
    let decided: boolean | undefined;
    void third.then((verdict) => (decided = verdict));
    await Promise.resolve();
    expect(decided).toBeUndefined();
    // `a` cost 1: 1 + 4 held + 4 fits.
    spent = 1;
    budget.settle(done('a'));
    expect(await third).toBe(true);
    // `b` and `c` cost 4 each: 9 spent, nothing in flight, 4 more cannot fit.
    spent = 9;
    const fourth = budget.admit(task('d'));
    budget.settle(done('b'));
    budget.settle(done('c'));
    expect(await fourth).toBe(false);
    expect(budget.reached).toBe(true);
  });

  it('counts what the directory spent before (a resume) against the same ceiling', async () => {
    const budget = new Budget(5, () => 4.5, () => 1);
    expect(await budget.admit(task('a'))).toBe(false);
    expect(budget.begun).toBe(0);
  });

  // The promise: whatever the worst cases, and whatever each conversation really spends up to its worst
  // case, in whatever order conversations end, the spend never passes the ceiling.
  test.prop([fc.array(fc.tuple(fc.double({ min: 0.01, max: 5, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 1, maxLength: 40 }), fc.double({ min: 0.5, max: 30, noNaN: true }), fc.integer({ min: 1, max: 8 }), fc.array(fc.nat(), { maxLength: 80 })])(
    'the spend stays within the ceiling when conversations spend at most their worst case',
    (conversations, ceiling, window, picks) => {
      let spent = 0;
      const worst = new Map(conversations.map(([w], i) => [`q${i}`, w]));
      const budget = new Budget(ceiling, () => spent, (t) => worst.get(t.queryId) as number);
      const running: number[] = [];
      let next = 0;
      let pick = 0;
      while (true) {
        while (running.length < window && next < conversations.length && budget.tryAdmit(task(`q${next}`)) === 'admitted') running.push(next++);
        if (running.length === 0) break;
        const at = (picks[pick++] ?? 0) % running.length;
        const [i] = running.splice(at, 1) as [number];
        const [w, share] = conversations[i]!;
        spent += w * share;
        budget.settle(done(`q${i}`));
        expect(spent).toBeLessThanOrEqual(ceiling + 1e-9);
      }
    },
  );
});

describe('worstCase', () => {
  const shape: CostShape = {
    minTurns: 1,
    maxTurns: 3,
    assistant: { maxTokens: 100, price: { input: 1_000_000, output: 1_000_000 }, promptTokens: 0 },
    user: { maxTokens: 10, price: { input: 1_000_000, output: 1_000_000 }, promptTokens: 50 },
  };

  it('adds up every call at its cap, with the history growing each turn', () => {
    // $1 a token. Opening `q` is 1 token; an answer 100 + 8, a user turn 10 + 8; persona `{}` 1 token.
    const t = task('q1', { targetTurns: 2 });
    const assistant1 = 1 + 8 + 100;
    const simulator1 = 50 + 1 + 1 + 108 + 10;
    const assistant2 = 1 + 8 + (18 + 108) + 100;
    expect(worstCase(t, shape)).toBeCloseTo(assistant1 + simulator1 + assistant2);
  });

  it('grows with the turns, and counts style transfer and the distractor when they are on', () => {
    const short = worstCase(task('a', { targetTurns: 1 }), shape);
    const long = worstCase(task('a', { targetTurns: 3 }), shape);
    expect(long).toBeGreaterThan(short);
    const helper = { maxTokens: 50, price: { input: 1_000_000, output: 1_000_000 }, promptTokens: 20 };
    expect(worstCase(task('a', { targetTurns: 3 }), { ...shape, distractor: helper, styleTransfer: helper })).toBeGreaterThan(long);
  });

  it('counts the judge\'s review of the whole conversation when a judge is on', () => {
    // $1 a token. Two turns: the conversation is the opening (1 + 8) and two exchanges of 18 + 108.
    const t = task('q1', { targetTurns: 2 });
    const judge = { maxTokens: 40, price: { input: 1_000_000, output: 1_000_000 }, promptTokens: 100 };
    const review = 100 + 1 + 1 + 2 * (18 + 108) + 40;
    expect(worstCase(t, { ...shape, judge }) - worstCase(t, shape)).toBeCloseTo(review);
  });

  it('estimates tokens on the high side: a byte-level token is never shorter than a byte, so bytes / 3 over-counts English', () => {
    expect(tokensOf('hello world')).toBe(4);
    expect(tokensOf('日本語')).toBe(3);
  });
});
