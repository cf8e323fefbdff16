// End to end: the judge inside generate and as `personaflow judge`, against sim and a local server whose judge is scripted.
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TEST_KEY, against, ensureBuilt, runCli } from '../helpers/cli.js';
import { judgeAnswer, startOpenAIServer, type FakeOpenAIOptions, type FakeOpenAIServer } from '../helpers/openai-server.js';

const STOP = '###STOP###';

let dir: string;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'personaflow-judge-e2e-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Line {
  interaction_id: string;
  persona_id: string;
  persona_features: Record<string, unknown>;
  messages: { role: string; content: string; metadata: Record<string, unknown> }[];
  metadata: Record<string, unknown> & { quality?: { verdict: string; reasons: string[]; checks: { tag: string }[]; review: { judge_model: unknown } | null; rubric_version: string } };
}

const readNdjson = async <T>(path: string): Promise<T[]> =>
  (await readFile(path, 'utf8').catch(() => ''))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);

const countBy = <T>(items: readonly T[], key: (item: T) => string): Record<string, number> => items.reduce<Record<string, number>>((all, item) => ((all[key(item)] = (all[key(item)] ?? 0) + 1), all), {});

/** Persona lines: `queries` per persona, each query's text as given (markers in it steer the scripted judge). */
async function personasFile(name: string, personas: { id: string; role: string; queries: string[] }[]): Promise<string> {
  const path = join(dir, `${name}.ndjson`);
  const lines = personas.map((p) => JSON.stringify({ persona_id: p.id, persona_features: { role: p.role, communication_style: 'casual', query_length_pref: 'short' }, queries: p.queries.map((q, i) => ({ query_id: `q${i + 1}`, original_query: q })) }));
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

/** Follow-ups unique to each conversation (no accidental near-duplicates), then the stop token. */
const simulator: FakeOpenAIOptions['simulator'] = (answered, _attempt, request) => {
  const system = JSON.stringify(request.body);
  // The query's last two words: enough to tell a persona's conversations apart, too few to repeat the opening message.
  const topic = (/this request: \\"([^"\\]*)/.exec(system)?.[1] ?? 'it').replace(/\W+/g, ' ').trim().split(' ').slice(-2).join(' ');
  return answered >= 3 ? STOP : answered === 1 ? `ok and what about the ${topic} part?` : 'right, how long would all that take me on a normal day';
};

/** Judges a conversation by the markers in its text: `[bad]` → rejected for inconsistency, `[garbled]` → prose once, `[never-json]` → prose always, a stubborn persona → always rejected. */
const judgeReply: FakeOpenAIOptions['judgeReply'] = (conversation, attempt, request) => {
  const prompt = JSON.stringify(request.body);
  if (conversation.includes('[never-json]')) return 'This conversation looks fine to me overall.';
  if (conversation.includes('[garbled]') && attempt === 0) return 'Overall a decent exchange; I would accept it.';
  const reject = conversation.includes('[bad]') || prompt.includes('stubborn');
  if (!reject) return judgeAnswer(4, 'accept');
  const answer = JSON.parse(judgeAnswer(3, 'reject', ['inconsistent_behavior'])) as { user: Record<string, { score: number; reason: string }> };
  answer.user.consistency = { score: 1, reason: 'scripted' };
  return JSON.stringify(answer);
};

async function generateAgainst(server: FakeOpenAIServer, personas: string, name: string, extra: string[] = []) {
  const config = join(dir, `${name}.yaml`);
  await writeFile(config, 'interaction_generation:\n  retry_delay: 0.01\n  max_retries: 1\n');
  const out = join(dir, name);
  const run = await runCli(['generate', personas, '-c', config, ...against(server), '--min-turns', '1', '--max-turns', '3', '--judge', '--out', out, ...extra], { killAfterMs: 60_000 });
  return { run, out };
}

