// personaflow(): the library's one call, in process — options, configuration as a file or an object, persona input, cancelling, pace.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { personaflow, type Generated, type PersonaflowOptions, type PersonaInput } from '../src/library.js';
import { DEFAULT_TEMPLATES } from '../src/prompts/defaults.js';
import { USER_SIMULATOR_MARKER, startOpenAIServer } from './helpers/openai-server.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'personaflow-library-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const persona = (id: string, ...queries: string[]): PersonaInput => ({
  persona_id: id,
  persona_features: { role: 'student', communication_style: 'casual' },
  queries: queries.map((query, index) => ({ query_id: `q${index + 1}`, original_query: query })),
});

const PERSONAS: PersonaInput[] = [persona('ana', 'How do I center a div?', 'What is a closure?'), persona('ben', 'Plan a week of meals on a budget')];

/** Everything a run yields, by `for await`. */
async function collect(options: PersonaflowOptions): Promise<Generated[]> {
  const results: Generated[] = [];
  for await (const result of personaflow(options)) results.push(result);
  return results;
}

/** Everything a run emits, by subscribing. */
function subscribed(options: PersonaflowOptions): Promise<Generated[]> {
  const results: Generated[] = [];
  return new Promise((resolve, reject) => {
    personaflow(options).subscribe({ next: (result) => results.push(result), error: reject, complete: () => resolve(results) });
  });
}

/** A result without its timestamps, by interaction id (failures by theirs), for comparing runs. */
function byId(results: readonly Generated[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const result of results) {
    const copy = JSON.parse(JSON.stringify(result)) as { kind: string; interaction?: { interaction_id: string; metadata: Record<string, unknown>; messages: Record<string, unknown>[] }; failure?: { interaction_id: string; time?: string } };
    if (copy.interaction !== undefined) {
      delete copy.interaction.metadata.created_at;
      for (const message of copy.interaction.messages) delete message.timestamp;
    }
    delete copy.failure?.time;
    const id = copy.interaction?.interaction_id ?? copy.failure?.interaction_id ?? '';
    expect(out[id], `${id} came twice`).toBeUndefined();
    out[id] = copy;
  }
  return out;
}

describe('personaflow(): options', () => {
  it('checks them at the call, saying what was wrong with the value', () => {
    const call = (options: Partial<PersonaflowOptions>) => () => personaflow({ personas: PERSONAS, ...options });
    expect(call({ concurrency: 0 })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`concurrency\` to be an integer from 1 to 1024, got \`0\` (number)]`);
    expect(call({ seed: 1.5 })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`seed\` to be an integer from 0 up, got \`1.5\` (number)]`);
    expect(call({ maxTurns: '3' as unknown as number })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`maxTurns\` to be an integer from 1 to 100, got \`"3"\` (string)]`);
    expect(call({ noise: 'loud' as never })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`noise\` to be off, rules or semantic, got \`"loud"\` (string)]`);
    expect(call({ personas: 42 as never })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`personas\` to be an iterable, an async iterable or a file path, got \`42\` (number)]`);
    expect(call({ config: [] as never })).toThrowErrorMatchingInlineSnapshot(`[TypeError: Expected \`config\` to be a file path or an object, got an array]`);
  });

  it('starts nothing until it is iterated or subscribed to', async () => {
    let pulled = 0;
    async function* personas(): AsyncGenerator<PersonaInput> {
      pulled += 1;
      yield await Promise.resolve(persona('ana', 'hi'));
    }
    const run = personaflow({ personas: personas(), provider: 'sim' });
    expect(run).toBeInstanceOf(Observable);
    await Promise.resolve();
    expect(pulled).toBe(0);
    expect((await collect({ personas: [persona('ana', 'hi')], provider: 'sim' })).length).toBe(1);
  });
});

