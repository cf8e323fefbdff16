// The semantic distractor keeps the facts (every reported slot and protected token checked, re-asked on a
// loss), hands back what it dropped and what the turn now means, and asks for one or two changes by length.
import { readFileSync } from 'node:fs';
import { lastValueFrom } from 'rxjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { LAYERS, type Config, type Layer, type StrategyFile } from '../../src/config/schema.js';
import { createDistractor, type DistractorOptions } from '../../src/distractor/distractor.js';
import { DEFAULT_STRATEGY_FILE, loadStrategyFile, setUpDistractor } from '../../src/distractor/setup.js';
import { callModel } from '../../src/models/call.js';
import { createSimModel } from '../../src/models/sim.js';
import type { ChatRequest } from '../../src/chat.js';
import { rngFor } from '../../src/rng.js';
import { scripted } from '../helpers/fixtures.js';

const QUERIES = (JSON.parse(readFileSync(new URL('../fixtures/noise/queries.json', import.meta.url), 'utf8')) as { queries: { text: string; slots: string[] }[] }).queries;
const TEMPLATES: Record<Layer, string> = { surface_noise: 'S {text} | {strategies} | {noise_level}', incomplete_info: 'I {text} | {strategies}', semantic_ambiguity: 'A {text} | {strategies}' };
const TEXT = 'How do I deduplicate a CSV file by email in Python?';

let bundled: StrategyFile;
let config: Config;
beforeAll(async () => {
  bundled = await loadStrategyFile(DEFAULT_STRATEGY_FILE);
  config = (await loadConfig(undefined)).config;
});

const only = (layer: Layer): StrategyFile => ({ ...bundled, layer_weights: { [layer]: 1 } });
const askOf = (request: ChatRequest) => request.hints?.distractor ?? (() => { throw new Error('no distractor hints'); })();

function semantic(reply: Parameters<typeof scripted>[0], overrides: Partial<DistractorOptions> = {}) {
  const fake = scripted(reply, { provider: 'fake', model: 'noiser' });
  const distractor = createDistractor({ activationProbability: 1, rules: [], strategies: bundled, semantic: { model: fake.model, templates: TEMPLATES, validationRetries: 2 }, ...overrides });
  return { distractor, fake };
}
const context = (key = 'k', purpose = 'noise/initial', persona: Record<string, unknown> = { communication_style: 'casual' }, initial?: boolean) => ({ persona, rng: rngFor(42, key, purpose), call: callModel, ...(initial === undefined ? {} : { initial }) });

describe('semantic distractor: lost details are rejected and asked again', () => {
  it('rejects a rewrite that silently loses a protected token, naming it, and accepts the one that reports it as dropped', async () => {
    const { distractor, fake } = semantic((_request, call) =>
      call === 1
        ? JSON.stringify({ intent: 'dedupe', slots: { format: 'CSV' }, noisy_text: 'how do i deduplicate a CSV file by email', slots_dropped: [] })
        : JSON.stringify({ intent: 'dedupe', slots: { format: 'CSV', language: 'Python' }, noisy_text: 'how do i deduplicate a CSV file by email', slots_dropped: ['language'], means: 'how to deduplicate a CSV file by email, language not said' }),
    { strategies: only('incomplete_info') });
    const noised = await lastValueFrom(distractor.noise(TEXT, context()));
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1]?.messages.at(-1)?.content).toMatch(/rejected \(a detail changed or left out without being reported \(Python\)/);
    expect(noised).toMatchObject({ clean: TEXT, sent: 'how do i deduplicate a CSV file by email', dropped: ['Python'], means: 'how to deduplicate a CSV file by email, language not said' });
    expect(noised.semantic?.metadata).toMatchObject({ slots_dropped: ['language'], dropped: ['Python'], rejected_answers: 1 });
  });

  it('under surface noise, rejects a typo inside a key term and a dropped detail, and keeps the meaning', async () => {
    const answers = [
      JSON.stringify({ noisy_text: 'how do i deduplicate a CSV fiel by email in Pyhton?' }),
      JSON.stringify({ slots: { language: 'Python' }, slots_dropped: ['language'], noisy_text: 'how do i deduplicate a CSV file by email?' }),
      JSON.stringify({ noisy_text: 'hw do i deduplicate a CSV file by email in python??' }),
    ];
    const { distractor, fake } = semantic((_request, call) => answers[call - 1] as string, { strategies: only('surface_noise') });
    const noised = await lastValueFrom(distractor.noise(TEXT, context()));
    expect(fake.requests.map((r) => r.messages.at(-1)?.content.match(/rejected \(([^)]*\([^)]*\))/)?.[1])).toEqual([undefined, 'a detail changed under surface noise (file, Python)', 'surface noise dropped a detail (Python)']);
    expect(noised).toMatchObject({ sent: 'hw do i deduplicate a CSV file by email in python??', dropped: [], means: TEXT });
  });

  it('checks the slots the model reported too: a reported value must survive unless dropped', async () => {
    const text = 'Find me a cheap hotel near the beach.';
    const { distractor, fake } = semantic(
      (_request, call) => (call === 1 ? JSON.stringify({ slots: { price: 'cheap' }, noisy_text: 'find me a hotel near the beach pls' }) : JSON.stringify({ slots: { price: 'cheap' }, noisy_text: 'find me a cheap hotel near the beach pls' })),
      { strategies: only('surface_noise') },
    );
    const noised = await lastValueFrom(distractor.noise(text, context()));
    expect(fake.requests[1]?.messages.at(-1)?.content).toMatch(/\(cheap\)/);
    expect(noised.sent).toBe('find me a cheap hotel near the beach pls');
  });
});

