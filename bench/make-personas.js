#!/usr/bin/env node
// Writes N synthetic persona lines (one query each) to stdout: input for memory and throughput runs.
// Usage: node bench/make-personas.js 1000000 > /tmp/personas-1m.ndjson
const n = Number(process.argv[2] ?? 1000);
const styles = ['casual', 'formal', 'concise', 'friendly', 'direct'];
const roles = ['engineer', 'teacher', 'nurse', 'student', 'designer', 'accountant'];
const queries = ['How do I deduplicate a CSV file by email?', 'Explain Rust lifetimes with an example', 'Plan a weekly schedule for night shifts', 'Write a menu description for a Greek restaurant'];
let buffer = '';
for (let i = 0; i < n; i += 1) {
  buffer += `${JSON.stringify({
    persona_id: `persona_${i}`,
    persona_features: { role: roles[i % roles.length], communication_style: styles[i % styles.length], age_band: '25-34' },
    queries: [{ query_id: 'q1', original_query: queries[i % queries.length] }],
  })}\n`;
  if (buffer.length > 1 << 20) {
    process.stdout.write(buffer);
    buffer = '';
  }
}
process.stdout.write(buffer);
