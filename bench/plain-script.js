#!/usr/bin/env node
// The script a user would write instead of personaflow: the openai SDK, p-limit, the same conversation
// loop, JSON.stringify per line. Same endpoint, same turns, same prompts' shape, for a side-by-side ratio.
//   node bench/plain-script.js personas.ndjson --base-url URL --concurrency 64 --turns 3 > out.ndjson
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import pLimit from 'p-limit';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'base-url': { type: 'string' }, concurrency: { type: 'string', default: '16' }, turns: { type: 'string', default: '3' }, model: { type: 'string', default: 'bench' } },
});
const client = new OpenAI({ baseURL: values['base-url'], apiKey: 'not-needed' });
const limit = pLimit(Number(values.concurrency));
const turns = Number(values.turns);
const model = values.model;
// Same prompts as personaflow's defaults, filled the simple way, so both send the same bytes.
const userTemplate = readFileSync(new URL('../config/prompts/user_simulator.txt', import.meta.url), 'utf8');
const assistantSystem = readFileSync(new URL('../config/prompts/assistant.txt', import.meta.url), 'utf8').trim();

const personas = readFileSync(positionals[0], 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line));

let failures = 0;
async function converse(persona, query) {
  const messages = [{ role: 'user', content: query.original_query }];
  for (let turn = 1; turn <= turns; turn += 1) {
    const answer = await client.chat.completions.create({ model, messages: [{ role: 'system', content: assistantSystem }, ...messages] });
    messages.push({ role: 'assistant', content: answer.choices[0].message.content });
    if (turn === turns) break;
    const inverted = messages.map((m) => ({ role: m.role === 'user' ? 'assistant' : 'user', content: m.content }));
    const userSystem = userTemplate
      .replace('{persona_rules}', Object.entries(persona.persona_features).map(([k, v]) => `- ${k}: ${v}`).join('\n'))
      .replace('{facts}', '- none')
      .replace('{system_prompt}', 'none')
      .replace('{original_query}', query.original_query)
      .replace('{current_turn}', String(turn))
      .replace('{target_turns}', String(turns))
      .replaceAll('{stop_token}', '###STOP###');
    const next = await client.chat.completions.create({ model, messages: [{ role: 'system', content: userSystem }, { role: 'user', content: '(start)' }, ...inverted] });
    const text = next.choices[0].message.content;
    if (text.includes('###STOP###')) break;
    messages.push({ role: 'user', content: text });
  }
  process.stdout.write(`${JSON.stringify({ persona_id: persona.persona_id, query_id: query.query_id, messages })}\n`);
}

await Promise.all(
  personas.flatMap((persona) =>
    persona.queries.map((query) =>
      limit(() =>
        converse(persona, query).catch(() => {
          failures += 1;
        }),
      ),
    ),
  ),
);
process.stderr.write(`plain: ${failures} failures\n`);
