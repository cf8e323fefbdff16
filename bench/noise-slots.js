#!/usr/bin/env node
// `npm run measure:noise`: how often noise alters what a user asked for, on a fixed set of realistic
// queries whose slots were labelled by hand (test/fixtures/noise/queries.json). For each configuration,
// every query is noised VERSIONS times (seeded, half casual and half formal personas) through the
// distractor's `result()`, as `personaflow noise` does, and the script counts the versions that
//   - alter a slot: a labelled slot no longer appears verbatim in the noisy text;
//   - alter a slot without saying so: the same, less the slots the result reports as dropped
//     (metadata.dropped), which the simulated user can still give when asked;
//   - move punctuation into a sentence: a . ? ! ; or : now splits words of one sentence (or joins two);
//   - label an unchanged text: noisy_text equals the input and applied_strategies is not empty.
// It reads only the library's public API from dist/, so the same script measures any build of it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import { parse, stringify } from 'yaml';
// NOISE_DIST=/path/to/another/build/dist measures another build of the library (the code before a change).
const { callModel, createDistractor, createSimModel, loadConfig, loadStrategyFile, rngFor, setUpDistractor } = await import(process.env.NOISE_DIST === undefined ? '../dist/index.js' : `${process.env.NOISE_DIST}/index.js`);

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The measured build's own config/ (its strategy file's descriptions are in the prompts `sim` answers). */
const CONFIG = process.env.NOISE_DIST === undefined ? join(ROOT, 'config') : join(process.env.NOISE_DIST, '..', 'config');
const VERSIONS = Number(process.env.NOISE_VERSIONS ?? 4);
const SEED = Number(process.env.NOISE_SEED ?? 42);
const { queries } = JSON.parse(await readFile(join(ROOT, 'test/fixtures/noise/queries.json'), 'utf8'));
const PERSONAS = [
  { communication_style: 'casual', age_band: '18-24', tech_proficiency: 'intermediate' },
  { communication_style: 'formal', age_band: '35-44', tech_proficiency: 'expert' },
];

/** The words of a text, lowercased letters and digits only, each with the number of its sentence (a . ? ! ; or : after a word ends one). */
function sentences(text) {
  let sentence = 0;
  // A quoted phrase or code counts as one word: its own punctuation ends no sentence of the request.
  const unquoted = text.replace(/```[\s\S]*?```|`[^`]*`|"[^"]*"|“[^”]*”|(?<![\p{L}\p{N}])'[^']*'(?![\p{L}\p{N}])/gu, 'quoted');
  return (unquoted.match(/\S+/g) ?? []).flatMap((word) => {
    const core = word.toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');
    const entry = core === '' ? [] : [{ core, sentence }];
    if (/[.?!;:]["')\]]*$/u.test(word)) sentence += 1;
    return entry;
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

/** The same word, or a typo of a word of four letters or more (at most a third of it edited). */
const sameWord = (a, b) => a === b || (b.length >= 4 && editDistance(a, b) <= Math.max(1, Math.floor(b.length / 3)));

/**
 * Punctuation moved into a sentence: two words of the clean text that shared a sentence are now split by a
 * sentence mark, or two that were split now share one ("How do I profile slow a query? PostgreSQL"). The
 * noisy words are aligned with the clean ones by a longest common subsequence (typos allowed), then a word
 * left out of it is paired with the same clean word within two words of its aligned neighbours (a swap);
 * words the noise added (fillers, notes before or after the request) align with nothing and do not count.
 */
function punctuationMoved(clean, noisy) {
  const a = sentences(clean);
  const b = sentences(noisy);
  const table = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i -= 1) {
    for (let j = b.length - 1; j >= 0; j -= 1) table[i][j] = sameWord(a[i].core, b[j].core) ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
  }
  const matchOf = new Array(b.length).fill(-1);
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    if (sameWord(a[i].core, b[j].core) && table[i][j] === table[i + 1][j + 1] + 1) {
      matchOf[j] = i;
      i += 1;
      j += 1;
    } else if (table[i + 1][j] >= table[i][j + 1]) i += 1;
    else j += 1;
  }
  // A word a swap moved falls out of the common subsequence: pair it with the same clean word nearby (within
  // two words of where its aligned neighbours are), which an added note's words never are.
  const used = new Set(matchOf.filter((i) => i >= 0));
  for (let j = 0; j < b.length; j += 1) {
    if (matchOf[j] >= 0) continue;
    const before = matchOf.slice(0, j).filter((i) => i >= 0).at(-1) ?? -1;
    const after = matchOf.slice(j + 1).find((i) => i >= 0) ?? a.length;
    for (let i = Math.max(0, Math.min(before, after) - 2); i <= Math.min(a.length - 1, Math.max(before, after) + 2); i += 1) {
      if (!used.has(i) && sameWord(a[i].core, b[j].core)) {
        matchOf[j] = i;
        used.add(i);
        break;
      }
    }
  }
  const pairs = matchOf.flatMap((i, j) => (i < 0 ? [] : [[a[i].sentence, b[j].sentence]]));
  return pairs.some(([x, y], k) => pairs.slice(k + 1).some(([z, w]) => (x === z) !== (y === w)));
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
      if (punctuationMoved(text, noisy)) {
        counts.moved += 1;
        if (process.env.NOISE_SHOW_MOVED === '1') process.stderr.write(`moved: ${JSON.stringify(noisy)}\n`);
      }
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
  const bundled = parse(await readFile(join(CONFIG, 'distractor_strategy.yaml'), 'utf8'));
  const surfaceOnly = join(work, 'surface.yaml');
  await writeFile(surfaceOnly, stringify({ ...bundled, layer_weights: { surface_noise: 1 } }));
  const strategies = await loadStrategyFile(join(CONFIG, 'distractor_strategy.yaml'));
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
