#!/usr/bin/env node
// Synthetic persona lines (one query each): input for memory and throughput runs.
//   node bench/make-personas.js 1000000 > /tmp/personas-1m.ndjson
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const styles = ['casual', 'formal', 'concise', 'friendly', 'direct'];
const roles = ['engineer', 'teacher', 'nurse', 'student', 'designer', 'accountant'];
const queries = ['How do I deduplicate a CSV file by email?', 'Explain Rust lifetimes with an example', 'Plan a weekly schedule for night shifts', 'Write a menu description for a Greek restaurant'];

/** Writes `n` persona lines to `stream`, honouring backpressure. */
export async function writePersonas(stream, n) {
  let buffer = '';
  for (let i = 0; i < n; i += 1) {
    buffer += `${JSON.stringify({
      persona_id: `persona_${i}`,
      persona_features: { role: roles[i % roles.length], communication_style: styles[i % styles.length], age_band: '25-34' },
      queries: [{ query_id: 'q1', original_query: queries[i % queries.length] }],
    })}\n`;
    if (buffer.length > 1 << 20 || i === n - 1) {
      if (!stream.write(buffer)) await once(stream, 'drain');
      buffer = '';
    }
  }
}

/** Writes `n` persona lines to the file at `path`. */
export async function personaFile(path, n) {
  const stream = createWriteStream(path);
  await writePersonas(stream, n);
  stream.end();
  await once(stream, 'finish');
  return path;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await writePersonas(process.stdout, Number(process.argv[2] ?? 1000));
