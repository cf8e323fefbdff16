import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { SAMPLE_SCHEMAS, hadGuardRejections, interactionInputSchema, sampleId, toOpenAI, toPersonaGym, toSample, toShareGPT, type Format, type InteractionInput } from '../../src/export/samples.js';
import { interaction } from './arbitraries.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/export/${name}`, import.meta.url), 'utf8');
const fixtureLines = (name: string): unknown[] =>
  fixture(name)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown);

const input = interactionInputSchema.parse(JSON.parse(fixture('interaction.ndjson')));

/** What each format is checked against: the hand-written line, and its keys in order. */
function expectLine(actual: unknown, expected: unknown): void {
  expect(actual).toEqual(expected);
  expect(Object.keys(actual as object)).toEqual(Object.keys(expected as object));
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));
}

describe('formats against hand-written fixtures', () => {
  it('personagym: PersonaGym TrainingSample, defaults', () => {
    expectLine(toPersonaGym(input), fixtureLines('personagym.jsonl')[0]);
  });

  it('personagym: every training_data.format switch off, and --clean', () => {
    const sample = toPersonaGym(input, { clean: true, include: { include_persona: false, include_trajectory: false, include_full_conversation: false, include_distractor_versions: false, include_metadata: false } });
    expectLine(sample, fixtureLines('personagym.jsonl')[1]);
  });

  it('openai: no system message by default; --system persona builds one from the features', () => {
    const [plain, persona] = fixtureLines('openai.jsonl');
    expectLine(toOpenAI(input), plain);
    expectLine(toOpenAI(input, { system: 'none' }), plain);
    expectLine(toOpenAI(input, { system: 'persona' }), persona);
  });

  it('sharegpt: --clean puts the clean user text back; --system TEXT opens with a system turn', () => {
    const [clean, system] = fixtureLines('sharegpt.jsonl');
    expectLine(toShareGPT(input, { clean: true }), clean);
    expectLine(toShareGPT(input, { system: 'Be brief.' }), system);
  });

  it('--system persona prefers the system prompt the interaction recorded', () => {
    const withPrompt = { ...input, metadata: { ...input.metadata, system_prompt: 'You help night-shift nurses.' } };
    expect(toOpenAI(withPrompt, { system: 'persona' }).messages[0]).toEqual({ role: 'system', content: 'You help night-shift nurses.' });
  });

  it('every fixture line passes its format schema', () => {
    for (const [format, name] of [['personagym', 'personagym.jsonl'], ['openai', 'openai.jsonl'], ['sharegpt', 'sharegpt.jsonl']] as const) {
      for (const line of fixtureLines(name)) expect(SAMPLE_SCHEMAS[format].safeParse(line).success).toBe(true);
    }
  });

  it('the schemas reject what trainers reject: an empty message, no assistant turn, a system message in the middle', () => {
    expect(SAMPLE_SCHEMAS.openai.safeParse({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: '' }] }).success).toBe(false);
    expect(SAMPLE_SCHEMAS.openai.safeParse({ messages: [{ role: 'user', content: 'hi' }] }).success).toBe(false);
    expect(SAMPLE_SCHEMAS.openai.safeParse({ messages: [{ role: 'user', content: 'hi' }, { role: 'system', content: 'x' }, { role: 'assistant', content: 'ok' }] }).success).toBe(false);
    expect(SAMPLE_SCHEMAS.sharegpt.safeParse({ conversations: [{ from: 'human', value: 'hi' }, { from: 'gpt', value: 'ok' }], extra: 1 }).success).toBe(false);
  });

  it('the chat schemas ask for what ShareGPT trainers check: user/assistant alternating, the user first, the assistant last', () => {
    const openai = (...roles: string[]) => SAMPLE_SCHEMAS.openai.safeParse({ messages: roles.map((role) => ({ role, content: 'x' })) });
    const sharegpt = (...from: string[]) => SAMPLE_SCHEMAS.sharegpt.safeParse({ conversations: from.map((f) => ({ from: f, value: 'x' })) });
    expect(openai('user', 'assistant').success).toBe(true);
    expect(openai('system', 'user', 'assistant', 'user', 'assistant').success).toBe(true);
    expect(sharegpt('system', 'human', 'gpt').success).toBe(true);
    expect(openai('user', 'assistant', 'user').error?.issues[0]?.message).toMatchInlineSnapshot(`"the last turn is user, must be assistant (nothing answers it)"`);
    expect(sharegpt('gpt', 'human', 'gpt').error?.issues[0]?.message).toMatchInlineSnapshot(`"turn 0 is gpt, expected human (human and gpt alternate, human first)"`);
    expect(sharegpt('human', 'human', 'gpt').error?.issues[0]?.message).toMatchInlineSnapshot(`"turn 1 is human, expected gpt (human and gpt alternate, human first)"`);
    expect(sharegpt('system').error?.issues[0]?.message).toMatchInlineSnapshot(`"needs human and gpt turns"`);
    expect(sharegpt('system', 'human', 'system', 'gpt').success).toBe(false);
  });

  it('openai and sharegpt leave out a closing user turn nobody answered and assistant turns before the first user turn', () => {
    const chat = interactionInputSchema.parse({
      interaction_id: 'i1',
      persona_id: 'p',
      messages: [
        { role: 'assistant', content: 'Hi! How can I help?' },
        { role: 'user', content: 'plan my week' },
        { role: 'assistant', content: 'Sure.' },
        { role: 'user', content: 'thanks, bye' },
      ],
    });
    expect(toShareGPT(chat, { system: 'Be brief.' })).toEqual({ conversations: [{ from: 'system', value: 'Be brief.' }, { from: 'human', value: 'plan my week' }, { from: 'gpt', value: 'Sure.' }] });
    expect(toOpenAI(chat).messages).toEqual([{ role: 'user', content: 'plan my week' }, { role: 'assistant', content: 'Sure.' }]);
    // PersonaGym's TrainingSample keeps the conversation whole.
    expect(toPersonaGym(chat).full_conversation).toHaveLength(4);
  });

  it('guard rejections are read from metadata.guard', () => {
    expect(hadGuardRejections(input)).toBe(true);
    expect(hadGuardRejections({ ...input, metadata: { ...input.metadata, guard: {} } })).toBe(false);
    expect(hadGuardRejections({ ...input, metadata: { ...input.metadata, guard: { echo: 0 } } })).toBe(false);
  });

  it('reads PersonaGym interactions that lack num_turns, original_query and metadata', () => {
    const bare = interactionInputSchema.parse({ interaction_id: 'i1', persona_id: 'p', features: { role: 'x' }, messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], noisy_versions: {} });
    const sample = toPersonaGym(bare);
    expect(sample).toMatchObject({ sample_id: 'sample_i1', persona_features: { role: 'x' }, original_query: 'a', initial_query: 'a', num_turns: 1, prompt_trajectory: ['a'], metadata: { interaction_id: 'i1' } });
  });
});

