// interactionId: deterministic, injective over (persona_id, query_id), readable (`interaction_<persona>_<query>`) where unambiguous.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { interactionId } from '../src/types.js';

/** Ids as users write them: underscores, percent signs, slashes and the rest, never empty. */
const idText = fc.string({ unit: fc.constantFrom('_', '%', '/', 'p', 'q', '1', '5', 'F', ' ', '\n', 'é'), minLength: 1, maxLength: 8 });

describe('interactionId', () => {
  it('keeps PersonaGym\'s readable shape when the query id has no underscore', () => {
    expect(interactionId('persona_001', 'q1')).toBe('interaction_persona_001_q1');
    expect(interactionId('p_1', 'q')).toBe('interaction_p_1_q');
    expect(interactionId('a/b', 'c')).toBe('interaction_a/b_c');
  });

  it('regression: persona `p_1` with query `q` and persona `p` with query `1_q` get different ids', () => {
    expect(interactionId('p', '1_q')).not.toBe(interactionId('p_1', 'q'));
  });

  test.prop([idText, idText, idText, idText])('is injective: two different pairs never share an id', (p1, q1, p2, q2) => {
    fc.pre(p1 !== p2 || q1 !== q2);
    expect(interactionId(p1, q1)).not.toBe(interactionId(p2, q2));
  });

  test.prop([idText, idText])('is deterministic and readable exactly when that is unambiguous', (p, q) => {
    expect(interactionId(p, q)).toBe(interactionId(p, q));
    const readable = !q.includes('_') && !q.includes('%') && !p.includes('%');
    expect(interactionId(p, q) === `interaction_${p}_${q}`).toBe(readable);
  });
});
