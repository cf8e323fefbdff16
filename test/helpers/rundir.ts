// A directory written by `personaflow generate --provider sim --out`, and an interaction appended to it as the sink would have.
import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli } from './cli.js';

export interface RunMessage {
  role: string;
  content: string;
  metadata: { clean_version?: string; was_noised?: boolean; [key: string]: unknown };
}
export interface RunInteraction {
  interaction_id: string;
  persona_id: string;
  persona_features: Record<string, string>;
  messages: RunMessage[];
  metadata: Record<string, unknown>;
}

const ROLES = ['nurse', 'engineer', 'teacher', 'student'];

/** `count` personas with two queries each, roles and styles in turn. */
export const personaLines = (count: number): string =>
  Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      persona_id: `persona_${i}`,
      persona_features: { role: ROLES[i % ROLES.length], communication_style: i % 2 === 0 ? 'casual' : 'formal' },
      queries: [
        { query_id: 'a', original_query: `How do I plan task number ${i} for my team?` },
        { query_id: 'b', original_query: `Explain topic ${i} to me with an example.` },
      ],
    }),
  ).join('\n') + '\n';

/** Runs generate with sim and rule noise into `work/run`; returns the directory and its interactions. */
export async function simRun(work: string, personas: number, seed = 7): Promise<{ dir: string; interactions: RunInteraction[] }> {
  await writeFile(join(work, 'personas.ndjson'), personaLines(personas));
  const dir = join(work, 'run');
  const run = await runCli(['generate', join(work, 'personas.ndjson'), '--provider', 'sim', '--noise', 'rules', '--seed', String(seed), '--out', dir, '-q']);
  expect(run.code, run.stderr).toBe(0);
  const interactions = (await readFile(join(dir, 'interactions.ndjson'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as RunInteraction);
  return { dir, interactions };
}

/** Appends an interaction and its index line to a generate --out directory, as the sink would have. */
export async function appendInteraction(dir: string, item: RunInteraction): Promise<void> {
  const line = `${JSON.stringify(item)}\n`;
  const { size } = await stat(join(dir, 'interactions.ndjson'));
  const n = (await readFile(join(dir, 'index.ndjson'), 'utf8')).split('\n').filter(Boolean).length + 1;
  await appendFile(join(dir, 'interactions.ndjson'), line);
  await appendFile(join(dir, 'index.ndjson'), `${JSON.stringify({ n, interaction_id: item.interaction_id, persona_id: item.persona_id, query_id: item.metadata.query_id, num_turns: 1, offset: size, bytes: Buffer.byteLength(line) })}\n`);
}

/** What a hostile model and persona file could write. */
export const SCRIPT_REPLY = '<script>window.__pwned = "script"</script>Sure! <img src=x onerror="window.__pwned = \'img\'"> done';
export const HOSTILE_FEATURE = '"><svg onload="window.__pwned=\'svg\'">';
export const HOSTILE_CLEAN = '</div><script>window.__pwned="clean"</script>';
export const HOSTILE_REJECTION = '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>';

/**
 * Adds to `dir` a conversation of a hostile persona file (`persona_hostile`) whose assistant replies are
 * SCRIPT_REPLY, whose first user turn was noised from HOSTILE_CLEAN, with a hostile end reason and a
 * rejected reply in guard-rejections.ndjson. Returns it.
 */
export async function addHostile(dir: string, base: RunInteraction): Promise<RunInteraction> {
  const copy = structuredClone(base);
  const hostile: RunInteraction = {
    ...copy,
    interaction_id: 'interaction_persona_hostile_x',
    persona_id: 'persona_hostile',
    persona_features: { role: HOSTILE_FEATURE, communication_style: 'casual' },
    messages: copy.messages.map((m, i) => (i === 0 ? { ...m, content: 'plain text', metadata: { ...m.metadata, clean_version: HOSTILE_CLEAN, was_noised: true } } : m.role === 'assistant' ? { ...m, content: SCRIPT_REPLY } : m)),
    metadata: { ...copy.metadata, query_id: 'x', end_reason: '<b>max_turns</b>' },
  };
  await appendInteraction(dir, hostile);
  await writeFile(join(dir, 'guard-rejections.ndjson'), `${JSON.stringify({ interaction_id: hostile.interaction_id, persona_id: 'persona_hostile', query_id: 'x', reason: 'assistant_voice', text: HOSTILE_REJECTION, turn: 1 })}\n`);
  return hostile;
}
