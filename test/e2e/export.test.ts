// End to end: `personaflow export` as a child process, over a directory that `generate --provider sim` wrote.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QualityReportJSON } from '../../src/export/qualityReport.js';
import { BIN, childEnv, ensureBuilt, runCli } from '../helpers/cli.js';

interface Interaction {
  interaction_id: string;
  persona_id: string;
  persona_features: Record<string, unknown>;
  messages: { role: string; content: string; metadata: Record<string, unknown> }[];
  num_turns: number;
  metadata: Record<string, unknown>;
}

const lines = (text: string): string[] => text.split('\n').filter((line) => line.trim() !== '');
const parse = <T>(text: string): T[] => lines(text).map((line) => JSON.parse(line) as T);

const ROLES = ['nurse', 'engineer', 'teacher', 'student'];
/** `count` personas with two queries each. */
const personas = (count: number): string =>
  Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      persona_id: `persona_${i}`,
      persona_features: { role: ROLES[i % ROLES.length], communication_style: i % 2 === 0 ? 'casual' : 'formal' },
      queries: [
        { query_id: 'a', original_query: `How do I plan task ${i}?` },
        { query_id: 'b', original_query: `Explain topic number ${i} to me.` },
      ],
    }),
  ).join('\n') + '\n';

let dir: string;
let generated: string;
let interactions: Interaction[];
let interactionsText: string;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-export-e2e-'));
  await writeFile(join(dir, 'personas.ndjson'), personas(40));
  generated = join(dir, 'run');
  const run = await runCli(['generate', join(dir, 'personas.ndjson'), '--provider', 'sim', '--noise', 'rules', '--seed', '7', '--out', generated, '-q']);
  expect(run.code, run.stderr).toBe(0);
  interactionsText = await readFile(join(generated, 'interactions.ndjson'), 'utf8');
  interactions = parse<Interaction>(interactionsText);
  expect(interactions).toHaveLength(80);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('personaflow export --out', () => {
  it('writes train/validation/test.jsonl split by persona and statistics.json that agree with a recount', async () => {
    const out = join(dir, 'export1');
    const run = await runCli(['export', generated, '--split', '0.6,0.2,0.2', '--seed', '3', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^personaflow: exported 80 personagym samples \(train \d+, validation \d+, test \d+\) from 80 interactions in [\d.]+ s → /);
    const files = { train: 'train.jsonl', validation: 'validation.jsonl', test: 'test.jsonl' } as const;
    const bySplit: Record<string, { persona_id: string; sample_id: string; num_turns: number; prompt_trajectory: string[] }[]> = {};
    for (const [split, name] of Object.entries(files)) bySplit[split] = parse(await readFile(join(out, name), 'utf8'));
    const all = Object.values(bySplit).flat();
    // Every interaction exactly once, no persona in two splits.
    expect(all.map((s) => s.sample_id).sort()).toEqual(interactions.map((i) => i.interaction_id.replace(/^interaction_/, 'sample_')).sort());
    const personaSplit = new Map<string, string>();
    for (const [split, samples] of Object.entries(bySplit)) {
      for (const s of samples) {
        expect(personaSplit.get(s.persona_id) ?? split).toBe(split);
        personaSplit.set(s.persona_id, split);
      }
    }
    const stats = JSON.parse(await readFile(join(out, 'statistics.json'), 'utf8'));
    expect(stats.total_samples).toBe(80);
    expect(stats.samples_by_split).toEqual({ train: bySplit.train!.length, validation: bySplit.validation!.length, test: bySplit.test!.length });
    expect(stats.unique_personas).toBe(40);
    const turns = interactions.reduce((sum, i) => sum + i.num_turns, 0);
    expect(stats.avg_turns).toBeCloseTo(turns / 80, 3);
    const userTurns = interactions.reduce((sum, i) => sum + i.messages.filter((m) => m.role === 'user').length, 0);
    expect(stats.avg_trajectory_length).toBeCloseTo(userTurns / 80, 3);
    const histogram: Record<string, number> = {};
    for (const i of interactions) histogram[i.num_turns] = (histogram[i.num_turns] ?? 0) + 1;
    expect(stats.turn_histogram).toEqual(histogram);
    const noised = interactions.filter((i) => i.messages.some((m) => m.metadata.was_noised === true)).length;
    expect(stats.distractor_stats.samples_with_noise).toBe(noised);
    expect(stats.distractor_stats.noise_rate).toBeCloseTo(noised / 80, 3);
    expect(stats.persona_distribution).toEqual({ nurse: 20, engineer: 20, teacher: 20, student: 20 });
    expect(stats.token_usage.run).toEqual(JSON.parse(await readFile(join(generated, 'usage.json'), 'utf8')));
    expect(stats.export.split).toEqual({ train: 0.6, validation: 0.2, test: 0.2, by: 'persona_id', seed: 3 });
    expect(typeof stats.created_at).toBe('string');
  });

  it('refuses a directory that already holds an export unless --force', async () => {
    const out = join(dir, 'export2');
    expect((await runCli(['export', generated, '--out', out, '-q'])).code).toBe(0);
    const again = await runCli(['export', generated, '--out', out, '--format', 'openai']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already holds train.jsonl, validation.jsonl, test.jsonl, statistics.json; use --force');
    const forced = await runCli(['export', generated, '--out', out, '--format', 'openai', '--force', '-q']);
    expect(forced.code, forced.stderr).toBe(0);
    // Without a split everything is train, and the other files are there, empty.
    expect(lines(await readFile(join(out, 'train.jsonl'), 'utf8'))).toHaveLength(80);
    expect(await readFile(join(out, 'test.jsonl'), 'utf8')).toBe('');
    expect(parse<{ messages: unknown[] }>(await readFile(join(out, 'train.jsonl'), 'utf8'))[0]).toHaveProperty('messages');
  });

  it('--force removes the earlier export first: no old statistics.json beside the new files (--stats elsewhere, or a --strict run that stops)', async () => {
    const out = join(dir, 'export-force');
    const [a, b, c] = lines(interactionsText);
    expect((await runCli(['export', generated, '--out', out, '-q'])).code).toBe(0);
    const elsewhere = join(dir, 'elsewhere.json');
    const fewer = await runCli(['export', '-', '--out', out, '--force', '--stats', elsewhere, '-q'], { input: `${a}\n${b}\n` });
    expect(fewer.code, fewer.stderr).toBe(0);
    expect(lines(await readFile(join(out, 'train.jsonl'), 'utf8'))).toHaveLength(2);
    await expect(readFile(join(out, 'statistics.json'), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(JSON.parse(await readFile(elsewhere, 'utf8')).total_samples).toBe(2);
    // An earlier full export, then a --strict run over it that stops at line 2: what it wrote, and nothing older.
    expect((await runCli(['export', generated, '--out', out, '--force', '-q'])).code).toBe(0);
    const strict = await runCli(['export', '-', '--out', out, '--force', '--strict', '-q'], { input: `${c}\nnot json\n` });
    expect(strict.code).toBe(2);
    expect(lines(await readFile(join(out, 'train.jsonl'), 'utf8')).length).toBeLessThanOrEqual(1);
    await expect(readFile(join(out, 'statistics.json'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('refuses to export a file into itself (export D/train.jsonl --out D --force)', async () => {
    const out = join(dir, 'export-self');
    expect((await runCli(['export', generated, '--out', out, '--format', 'openai', '-q'])).code).toBe(0);
    const before = await readFile(join(out, 'train.jsonl'), 'utf8');
    const run = await runCli(['export', join(out, 'train.jsonl'), '--out', out, '--force']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${join(out, 'train.jsonl')}: is the input, and --out ${out} would overwrite it`);
    expect(await readFile(join(out, 'train.jsonl'), 'utf8')).toBe(before);
  });

  it('takes the split from training_data.split in a PersonaGym config', async () => {
    const out = join(dir, 'export3');
    const run = await runCli(['export', generated, '-c', 'test/fixtures/personagym-config.yaml', '--out', out, '-q']);
    expect(run.code, run.stderr).toBe(0);
    const stats = JSON.parse(await readFile(join(out, 'statistics.json'), 'utf8'));
    expect(stats.export.split).toEqual({ train: 0.8, validation: 0.1, test: 0.1, by: 'persona_id', seed: 42 });
  });
});

describe('personaflow export: the judge filters and the quality report', () => {
  const scores = (low: number) => ({
    user: { persona_adherence: { score: 4, reason: '' }, naturalness: { score: low, reason: '' }, ending: { score: 4, reason: '' }, information: { score: 4, reason: '' }, consistency: { score: 4, reason: '' } },
    assistant: { answered: { score: 4, reason: '' }, clarification: { score: 4, reason: '' }, noise_handling: { score: 4, reason: '' } },
  });
  /**
   * The generated interactions with a metadata.quality by index: 0 mod 4 not judged; 1 accepted, every
   * score 4; 2 rejected, a near-duplicate with a naturalness of 2 and a hallucination; 3 accepted by the
   * checks only (no review).
   */
  const judgedLine = (interaction: Interaction, i: number): string => {
    const rubric = { rubric_version: 'personaflow-judge-1' };
    const review = (low: number, tags: string[]) => ({ ...scores(low), tags, verdict: tags.length === 0 ? 'accept' : 'reject', verdict_reason: '', judge_model: { provider: 'sim', model: 'judge' } });
    const quality = [
      undefined,
      { verdict: 'accept', reasons: [], checks: [], review: review(4, []), ...rubric },
      { verdict: 'reject', reasons: ['near_duplicate', 'user.naturalness', 'hallucination', 'verdict'], checks: [{ tag: 'near_duplicate', turn: 0, detail: 'nearly repeats another' }], review: review(2, ['hallucination']), ...rubric },
      { verdict: 'accept', reasons: [], checks: [], review: null, ...rubric },
    ][i % 4];
    return JSON.stringify(quality === undefined ? interaction : { ...interaction, metadata: { ...interaction.metadata, quality } });
  };
  let judged: string;
  beforeAll(async () => {
    judged = join(dir, 'judged.ndjson');
    await writeFile(judged, interactions.map(judgedLine).join('\n') + '\n');
  });

  it('--min-score drops low scores and, counted apart, what has no review; the summary says how many and why', async () => {
    const stats = join(dir, 'min-score.json');
    const run = await runCli(['export', judged, '--format', 'openai', '--min-score', '3', '--stats', stats]);
    expect(run.code, run.stderr).toBe(0);
    expect(lines(run.stdout)).toHaveLength(20);
    expect(run.stderr).toMatch(/^personaflow: exported 20 openai samples from 80 interactions; dropped 60: 20 below --min-score 3, 40 not judged in [\d.]+ s\n/);
    const json = JSON.parse(await readFile(stats, 'utf8'));
    expect(json.export.judge_filters).toEqual({ min_score: 3, require_verdict: null, exclude_tags: null });
    expect(json.export.skipped).toMatchObject({ below_min_score: 20, other_verdict: 0, excluded_tags: {}, not_judged: 40 });
    // What was exported: the accepted, all 4s.
    expect(json.quality.judge.verdicts).toEqual({ accept: 20, reject: 0, not_judged: 0, unreadable: 0 });
    expect(json.quality.judge.scores['user.naturalness']).toEqual({ 0: 0, 1: 0, 2: 0, 3: 0, 4: 20 });
  });

  it('--exclude-tag (repeated or comma-separated) counts each tag; --require-verdict keeps one verdict', async () => {
    const tags = await runCli(['export', judged, '--exclude-tag', 'near_duplicate', '--exclude-tag', 'too_short,truncated_answer']);
    expect(tags.code, tags.stderr).toBe(0);
    expect(lines(tags.stdout)).toHaveLength(40);
    expect(tags.stderr).toContain('from 80 interactions; dropped 40: 20 with tag near_duplicate, 20 not judged in ');
    const verdict = await runCli(['export', judged, '--require-verdict', 'reject', '--exclude-tag', 'hallucination']);
    expect(verdict.code, verdict.stderr).toBe(0);
    expect(verdict.stdout).toBe('');
    expect(verdict.stderr).toContain('from 80 interactions; dropped 80: 40 with verdict accept, 20 with tag hallucination, 20 not judged in ');
  });

  it('statistics.json and the summary carry the quality report, which agrees with a recount', async () => {
    const out = join(dir, 'export-quality');
    const run = await runCli(['export', judged, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const { quality } = JSON.parse(await readFile(join(out, 'statistics.json'), 'utf8')) as { quality: QualityReportJSON };
    const followups = interactions.flatMap((i) => i.messages.filter((m) => m.role === 'user').slice(1));
    expect(quality.user_turns).toBe(followups.length);
    const words = followups.map((m) => (typeof m.metadata.clean_version === 'string' ? m.metadata.clean_version : m.content).toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []);
    expect(quality.distinct_1).toEqual({ unique: new Set(words.flat()).size, total: words.flat().length, ratio: expect.any(Number), estimated: false });
    const ends: Record<string, number> = {};
    for (const i of interactions) ends[String(i.metadata.end_reason)] = (ends[String(i.metadata.end_reason)] ?? 0) + 1;
    expect(quality.end_reasons).toEqual(ends);
    expect(quality.judge.verdicts).toEqual({ accept: 40, reject: 20, not_judged: 20, unreadable: 0 });
    // Every persona with a judged conversation is counted once, whatever its number accepted.
    expect(Object.values(quality.judge.accepted_per_persona).reduce((a, b) => a + b, 0)).toBe(new Set(interactions.filter((_, i) => i % 4 !== 0).map((i) => i.persona_id)).size);
    expect(Object.keys(quality.user_turn_words.by_feature).sort()).toEqual(['communication_style', 'role']);
    expect(run.stderr.split('\n')[1]).toMatch(/^personaflow: quality: distinct-1 [\d.]+, distinct-2 [\d.]+ over \d+ user turns; near-duplicates \d+ of \d+ \([\d.]+%\); judge: 40 accept, 20 reject, 20 not judged$/);
  });

  it('an unknown tag, a score off the scale or an unknown verdict is a usage error that names the flag', async () => {
    const tag = await runCli(['export', judged, '--exclude-tag', 'near_duplicate,nearly_duplicate']);
    expect(tag.code).toBe(2);
    expect(tag.stderr).toContain("option '--exclude-tag <tag>' argument 'near_duplicate,nearly_duplicate' is invalid. unknown tag `nearly_duplicate`; the checks' tags are user_assistant_voice, ");
    expect(tag.stderr).toContain("the judge's are hallucination, ");
    const score = await runCli(['export', judged, '--min-score', '5']);
    expect(score.code).toBe(2);
    expect(score.stderr).toContain("option '--min-score <n>' argument '5' is invalid. expected an integer from 0 to 4 (the judge's scores), got `5`");
    const verdict = await runCli(['export', judged, '--require-verdict', 'maybe']);
    expect(verdict.code).toBe(2);
    expect(verdict.stderr).toContain("option '--require-verdict <verdict>' argument 'maybe' is invalid. Allowed choices are accept, reject.");
  });
});

describe('personaflow export on stdin and stdout', () => {
  it('one stream with a split field, as jq consumes it; --only gives one split without the field', async () => {
    const run = await runCli(['export', '-', '--format', 'sharegpt', '--split', '0.5,0.25,0.25', '-q'], { input: interactionsText });
    expect(run.code, run.stderr).toBe(0);
    const samples = parse<{ conversations: { from: string; value: string }[]; split: string }>(run.stdout);
    expect(samples).toHaveLength(80);
    // jq -r .split | sort | uniq -c
    const counts: Record<string, number> = {};
    for (const s of samples) counts[s.split] = (counts[s.split] ?? 0) + 1;
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(80);
    // jq -c 'select(.split == "train") | del(.split)'
    const train = samples.filter((s) => s.split === 'train').map(({ split: _split, ...rest }) => rest);
    const only = await runCli(['export', '-', '--format', 'sharegpt', '--split', '0.5,0.25,0.25', '--only', 'train', '-q'], { input: interactionsText });
    expect(only.code, only.stderr).toBe(0);
    expect(parse(only.stdout)).toEqual(train);
    // The user turns, in order, as the assistant saw them; closing words after the last answer are no turn a trainer learns from.
    const first = interactions[0]!;
    const sample = samples.find((s) => s.conversations[0]!.value === first.messages[0]!.content)!;
    expect(sample.conversations.filter((t) => t.from === 'human').map((t) => t.value)).toEqual(first.messages.filter((m) => m.role === 'user' && m.metadata?.is_closing !== true).map((m) => m.content));
  });

  it('reports a bad line as FILE:LINE and goes on; --strict exits 2', async () => {
    const [a, b] = lines(interactionsText);
    const file = join(dir, 'bad.ndjson');
    await writeFile(file, `${a}\n{"interaction_id": \n${b}\n`);
    const run = await runCli(['export', file, '--format', 'openai', '-q']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`^personaflow: warning: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: invalid JSON`));
    expect(lines(run.stdout)).toHaveLength(2);
    const strict = await runCli(['export', '-', '--strict'], { input: `${a}\nnot json\n` });
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/stdin:2: invalid JSON: .* \(--strict stops at the first bad line\)/);
  });

  it('usage errors exit 2', async () => {
    const split = await runCli(['export', generated, '--split', '0.5,0.5']);
    expect(split.code).toBe(2);
    expect(split.stderr).toContain('expected three ratios train,validation,test');
    const system = await runCli(['export', generated, '--system', 'persona']);
    expect(system.code).toBe(2);
    expect(system.stderr).toContain('--system applies to --format openai and sharegpt');
    const missing = await runCli(['export', join(dir, 'nothing-here')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read interactions (ENOENT)');
  });

  it('an empty --system (--system "$UNSET") is a usage error, not an export of nothing that exits 0', async () => {
    for (const text of ['', '  ']) {
      const run = await runCli(['export', generated, '--format', 'openai', '--system', text]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`option '--system <mode>' argument '${text}' is invalid. expected none, persona or a system message text`);
    }
  });

  it('--seed and --min-turns take decimal integers only: "", " 0x10 " and "1e3" are usage errors', async () => {
    for (const seed of ['', ' 0x10 ', '1e3', '7.5']) {
      const run = await runCli(['export', generated, '--split', '0.5,0.5,0', '--seed', seed]);
      expect(run.code, seed).toBe(2);
      expect(run.stderr).toContain(`expected an integer ≥ 0, got \`${seed}\``);
    }
    expect((await runCli(['export', generated, '--min-turns', '0x2'])).code).toBe(2);
  });

  it('| head -n 1 ends quietly with exit 0', async () => {
    const big = join(dir, 'big.ndjson');
    const line = lines(interactionsText)[0]!;
    await writeFile(big, Array.from({ length: 3000 }, (_, i) => line.replace(/"interaction_id":"[^"]*"/, `"interaction_id":"interaction_x_${i}"`).replace(/"query_id":"[^"]*"/, `"query_id":"x_${i}"`)).join('\n'));
    const child = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" export "${big}" --no-dedupe -q | head -n 1 > /dev/null`], { env: childEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, stderr).toBe(0);
    expect(stderr).toBe('');
  });
});
