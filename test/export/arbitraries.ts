// fast-check arbitraries for export tests: interactions shaped like generate writes them, noise and guards included.
import { fc } from '@fast-check/vitest';

export interface TestMessage {
  role: 'user' | 'assistant';
  content: string;
  timestamp: string;
  metadata: Record<string, unknown>;
}
export interface TestInteraction {
  interaction_id: string;
  persona_id: string;
  persona_features: Record<string, unknown>;
  original_query: string;
  initial_query: string;
  messages: TestMessage[];
  num_turns: number;
  metadata: Record<string, unknown>;
}

const text = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => s.trim() !== '');

/** One user turn: the clean text and, maybe, the noisy text the assistant saw. */
const userTurn = fc.record({ clean: text, noisy: fc.option(text, { nil: undefined }) });

/** An interaction of persona `persona_<p>` and query `q<q>` with 1-5 exchanges. */
export const interaction = (personas = 20): fc.Arbitrary<TestInteraction> =>
  fc
    .record({
      p: fc.integer({ min: 0, max: personas - 1 }),
      q: fc.integer({ min: 0, max: 1000 }),
      turns: fc.array(fc.record({ user: userTurn, assistant: text }), { minLength: 1, maxLength: 5 }),
      role: fc.constantFrom('nurse', 'engineer', 'student'),
      guard: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    })
    .map(({ p, q, turns, role, guard }) => {
      const messages: TestMessage[] = turns.flatMap(({ user, assistant }, turn) => [
        { role: 'user' as const, content: user.noisy ?? user.clean, timestamp: '2026-01-01T00:00:00.000Z', metadata: { turn, ...(turn === 0 ? { is_initial: true } : { is_followup: true }), clean_version: user.clean, was_noised: user.noisy !== undefined && user.noisy !== user.clean } },
        { role: 'assistant' as const, content: assistant, timestamp: '2026-01-01T00:00:00.000Z', metadata: { turn, model: 'm', provider: 'sim' } },
      ]);
      const first = turns[0]!.user;
      return {
        interaction_id: `interaction_persona_${p}_q${q}`,
        persona_id: `persona_${p}`,
        persona_features: { role },
        original_query: first.clean,
        initial_query: first.clean,
        messages,
        num_turns: turns.length,
        metadata: { created_at: '2026-01-01T00:00:00.000Z', query_id: `q${q}`, distractor_applied: false, distractor_type: null, noisy_versions: null, assistant_model: { provider: 'sim', model: 'm' }, guard: guard === undefined ? {} : { echo: guard }, usage: {} },
      };
    });

/** The same interactions, each with a query of its own (`q<index>`), so no two share a sample id. */
export const withDistinctIds = (items: readonly TestInteraction[]): TestInteraction[] =>
  items.map((item, n) => ({ ...item, interaction_id: `interaction_${item.persona_id}_q${n}`, metadata: { ...item.metadata, query_id: `q${n}` } }));

export const ndjson = (items: readonly unknown[]): string => items.map((item) => `${JSON.stringify(item)}\n`).join('');

/** Everything an async generator yields. */
export async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}