describe('generate --judge against a scripted judge', () => {
  it('tops every persona up to exactly its target of accepted conversations; rejected ones are kept apart, and judge usage is what the server billed', async () => {
    const personas = await personasFile('share', [
      { id: 'p1', role: 'nurse', queries: ['[bad] how do I sleep after nights', 'quick lunches for shifts', 'how to ask for a raise'] },
      { id: 'p2', role: 'teacher', queries: ['grading faster', '[bad] seating plans for noisy classes', 'parent meetings'] },
      { id: 'p3', role: 'welder', queries: ['[bad] safety gloves', 'tig or mig for thin steel', 'how to price a job'] },
      { id: 'p4', role: 'baker', queries: ['sourdough starter', 'oven temperatures', '[bad] pricing cakes'] },
    ]);
    const server = await startOpenAIServer({ apiKey: TEST_KEY, simulator, judgeReply });
    try {
      const { run, out } = await generateAgainst(server, personas, 'share', ['--supplement-rounds', '2']);
      expect(run.code, run.stderr).toBe(0);
      const accepted = await readNdjson<Line>(join(out, 'interactions.ndjson'));
      const rejected = await readNdjson<Line>(join(out, 'rejected.ndjson'));
      // Exactly three accepted per persona: the [bad] conversation rejected, one supplement query in its place.
      expect(countBy(accepted, (l) => l.persona_id), run.stderr).toEqual({ p1: 3, p2: 3, p3: 3, p4: 3 });
      expect(accepted.every((l) => l.metadata.quality?.verdict === 'accept' && l.metadata.quality.rubric_version === 'personaflow-judge-1')).toBe(true);
      expect(accepted.filter((l) => String(l.metadata.query_id).startsWith('supplement_r1_'))).toHaveLength(4);
      expect(rejected).toHaveLength(4);
      for (const line of rejected) {
        expect(line.messages[0]?.content).toContain('[bad]');
        expect(line.metadata.quality).toMatchObject({ verdict: 'reject', reasons: ['user.consistency', 'verdict'], review: { tags: ['inconsistent_behavior'], judge_model: { provider: 'openai', model: 'test-model' } } });
      }
      expect(run.stderr).toMatch(/judged 16 conversations: 12 accepted, 4 rejected \(user\.consistency 4, verdict 4\); they are in .*rejected\.ndjson/);
      expect(run.stderr).toMatch(/targets met: 0\/4 personas after the main pass, 4\/4 personas after round 1/);
      // The judge is the assistant's model here: the run says so.
      expect(run.stderr).toMatch(/judge\.llm: the judge is openai\/test-model, which is also an assistant model/);
      // Judge usage: exactly what the server returned for judge requests.
      const judged = server.requests.filter((r) => r.role === 'judge' && r.usage !== undefined);
      expect(judged).toHaveLength(16);
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { by_module: Record<string, { input_tokens: number; output_tokens: number; call_count: number }> }; judge: unknown };
      expect(usage.statistics.by_module.judge).toEqual({
        input_tokens: judged.reduce((sum, r) => sum + r.usage!.prompt, 0),
        output_tokens: judged.reduce((sum, r) => sum + r.usage!.completion, 0),
        total_tokens: judged.reduce((sum, r) => sum + r.usage!.prompt + r.usage!.completion, 0),
        call_count: 16,
      });
      expect(usage.judge).toEqual({ judged: 16, rejected: 4, rejected_by_reason: { 'user.consistency': 4, verdict: 4 } });
      // Each conversation carries its own judge tokens.
      const perConversation = [...accepted, ...rejected].reduce((sum, l) => sum + ((l.metadata.usage as Record<string, { input_tokens: number }>).judge?.input_tokens ?? 0), 0);
      expect(perConversation).toBe(usage.statistics.by_module.judge!.input_tokens);
    } finally {
      await server.close();
    }
  });

  it('names the persona that stays short, and why, when the judge rejects it every time', async () => {
    const personas = await personasFile('short', [
      { id: 'fine', role: 'nurse', queries: ['quick lunches for shifts', 'night shift sleep'] },
      { id: 'never', role: 'stubborn critic', queries: ['rate my essay', 'rate my poem'] },
    ]);
    const server = await startOpenAIServer({ apiKey: TEST_KEY, simulator, judgeReply });
    try {
      const { run, out } = await generateAgainst(server, personas, 'short', ['--supplement-rounds', '1']);
      // A persona short of its target is an incomplete run (README, exit codes).
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toMatch(/result: incomplete \(exit 3\): 1 persona\(s\) short of their target by 2 interaction\(s\)\n$/);
      expect(countBy(await readNdjson<Line>(join(out, 'interactions.ndjson')), (l) => l.persona_id)).toEqual({ fine: 2 });
      expect(await readNdjson<Line>(join(out, 'rejected.ndjson'))).toHaveLength(4);
      expect(run.stderr).toMatch(/1 still short by 2 interaction\(s\) after 1 supplement round\(s\): never by 2 \(rejected: user\.consistency 4, rejected: verdict 4[,)]/);
    } finally {
      await server.close();
    }
  });

  it('re-asks a judge that answers in prose, and turns a conversation it never judges into a failure record, never a pass', async () => {
    const personas = await personasFile('garbled', [{ id: 'g', role: 'nurse', queries: ['[garbled] lunches', '[never-json] sleep', 'raise'] }]);
    const server = await startOpenAIServer({ apiKey: TEST_KEY, simulator, judgeReply });
    try {
      const { run, out } = await generateAgainst(server, personas, 'garbled', ['--supplement-rounds', '0']);
      // A failure: exit code 3.
      expect(run.code, run.stderr).toBe(3);
      const accepted = await readNdjson<Line>(join(out, 'interactions.ndjson'));
      expect(accepted.map((l) => l.messages[0]?.content).sort()).toEqual(['[garbled] lunches', 'raise']);
      const failures = await readNdjson<{ interaction_id: string; error: { kind: string; message: string } }>(join(out, 'failures.ndjson'));
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({ interaction_id: 'interaction_g_q2', error: { kind: 'judge' } });
      expect(failures[0]!.error.message).toMatch(/judge answer rejected 3 time\(s\), last: no JSON object/);
      expect(await readNdjson<Line>(join(out, 'rejected.ndjson'))).toEqual([]);
      // [garbled]: asked twice; [never-json]: three times (validation_retries 2); raise: once.
      const usage = JSON.parse(await readFile(join(out, 'usage.json'), 'utf8')) as { statistics: { by_operation: Record<string, { call_count: number }> } };
      expect(usage.statistics.by_operation['judge.review']?.call_count).toBe(3);
      expect(usage.statistics.by_operation['judge.validation_retry']?.call_count).toBe(3);
      expect(server.requests.filter((r) => r.role === 'judge')).toHaveLength(6);
    } finally {
      await server.close();
    }
  });
});