/** The user turns of each format, in order. */
function userTurnsOf(format: Format, sample: unknown): string[] {
  if (format === 'personagym') return (sample as { prompt_trajectory: string[] }).prompt_trajectory;
  if (format === 'openai') return (sample as { messages: { role: string; content: string }[] }).messages.filter((m) => m.role === 'user').map((m) => m.content);
  return (sample as { conversations: { from: string; value: string }[] }).conversations.filter((t) => t.from === 'human').map((t) => t.value);
}

describe('round trip', () => {
  test.prop([interaction(), fc.constantFrom<Format>('personagym', 'openai', 'sharegpt'), fc.boolean(), fc.constantFrom('none', 'persona', 'Be brief.')])(
    'every user turn appears in order (as the assistant saw it, or clean with --clean), and the sample passes its schema',
    (raw, format, clean, system) => {
      const parsed: InteractionInput = interactionInputSchema.parse(raw);
      const sample = toSample(format, parsed, { clean, ...(format === 'personagym' ? {} : { system }) });
      expect(SAMPLE_SCHEMAS[format].safeParse(sample).success).toBe(true);
      const expected = raw.messages.filter((m) => m.role === 'user').map((m) => (clean ? (m.metadata.clean_version as string) : m.content));
      expect(userTurnsOf(format, sample)).toEqual(expected);
      if (format === 'personagym') {
        const full = (sample as { full_conversation: { role: string; content: string }[] }).full_conversation;
        expect(full.map((m) => m.role)).toEqual(raw.messages.map((m) => m.role));
        expect(full.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual(raw.messages.filter((m) => m.role === 'assistant').map((m) => m.content));
      }
    },
  );
});

describe('sampleId', () => {
  it('regression: persona p_1 × query q and persona p × query 1_q get different sample ids', () => {
    const of = (persona: string, query: string) => sampleId({ interaction_id: "i", persona_id: persona, metadata: { query_id: query } } as unknown as InteractionInput);
    expect(of('p_1', 'q')).toBe('sample_p_1_q');
    expect(of('p', '1_q')).not.toBe(of('p_1', 'q'));
  });
});
