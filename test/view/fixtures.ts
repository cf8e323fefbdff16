// Interactions and generate --out directories for the viewer's tests, built by hand so every field is known.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Turn {
  readonly user: string;
  /** The clean text when the user turn was noised. */
  readonly clean?: string;
  readonly assistant: string;
}

export interface InteractionSpec {
  readonly persona: string;
  readonly query?: string;
  readonly features?: Record<string, unknown>;
  readonly turns?: readonly Turn[];
  readonly model?: string;
  readonly endReason?: string;
  readonly round?: number;
  readonly guard?: Record<string, number>;
  readonly quality?: unknown;
  readonly extraMetadata?: Record<string, unknown>;
}

/** An interaction line as generate writes it (noise recorded the legacy way, as `typo`). */
export function interaction(spec: InteractionSpec): Record<string, unknown> {
  const query = spec.query ?? 'q1';
  const turns = spec.turns ?? [{ user: 'hello there', assistant: 'hi, how can I help?' }];
  const messages = turns.flatMap((t, turn) => [
    { role: 'user', content: t.user, timestamp: '2026-01-01T00:00:00.000Z', metadata: { turn, ...(turn === 0 ? { is_initial: true } : { is_followup: true }), clean_version: t.clean ?? t.user, was_noised: t.clean !== undefined } },
    { role: 'assistant', content: t.assistant, timestamp: '2026-01-01T00:00:00.000Z', metadata: { turn, model: spec.model ?? 'm1', provider: 'sim' } },
  ]);
  const noisedFollowups = turns.map((t, turn) => ({ t, turn })).filter(({ t, turn }) => turn > 0 && t.clean !== undefined);
  const first = turns[0];
  const noisy_versions =
    first?.clean === undefined && noisedFollowups.length === 0
      ? null
      : {
          ...(first?.clean === undefined ? {} : { initial_query: { clean_query: first.clean, noisy_versions: [{ noisy_text: first.user, noise_type: 'typo', noise_intensity: 0.3 }] } }),
          ...(noisedFollowups.length === 0 ? {} : { followups: noisedFollowups.map(({ t, turn }) => ({ clean_feedback: t.clean, noisy_versions: [{ noisy_text: t.user, noise_type: 'word_swap', noise_intensity: 0.2 }], used_version: t.user, turn })) }),
        };
  return {
    interaction_id: `interaction_${spec.persona}_${query}`,
    persona_id: spec.persona,
    persona_features: spec.features ?? { role: 'nurse' },
    original_query: turns[0]?.clean ?? turns[0]?.user ?? '',
    initial_query: turns[0]?.clean ?? turns[0]?.user ?? '',
    messages,
    num_turns: turns.length,
    metadata: {
      created_at: '2026-01-01T00:00:00.000Z',
      query_id: query,
      system_prompt_used: false,
      total_messages: messages.length,
      conversation_ended: true,
      distractor_applied: noisy_versions !== null,
      distractor_type: noisy_versions === null ? null : 'legacy',
      noisy_versions,
      assistant_model: { provider: 'sim', model: spec.model ?? 'm1' },
      user_model: { provider: 'sim', model: 'u1' },
      target_turns: turns.length,
      ...(spec.endReason === undefined ? {} : { end_reason: spec.endReason }),
      ...(spec.round === undefined ? {} : { supplement_round: spec.round }),
      ...(spec.quality === undefined ? {} : { quality: spec.quality }),
      guard: spec.guard ?? {},
      usage: { assistant: { calls: turns.length, input_tokens: 100 * turns.length, output_tokens: 50 * turns.length }, user_simulator: { calls: turns.length - 1, input_tokens: 200, output_tokens: 10 } },
      ...spec.extraMetadata,
    },
  };
}

export interface DirSpec {
  readonly interactions: readonly Record<string, unknown>[];
  readonly failures?: readonly unknown[];
  readonly rejections?: readonly unknown[];
  readonly usage?: unknown;
  readonly run?: unknown;
  /** Write index.ndjson (default true). */
  readonly index?: boolean;
  /** Raw text appended to interactions.ndjson after the lines (a torn line). */
  readonly tail?: string;
}

/** Writes a generate --out directory; returns its path and each interaction's byte offset. */
export async function writeDir(spec: DirSpec, dir?: string): Promise<{ dir: string; offsets: number[] }> {
  const path = dir ?? (await mkdtemp(join(tmpdir(), 'personaflow-view-')));
  let offset = 0;
  const offsets: number[] = [];
  let data = '';
  let index = '';
  spec.interactions.forEach((item, i) => {
    const line = `${JSON.stringify(item)}\n`;
    const bytes = Buffer.byteLength(line);
    offsets.push(offset);
    index += `${JSON.stringify({ n: i + 1, interaction_id: item.interaction_id, persona_id: item.persona_id, query_id: (item.metadata as { query_id: string }).query_id, num_turns: item.num_turns, offset, bytes })}\n`;
    offset += bytes;
    data += line;
  });
  await writeFile(join(path, 'interactions.ndjson'), data + (spec.tail ?? ''));
  if (spec.index !== false) await writeFile(join(path, 'index.ndjson'), index);
  await writeFile(join(path, 'failures.ndjson'), (spec.failures ?? []).map((f) => `${JSON.stringify(f)}\n`).join(''));
  if (spec.rejections !== undefined) await writeFile(join(path, 'guard-rejections.ndjson'), spec.rejections.map((r) => `${JSON.stringify(r)}\n`).join(''));
  if (spec.usage !== undefined) await writeFile(join(path, 'usage.json'), JSON.stringify(spec.usage));
  if (spec.run !== undefined) await writeFile(join(path, 'run.json'), JSON.stringify(spec.run));
  return { dir: path, offsets };
}

/** Texts meant to break out of an HTML page, each of which must be shown as typed. */
export const HOSTILE = [
  '<script>window.__pwned = "script";</script>',
  '<img src=x onerror="window.__pwned = \'img\'">',
  '"><svg onload="window.__pwned=\'svg\'">',
  "</script><script>window.__pwned='close'</script>",
  '<!-- <script>window.__pwned="comment"</script> -->',
  '{{constructor.constructor("window.__pwned=1")()}}',
  '&lt;b&gt;entities stay entities&lt;/b&gt; &amp;',
  '<a href="javascript:window.__pwned=\'link\'">click</a>',
  '__proto__',
  '\u2028\u2029 line separators',
];