describe('generate --judge with sim', () => {
  it('ends with every persona at exactly its target of accepted conversations, or names who is short', async () => {
    const out = join(dir, 'sim');
    const run = await runCli(['generate', join(ROOT, 'examples', 'personas.ndjson'), '--provider', 'sim', '--judge', '--supplement-rounds', '3', '--out', out], { killAfterMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    const targets: Record<string, number> = {};
    for (const line of (await readFile(join(ROOT, 'examples', 'personas.ndjson'), 'utf8')).split('\n').filter(Boolean)) {
      const persona = JSON.parse(line) as { persona_id: string; queries: unknown[] };
      targets[persona.persona_id] = persona.queries.length;
    }
    const accepted = countBy(await readNdjson<Line>(join(out, 'interactions.ndjson')), (l) => l.persona_id);
    const short = /still short by \d+ interaction\(s\)[^:]*: (.*)$/m.exec(run.stderr)?.[1] ?? '';
    for (const [persona, target] of Object.entries(targets)) {
      if ((accepted[persona] ?? 0) === target) continue;
      // Never past the target; short only when the summary says so.
      expect(accepted[persona] ?? 0).toBeLessThan(target);
      expect(short).toContain(`${persona} by ${target - (accepted[persona] ?? 0)}`);
    }
    // sim's judge rejects some: the run shows rejections and top-ups.
    const rejected = await readNdjson<Line>(join(out, 'rejected.ndjson'));
    expect(run.stderr).toMatch(new RegExp(`judged \\d+ conversations: \\d+ accepted, ${rejected.length} rejected`));
  });
});

describe('personaflow judge', () => {
  it('judges a file: accepted lines to --out, a near-duplicate of an earlier conversation rejected, and --resume judges only what is new', async () => {
    const source = join(dir, 'to-judge.ndjson');
    const conversation = (id: string, persona: string, followups: string[]) =>
      JSON.stringify({
        interaction_id: id,
        persona_id: persona,
        persona_features: { role: 'nurse', communication_style: 'casual' },
        messages: [
          { role: 'user', content: `question ${id}`, metadata: { turn: 0 } },
          { role: 'assistant', content: 'Here is what I would do first.', metadata: { turn: 0 } },
          ...followups.flatMap((text, i) => [
            { role: 'user', content: text, metadata: { turn: i + 1 } },
            { role: 'assistant', content: `Sure, on that: step ${i} is simple.`, metadata: { turn: i + 1 } },
          ]),
        ],
        metadata: { query_id: id, end_reason: 'max_turns' },
      });
    const followups = ['ok but my ward has no quiet room at all', 'and what if the shift runs over by two hours'];
    await writeFile(source, [conversation('a', 'p', followups), conversation('b', 'p', ['how do i pack a lunch that keeps', 'does soup work in a flask']), conversation('c', 'p', followups)].join('\n') + '\n');
    const server = await startOpenAIServer({ apiKey: TEST_KEY });
    try {
      const out = join(dir, 'judged');
      const first = await runCli(['judge', source, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'judge-model', '--out', out]);
      expect(first.code, first.stderr).toBe(0);
      expect((await readNdjson<Line>(join(out, 'interactions.ndjson'))).map((l) => l.interaction_id).sort()).toEqual(['a', 'b']);
      const [dup] = await readNdjson<Line>(join(out, 'rejected.ndjson'));
      expect(dup?.interaction_id).toBe('c');
      expect(dup?.metadata.quality?.reasons).toEqual(['near_duplicate']);
      expect(server.requests.filter((r) => r.role === 'judge')).toHaveLength(3);
      // Two more lines; --resume judges only those.
      await appendFile(source, [conversation('d', 'q', ['is this ok for kids', 'and for older people']), conversation('e', 'q', ['what about winter', 'any cheap options'])].join('\n') + '\n');
      const second = await runCli(['judge', source, '--provider', 'openai', '--base-url', server.baseURL, '--model', 'judge-model', '--out', out, '--resume']);
      expect(second.code, second.stderr).toBe(0);
      expect(server.requests.filter((r) => r.role === 'judge')).toHaveLength(5);
      expect((await readNdjson<Line>(join(out, 'interactions.ndjson'))).map((l) => l.interaction_id).sort()).toEqual(['a', 'b', 'd', 'e']);
      expect(second.stderr).toMatch(/resumed: 3 conversations were already judged/);
      // Checks only: no model called at all.
      const before = server.count;
      const checksOnly = await runCli(['judge', source, '--no-review', '--provider', 'openai', '--base-url', server.baseURL, '--model', 'judge-model']);
      expect(checksOnly.code, checksOnly.stderr).toBe(0);
      expect(server.count).toBe(before);
      const lines = checksOnly.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
      expect(lines.map((l) => l.interaction_id)).toEqual(['a', 'b', 'd', 'e']);
      expect(lines.every((l) => l.metadata.quality?.review === null)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('refuses to write over the file it reads, and a reject tag no check or review gives', async () => {
    const out = join(dir, 'self');
    const inPlace = await runCli(['judge', join(out, 'interactions.ndjson'), '--out', out, '--provider', 'sim']);
    expect(inPlace.code).toBe(2);
    expect(inPlace.stderr).toMatch(/--out .*self: it would overwrite the input/);
    const config = join(dir, 'bad-tag.yaml');
    await writeFile(config, 'judge:\n  reject_tags: [truncated_answer, rude]\n');
    const badTag = await runCli(['judge', '-', '-c', config, '--provider', 'sim'], { input: '' });
    expect(badTag.code).toBe(2);
    expect(badTag.stderr).toMatch(/judge\.reject_tags\[1\]: unknown tag `rude`; known: .*truncated_answer/);
  });
});
