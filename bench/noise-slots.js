#!/usr/bin/env node
// `npm run measure:noise`: how often noise alters what a user asked for, on a fixed set of realistic
// queries whose slots were labelled by hand (test/fixtures/noise/queries.json). For each configuration,
// every query is noised VERSIONS times (seeded, half casual and half formal personas) through the
// distractor's `result()`, as `personaflow noise` does, and the script counts the versions that
//   - alter a slot: a labelled slot no longer appears verbatim in the noisy text;
//   - alter a slot without saying so: the same, less the slots the result reports as dropped
//     (metadata.dropped), which the simulated user can still give when asked;
//   - move punctuation into a sentence: a . ? ! ; or : now attached to a word that did not carry it;
//   - label an unchanged text: noisy_text equals the input and applied_strategies is not empty.
// It reads only the library's public API from dist/, so the same script measures any build of it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import { parse, stringify } from 'yaml';
import { callModel, createDistractor, createSimModel, loadConfig, loadStrategyFile, rngFor, setUpDistractor } from '../dist/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VERSIONS = Number(process.env.NOISE_VERSIONS ?? 4);
const SEED = Number(process.env.NOISE_SEED ?? 42);
const { queries } = JSON.parse(await readFile(join(ROOT, 'test/fixtures/noise/queries.json'), 'utf8'));
const PERSONAS = [
  { communication_style: 'casual', age_band: '18-24', tech_proficiency: 'intermediate' },
  { communication_style: 'formal', age_band: '35-44', tech_proficiency: 'expert' },
];

const SENTENCE_MARKS = /[.?!;:]/;
/** Words with the sentence marks attached after them: [core, marks, final?]. */
function marked(text) {
  const words = text.match(/\S+/g) ?? [];
  return words.flatMap((word, i) => {
    const match = /^(.*?[\p{L}\p{N}])([^\p{L}\p{N}]+)$/u.exec(word);
    if (match === null || !SENTENCE_MARKS.test(match[2])) return [];
    return [[match[1].toLowerCase(), match[2].replace(/[^.?!;:]/g, '')[0], i === words.length - 1]];
  });
}

function editDistance(a, b) {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) current.push(Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    previous = current;
  }
  return previous[b.length];
}

/** A sentence mark in the noisy text sits on a word (or at a place, final or not) that did not carry it in the clean text. */
function punctuationMoved(clean, noisy) {
  const before = marked(clean);
  return marked(noisy).some(([core, mark, final]) => !before.some(([c, m, f]) => m === mark && f === final && editDistance(c, core) <= 2));
}

const lost = (slots, noisy) => slots.filter((slot) => !noisy.includes(slot));

async function measure(name, distractor) {
  const counts = { versions: 0, altered: 0, unreported: 0, moved: 0, unchangedLabelled: 0, unchanged: 0 };
  const examples = [];
  for (const [q, { text, slots }] of queries.entries()) {
    for (let v = 0; v < VERSIONS; v += 1) {
      const result = await lastValueFrom(distractor.result(text, { persona: PERSONAS[v % PERSONAS.length], rng: rngFor(SEED, `q${q}`, `noise/v${v}`), call: callModel }));
      const noisy = result.noisy_text;
      const dropped = Array.isArray(result.metadata?.dropped) ? result.metadata.dropped.map((d) => String(d).toLowerCase()) : [];
      const gone = lost(slots, noisy);
      counts.versions += 1;
      if (gone.length > 0) counts.altered += 1;
      if (gone.some((slot) => !dropped.some((d) => d.includes(slot.toLowerCase())))) {
        counts.unreported += 1;
        if (examples.length < 3) examples.push(`${JSON.stringify(noisy)} (lost ${gone.join(', ')})`);
      }
      if (punctuationMoved(text, noisy)) counts.moved += 1;
      if (noisy === text) counts.unchanged += 1;
      if (noisy === text && result.applied_strategies.length > 0) counts.unchangedLabelled += 1;
    }
  }
  return { name, ...counts, examples };
}

const work = await mkdtemp(join(tmpdir(), 'personaflow-noise-slots-'));
try {
  const { config } = await loadConfig(undefined);
  const sim = { model: createSimModel({ provider: 'sim', model: 'distractor-sim' }), temperature: 0.7, maxCompletionTokens: 512 };
  const bundled = parse(await readFile(join(ROOT, 'config/distractor_strategy.yaml'), 'utf8'));
  const surfaceOnly = join(work, 'surface.yaml');
  await writeFile(surfaceOnly, stringify({ ...bundled, layer_weights: { surface_noise: 1 } }));
  const strategies = await loadStrategyFile(join(ROOT, 'config/distractor_strategy.yaml'));
  const rows = [
    await measure('rules: default noise_strategies (typo, word_swap, word_deletion, word_insertion)', await setUpDistractor(config, work)),
    await measure('rules: typo + word_swap, each always', createDistractor({ activationProbability: 1, rules: [{ name: 'typo', probability: 1, intensity: 0.1 }, { name: 'word_swap', probability: 1, num_swaps: 1 }], strategies })),
    await measure('semantic on sim: surface noise only', await setUpDistractor(config, work, { semantic: true, model: sim, strategyFile: surfaceOnly })),
    await measure('semantic on sim: all three layers', await setUpDistractor(config, work, { semantic: true, model: sim })),
  ];
  const share = (n, d) => `${n}/${d} (${((100 * n) / d).toFixed(1)}%)`;
  const lines = [
    `Noise and slots: ${queries.length} labelled queries × ${VERSIONS} versions, seed ${SEED}`,
    '',
    '| configuration | slot altered | altered, not reported as dropped | punctuation moved | unchanged but labelled | unchanged |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.name} | ${share(r.altered, r.versions)} | ${share(r.unreported, r.versions)} | ${share(r.moved, r.versions)} | ${r.unchangedLabelled} | ${r.unchanged} |`),
    '',
    ...rows.filter((r) => r.examples.length > 0).map((r) => `${r.name}, e.g.:\n${r.examples.map((e) => `  ${e}`).join('\n')}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
