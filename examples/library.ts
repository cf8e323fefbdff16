// personaflow as a library: two personas in, their conversations out, on the built-in sim provider (offline, no key).
// `npm run typecheck` compiles it as a project that installed personaflow alone would (no rxjs of its own);
// test/e2e/examples.test.ts runs it; so does `node scripts/check-examples.js --run examples/library.ts` after `npm run build`.
import { personaflow, type PersonaInput } from 'personaflow';

const personas: PersonaInput[] = [
  {
    persona_id: 'teacher_01',
    persona_features: { role: 'primary school teacher', communication_style: 'casual, short messages' },
    queries: [{ query_id: 'q1', original_query: 'Help me plan a 30-minute lesson on fractions' }],
  },
  {
    persona_id: 'dev_02',
    persona_features: { role: 'backend developer', communication_style: 'terse' },
    queries: [{ query_id: 'q1', original_query: 'Why is my Postgres query slow?' }],
  },
];

// An async iterable: one result per persona × query as each conversation ends; leaving the loop stops the run.
for await (const result of personaflow({ personas, provider: 'sim', seed: 7 })) {
  if (result.kind === 'failure') console.error(`failed: ${result.failure.persona_id}: ${result.failure.error.message}`);
  else console.log(JSON.stringify(result.interaction));
}

// An Observable of the same: each subscription is a run of its own (the same seed, the same conversations).
await new Promise<void>((resolve, reject) => {
  personaflow({ personas, provider: 'sim', seed: 7 }).subscribe({
    next: (result) => {
      if (result.kind !== 'failure') console.log(`${result.interaction.persona_id}: ${result.interaction.num_turns} turns, ended by ${result.interaction.metadata.end_reason}`);
    },
    error: reject,
    complete: resolve,
  });
});