describe('semantic distractor: one or two changes, scaled by length and persona', () => {
  it('asks for one strategy on a text under 12 words and at most two on a longer one', async () => {
    const { distractor, fake } = semantic((request) => JSON.stringify({ noisy_text: `${askOf(request).text} pls` }));
    const long = 'Could you please help me write a Python script that deduplicates 10,000 rows in a CSV file by email address?';
    for (let i = 0; i < 60; i += 1) {
      await lastValueFrom(distractor.result('ok and csv?', context(`s${i}`, 'noise/v0')));
      await lastValueFrom(distractor.result(long, context(`l${i}`, 'noise/v0')));
    }
    const counts = fake.requests.map((r) => ({ text: askOf(r).text, n: askOf(r).strategies.length }));
    expect(counts.filter((c) => c.text === 'ok and csv?').every((c) => c.n === 1)).toBe(true);
    const longCounts = counts.filter((c) => c.text === long).map((c) => c.n);
    expect(Math.max(...longCounts)).toBe(2);
    expect(Math.min(...longCounts)).toBe(1);
    // The prompt lists exactly the strategies asked for.
    for (const request of fake.requests) expect(request.messages[0]?.content.match(/\d+\. \*\*/g) ?? []).toHaveLength(askOf(request).strategies.length);
  });

  it('tells the model how many slips this person makes', async () => {
    const { distractor, fake } = semantic((request) => JSON.stringify({ noisy_text: `${askOf(request).text} pls` }), { strategies: only('surface_noise') });
    await lastValueFrom(distractor.result(TEXT, context('a', 'noise/v0', { communication_style: 'formal', tech_proficiency: 'expert' })));
    await lastValueFrom(distractor.result(TEXT, context('b', 'noise/v0', { communication_style: 'casual', age_band: 'u18' })));
    expect(fake.requests[0]?.messages[0]?.content).toMatch(/\| very light: at most one small slip/);
    expect(fake.requests[1]?.messages[0]?.content).toMatch(/\| casual: a few slips/);
  });
});

describe('semantic distractor: heavier layers on the first message only', () => {
  it('a follow-up gets surface noise only, or none when the file weighs only the heavier layers', async () => {
    const { distractor, fake } = semantic((request) => JSON.stringify({ noisy_text: `${askOf(request).text} pls` }));
    for (let i = 0; i < 40; i += 1) await lastValueFrom(distractor.noise('and what about the other columns', context(`k${i}`, 'noise/turn/1', {}, false)));
    expect(new Set(fake.requests.map((r) => askOf(r).layer))).toEqual(new Set(['surface_noise']));
    const heavyOnly = semantic((request) => JSON.stringify({ noisy_text: `${askOf(request).text} pls` }), { strategies: { ...bundled, layer_weights: { incomplete_info: 1, semantic_ambiguity: 1 } } });
    const later = await lastValueFrom(heavyOnly.distractor.noise('and what about the other columns', context('k', 'noise/turn/1', {}, false)));
    expect(heavyOnly.fake.requests).toHaveLength(0);
    expect(later).toMatchObject({ sent: 'and what about the other columns', dropped: [], semantic: { layer: 'skipped', metadata: { reason: 'heavier layers noise the initial query only' } } });
    const first = await lastValueFrom(heavyOnly.distractor.noise('and what about the other columns', context('k', 'noise/initial')));
    expect(first.semantic?.layer).toMatch(/incomplete_info|semantic_ambiguity/);
  });

  it('every_turn lets them noise follow-ups too', async () => {
    const { distractor, fake } = semantic((request) => JSON.stringify({ noisy_text: `${askOf(request).text} pls` }), { strategies: only('incomplete_info'), heavyLayers: 'every_turn' });
    await lastValueFrom(distractor.noise('and what about the other columns', context('k', 'noise/turn/1', {}, false)));
    expect(askOf(fake.requests[0]!).layer).toBe('incomplete_info');
  });

  it('refuses an unknown heavyLayers value', () => {
    expect(() => semantic(() => '', { heavyLayers: 'sometimes' as never })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`heavyLayers\` to be initial_query or every_turn, got \`sometimes\`]`);
  });
});

describe('the sim model answers honestly', () => {
  it('on the labelled queries, every layer: a changed text, strategies that did change it, every labelled slot kept or reported as dropped', async () => {
    const sim = { model: createSimModel({ provider: 'sim', model: 'distractor-sim' }), temperature: 0.7, maxCompletionTokens: 512 };
    const distractor = await setUpDistractor(config, '.', { semantic: true, model: sim });
    const layers = new Set<string>();
    for (const [q, { text, slots }] of QUERIES.entries()) {
      for (let v = 0; v < 3; v += 1) {
        const result = await lastValueFrom(distractor.result(text, { persona: v === 0 ? { communication_style: 'formal' } : { communication_style: 'casual' }, rng: rngFor(42, `q${q}`, `noise/v${v}`), call: callModel }));
        layers.add(result.layer);
        expect(LAYERS as readonly string[]).toContain(result.layer);
        expect(result.noisy_text).not.toBe(text);
        expect(result.applied_strategies.length).toBeGreaterThan(0);
        const dropped = ((result.metadata.dropped ?? []) as string[]).map((d) => d.toLowerCase());
        for (const slot of slots.filter((s) => !result.noisy_text.toLowerCase().includes(s.toLowerCase()))) {
          expect(result.layer, `${slot} lost under surface noise: ${result.noisy_text}`).not.toBe('surface_noise');
          expect(dropped.some((d) => d.includes(slot.toLowerCase()) || slot.toLowerCase().includes(d)), `${slot} lost without a word: ${result.noisy_text}`).toBe(true);
        }
      }
    }
    expect(layers.size).toBe(3);
  });
});