describe('personaflow(): a run', () => {
  it('yields one interaction per persona × query, the same by for-await and by subscribing, and again for the same seed', async () => {
    const options: PersonaflowOptions = { personas: PERSONAS, provider: 'sim', seed: 5 };
    const iterated = await collect(options);
    expect(iterated.map((result) => result.kind)).toEqual(['interaction', 'interaction', 'interaction']);
    const ids = iterated.map((result) => (result.kind === 'failure' ? '' : result.interaction.interaction_id)).sort();
    expect(ids).toEqual(['interaction_ana_q1', 'interaction_ana_q2', 'interaction_ben_q1']);
    for (const result of iterated) {
      if (result.kind === 'failure') continue;
      expect(result.interaction.messages[0]?.content).toBe(result.interaction.initial_query);
      expect(result.interaction.metadata.assistant_model.provider).toBe('sim');
    }
    expect(byId(await subscribed(options))).toEqual(byId(iterated));
    expect(byId(await collect(options))).toEqual(byId(iterated));
  });

  it('takes the configuration as a file or as an object, with the same result', async () => {
    const file = join(dir, 'config.yaml');
    await writeFile(file, 'interaction_generation:\n  min_turns: 3\n  max_turns: 3\n  assistant_model:\n    model_pool:\n      - { model: big-model, weight: 1 }\n      - { model: small-model, weight: 1 }\n');
    const fromFile = await collect({ personas: PERSONAS, provider: 'sim', config: file });
    const fromObject = await collect({
      personas: PERSONAS,
      provider: 'sim',
      config: { interaction_generation: { min_turns: 3, max_turns: 3, assistant_model: { model_pool: [{ model: 'big-model', weight: 1 }, { model: 'small-model', weight: 1 }] } } },
    });
    expect(byId(fromObject)).toEqual(byId(fromFile));
    for (const result of fromFile) {
      if (result.kind === 'failure') throw new Error(result.failure.error.message);
      expect(result.interaction.num_turns).toBe(3);
      expect(['big-model', 'small-model']).toContain(result.interaction.metadata.assistant_model.model);
    }
  });

  it('ends with a ConfigError naming a bad key or value of a config object', async () => {
    await expect(collect({ personas: PERSONAS, provider: 'sim', config: { interaction_generation: { min_turn: 2 } } })).rejects.toThrowErrorMatchingInlineSnapshot(
      `[ConfigError: config: interaction_generation.min_turn: unknown key; did you mean \`min_turns\`? (interaction_generation takes: min_turns, max_turns, max_workers, max_retries, retry_delay, max_supplement_rounds, assistant_model, user_model)]`,
    );
    await expect(collect({ personas: PERSONAS, provider: 'sim', config: { interaction_generation: { max_workers: 0 } } })).rejects.toThrow(/^config: interaction_generation\.max_workers: Too small/);
  });

  it('reads personas from an NDJSON file, an async iterable and an array alike', async () => {
    const file = join(dir, 'personas.ndjson');
    await writeFile(file, `${PERSONAS.map((p) => JSON.stringify(p)).join('\n')}\n`);
    async function* generated(): AsyncGenerator<PersonaInput> {
      for (const one of PERSONAS) yield await Promise.resolve(one);
    }
    const fromArray = byId(await collect({ personas: PERSONAS, provider: 'sim' }));
    expect(byId(await collect({ personas: file, provider: 'sim' }))).toEqual(fromArray);
    expect(byId(await collect({ personas: generated(), provider: 'sim' }))).toEqual(fromArray);
  });

  it('ends at the first bad persona, naming it, unless onWarning is given: then it is told and skipped', async () => {
    const cyclic: Record<string, unknown> = { persona_id: 'loop' };
    cyclic.self = cyclic;
    const personas = [PERSONAS[0], { persona_features: { role: 'x' } }, cyclic, PERSONAS[1]] as PersonaInput[];
    await expect(collect({ personas, provider: 'sim' })).rejects.toThrowErrorMatchingInlineSnapshot(`[ConfigError: personas:2: persona_id: required (give onWarning to be told of bad lines and skip them instead)]`);
    const warnings: string[] = [];
    const results = await collect({ personas, provider: 'sim', onWarning: (message) => warnings.push(message) });
    expect(warnings).toEqual(['personas:2: persona_id: required', expect.stringMatching(/^personas:3: cannot be read as JSON \(.*circular/i)]);
    expect(results.map((result) => (result.kind === 'failure' ? result.failure.persona_id : result.interaction.persona_id)).sort()).toEqual(['ana', 'ana', 'ben']);
  });

  it('gives an adapted default template to the model, as the config key says', async () => {
    const server = await startOpenAIServer({ stopAfter: 1 });
    try {
      const template = `${DEFAULT_TEMPLATES.user_simulator.text.trimEnd()}\nSign every message with -- Ana (marker 4711).\n`;
      const results = await collect({
        personas: [persona('ana', 'hi there')],
        config: { api: { provider: 'openai', model: 'test-model', base_url: server.baseURL, api_key: 'sk-library-test' }, interaction_generation: { min_turns: 1, user_model: { system_prompt_template: template } } },
      });
      expect(results.map((result) => result.kind)).toEqual(['interaction']);
      const simulator = server.requests.filter((request) => request.role === 'user_simulator');
      expect(simulator.length).toBeGreaterThan(0);
      for (const request of simulator) expect(JSON.stringify(request.body)).toContain('marker 4711');
    } finally {
      await server.close();
    }
  });
});

/** A chat server whose assistant answers to messages containing `hang` never come, with each such request's close as an event. */
async function hangingServer(expectedHangs: number) {
  const hung: Promise<void>[] = [];
  let allArrived: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => (allArrived = resolve));
  const answer = (response: ServerResponse, content: string): void => {
    const body = JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 0, model: 'test-model', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    response.end(body);
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let raw = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (raw += chunk));
    request.on('end', () => {
      const messages = (JSON.parse(raw) as { messages: { role: string; content: string }[] }).messages;
      const text = JSON.stringify(messages);
      if (messages[0]?.role === 'system' && messages[0].content.includes(USER_SIMULATOR_MARKER)) return answer(response, '###STOP###');
      if (text.includes('hang')) {
        hung.push(new Promise<void>((resolve) => response.on('close', () => resolve())));
        if (hung.length === expectedHangs) allArrived();
        return;
      }
      // The quick conversation finishes only once every hanging call is in flight.
      void arrived.then(() => answer(response, 'Here is a short answer.'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    /** Resolves once every hanging call has been closed by the client. */
    allClosed: () => Promise.all(hung),
    count: () => hung.length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('personaflow(): cancelling stops the calls', () => {
  const HANGS = 3;
  const options = (baseURL: string, signal?: AbortSignal): PersonaflowOptions => ({
    personas: [persona('quick', 'a quick one'), ...Array.from({ length: HANGS }, (_, i) => persona(`slow${i}`, `hang ${i}`))],
    concurrency: HANGS + 1,
    signal,
    config: { api: { provider: 'openai', model: 'test-model', base_url: baseURL, api_key: 'sk-library-test', timeout: 3600 }, interaction_generation: { min_turns: 1, max_retries: 0 } },
  });

  it('leaving a for-await loop aborts the calls in flight', async () => {
    const server = await hangingServer(HANGS);
    try {
      const seen: string[] = [];
      for await (const result of personaflow(options(server.baseURL))) {
        seen.push(result.kind === 'failure' ? `failure ${result.failure.persona_id}` : result.interaction.persona_id);
        break;
      }
      expect(seen).toEqual(['quick']);
      expect(server.count()).toBe(HANGS);
      await server.allClosed();
    } finally {
      await server.close();
    }
  });

  it('unsubscribing aborts the calls in flight', async () => {
    const server = await hangingServer(HANGS);
    try {
      const first = await new Promise<Generated>((resolve, reject) => {
        const subscription = personaflow(options(server.baseURL)).subscribe({
          next: (result) => {
            subscription.unsubscribe();
            resolve(result);
          },
          error: reject,
        });
      });
      expect(first.kind).toBe('interaction');
      await server.allClosed();
    } finally {
      await server.close();
    }
  });

  it('aborting the signal aborts the calls in flight and ends the run with its reason', async () => {
    const server = await hangingServer(HANGS);
    const controller = new AbortController();
    try {
      const kinds: string[] = [];
      const run = (async () => {
        for await (const result of personaflow(options(server.baseURL, controller.signal))) {
          kinds.push(result.kind);
          controller.abort(new Error('enough'));
        }
      })();
      await expect(run).rejects.toThrow('enough');
      expect(kinds).toEqual(['interaction']);
      await server.allClosed();
      // An aborted signal ends a run before it starts.
      await expect(collect({ personas: PERSONAS, provider: 'sim', signal: controller.signal })).rejects.toThrow('enough');
    } finally {
      await server.close();
    }
  });
});

describe('personaflow(): a for-await loop sets the pace', () => {
  it('reads personas only as results are taken: at most twice the concurrency ahead', async () => {
    let pulled = 0;
    async function* personas(): AsyncGenerator<PersonaInput> {
      for (let i = 0; i < 30; i += 1) {
        pulled += 1;
        yield await Promise.resolve(persona(`p${i}`, `question ${i}`));
      }
    }
    const concurrency = 2;
    let taken = 0;
    let most = 0;
    for await (const _result of personaflow({ personas: personas(), provider: 'sim', concurrency })) {
      taken += 1;
      // Let the run go as far as it can while this result is being looked at.
      for (let i = 0; i < 50; i += 1) await new Promise((resolve) => setImmediate(resolve));
      most = Math.max(most, pulled - taken);
    }
    expect(taken).toBe(30);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2 * concurrency + 1);
  });

  it('is a ConfigError, not a crash, when a persona file cannot be read', async () => {
    await expect(collect({ personas: join(dir, 'missing.ndjson'), provider: 'sim' })).rejects.toThrow(ConfigError);
  });
});

describe('personaflow(): what the CLI says on stderr', () => {
  it('goes to onNotice, warnings included, and never to stderr', async () => {
    const notices: string[] = [];
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    try {
      // stop_policy user with a feedback_probability set: the run warns that it is not used.
      await collect({ personas: [persona('cy', 'Explain DNS')], provider: 'sim', config: { interaction_generation: { user_model: { feedback_probability: 0.5 } } }, onNotice: (message) => notices.push(message) });
    } finally {
      process.stderr.write = write;
    }
    expect(written.filter((text) => text.includes('personaflow:'))).toEqual([]);
    expect(notices.some((message) => message.startsWith('warning: interaction_generation.user_model.feedback_probability: not used'))).toBe(true);
  });
});

