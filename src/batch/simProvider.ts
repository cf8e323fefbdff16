// The batch endpoints in this process for the `sim` provider: each line answered by its sim model, as online.
import type { ChatResponse } from '../chat.js';
import { ModelError } from '../errors.js';
import type { BatchInfo, BatchProvider, InputFile } from './provider.js';

/** An error's HTTP status in an error-file line: its own, else what an online call of that kind would have seen. */
function statusOf(error: unknown): number {
  if (error instanceof ModelError) {
    if (error.status !== undefined) return error.status;
    return error.kind === 'rate_limit' ? 429 : error.kind === 'timeout' ? 408 : error.kind === 'auth' ? 401 : error.kind === 'bad_request' ? 400 : 500;
  }
  return 500;
}

const outputLine = (customId: string, index: number, response: ChatResponse): string =>
  JSON.stringify({
    id: `batch_req_sim_${index}`,
    custom_id: customId,
    response: {
      status_code: 200,
      request_id: `sim-${index}`,
      body: {
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: response.content }, finish_reason: response.finishReason ?? null }],
        usage: { prompt_tokens: response.usage.input, completion_tokens: response.usage.output, total_tokens: response.usage.input + response.usage.output },
      },
    },
    error: null,
  });

function errorLine(customId: string, index: number, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // A malformed answer was still a 200, billed when the sim says so: it goes to the output file without choices.
  if (error instanceof ModelError && error.kind === 'malformed') {
    const usage = error.usage ?? { input: 0, output: 0 };
    return JSON.stringify({ id: `batch_req_sim_${index}`, custom_id: customId, response: { status_code: 200, body: { object: 'chat.completion', usage: { prompt_tokens: usage.input, completion_tokens: usage.output } } }, error: null });
  }
  return JSON.stringify({ id: `batch_req_sim_${index}`, custom_id: customId, response: { status_code: statusOf(error), body: { error: { message } } }, error: null });
}

/**
 * A batch provider that runs in memory: a batch is answered line by line by the sim model each line was
 * made for, so `--batch` with sim gives the dataset online sim gives. Its ids live as long as the process:
 * after a crash, a resume finds none of them and submits their requests again (sim bills nothing).
 */
export function createSimBatchProvider(key = 'sim'): BatchProvider {
  const files = new Map<string, string | InputFile>();
  const batches = new Map<string, { info: BatchInfo; done: Promise<void> }>();
  let next = 0;
  const unknown = (what: string, id: string): ModelError => new ModelError('bad_request', `sim batch API: no ${what} ${id}`, { status: 404 });
  return {
    key,
    upload: (file) => {
      const id = `file-sim-${(next += 1)}`;
      files.set(id, file);
      return Promise.resolve(id);
    },
    create: (inputFileId, signal) => {
      const file = files.get(inputFileId);
      if (file === undefined || typeof file === 'string') return Promise.reject(unknown('input file', inputFileId));
      const id = `batch_sim_${(next += 1)}`;
      const info: BatchInfo = { id, status: 'in_progress', inputFileId, outputFileId: undefined, errorFileId: undefined, counts: { total: file.lines.length, completed: 0, failed: 0 }, reason: undefined };
      const entry = { info, done: Promise.resolve() };
      entry.done = Promise.all(
        file.lines.map((line, index) =>
          line.model.complete(line.request, signal).then(
            (response) => ({ ok: true, text: outputLine(line.customId, index, response) }),
            (error: unknown) => ({ ok: error instanceof ModelError && error.kind === 'malformed', text: errorLine(line.customId, index, error) }),
          ),
        ),
      ).then((lines) => {
        const output = `file-sim-${(next += 1)}`;
        const errors = `file-sim-${(next += 1)}`;
        files.set(output, lines.filter((line) => line.ok).map((line) => `${line.text}\n`).join(''));
        files.set(errors, lines.filter((line) => !line.ok).map((line) => `${line.text}\n`).join(''));
        const failed = lines.filter((line) => !line.ok).length;
        entry.info = { ...info, status: 'completed', outputFileId: output, errorFileId: errors, counts: { total: lines.length, completed: lines.length - failed, failed } };
      });
      batches.set(id, entry);
      return Promise.resolve(info);
    },
    retrieve: async (batchId) => {
      const entry = batches.get(batchId);
      if (entry === undefined) throw unknown('batch', batchId);
      await entry.done;
      return entry.info;
    },
    content: (fileId) => {
      const file = files.get(fileId);
      if (file === undefined) return Promise.reject(unknown('file', fileId));
      return Promise.resolve(typeof file === 'string' ? file : file.lines.map((line) => `${line.text}\n`).join(''));
    },
    findByInputFile: (inputFileId) => Promise.resolve([...batches.values()].find((entry) => entry.info.inputFileId === inputFileId)?.info),
  };
}
