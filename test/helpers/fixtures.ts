// Shared test fixtures: tasks, scripted chat models and the default user template.
import { readFileSync } from 'node:fs';
import { ModelError } from '../../src/errors.js';
import { DEFAULT_USER_TEMPLATE } from '../../src/prompts/simulator.js';
import { createPool, type ModelPool } from '../../src/models/pool.js';
import { createSimModel } from '../../src/models/sim.js';
import type { ChatModel, ChatRequest, ChatResponse } from '../../src/chat.js';
import type { LockedTask, Task } from '../../src/types.js';

export const USER_TEMPLATE = readFileSync(DEFAULT_USER_TEMPLATE, 'utf8');

export function task(overrides: Partial<Task> = {}): Task {
  const personaId = overrides.personaId ?? 'p1';
  const queryId = overrides.queryId ?? 'q1';
  return {
    personaId,
    personaFeatures: { communication_style: 'casual' },
    systemPrompt: undefined,
    queryId,
    originalQuery: 'How do I deduplicate a CSV file by email?',
    initialQuery: 'how do i dedupe a csv by email',
    targetTurns: 3,
    key: `${personaId}/${queryId}`,
    source: 'test:1',
    ...overrides,
  };
}

/** A task locked to pool entry `poolIndex` (the pools in these tests put 'sim-a' or 'scripted' at 0). */
export const locked = (t: Task, model = 'sim-a', poolIndex = 0): LockedTask => ({ ...t, poolIndex, assistant: { provider: 'sim', model } });

export const simPool = (names: readonly string[] = ['sim-a'], weights?: readonly number[]): ModelPool =>
  createPool(names.map((model, i) => ({ model: createSimModel({ provider: 'sim', model }), weight: weights?.[i] ?? 1 })));

/** A model whose every call is answered by `reply` (which may throw a ModelError); records requests and aborts. */
export function scripted(reply: (request: ChatRequest, call: number) => string | Promise<string>, ref = { provider: 'sim', model: 'scripted' }) {
  const requests: ChatRequest[] = [];
  let aborted = 0;
  const model: ChatModel = {
    ...ref,
    complete(request: ChatRequest, signal: AbortSignal): Promise<ChatResponse> {
      requests.push(request);
      const call = requests.length;
      return new Promise<ChatResponse>((resolve, reject) => {
        signal.addEventListener('abort', () => {
          aborted += 1;
          reject(new ModelError('aborted', 'aborted'));
        });
        Promise.resolve()
          .then(() => reply(request, call))
          .then((content) => resolve({ content, usage: { input: 10, output: 5 } }), reject);
      });
    },
  };
  return { model, requests, aborts: () => aborted };
}

/** A model that never answers until aborted. */
export function hanging() {
  return scripted(() => new Promise<string>(() => undefined));
}
