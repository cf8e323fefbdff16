// OpenAI's files and batches endpoints (and any OpenAI-compatible server that has them) through the openai SDK.
import OpenAI, { toFile } from 'openai';
import { toModelError } from '../models/openai.js';
import { safeUrl, urlSecrets } from '../redact.js';
import { fileText } from './files.js';
import type { BatchInfo, BatchProvider, InputFile } from './provider.js';

export interface OpenAIBatchOptions {
  /** Groups the lines of this endpoint (no secret in it). */
  readonly key: string;
  readonly apiKey: string;
  readonly baseURL: string | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Per control-plane call (upload, create, retrieve, download), in milliseconds. */
  readonly timeoutMs: number;
  /** OpenAI's `completion_window` (it offers `24h`). */
  readonly completionWindow: string;
}

interface SdkBatch {
  id: string;
  status: string;
  input_file_id: string;
  output_file_id?: string | null;
  error_file_id?: string | null;
  request_counts?: { total: number; completed: number; failed: number } | null;
  errors?: { data?: { message?: string | null }[] } | null;
}

const infoOf = (batch: SdkBatch): BatchInfo => ({
  id: batch.id,
  status: batch.status,
  inputFileId: batch.input_file_id,
  outputFileId: batch.output_file_id ?? undefined,
  errorFileId: batch.error_file_id ?? undefined,
  counts: batch.request_counts ?? undefined,
  reason: batch.errors?.data?.map((error) => error.message ?? '').filter((message) => message !== '').join('; ') || undefined,
});

/** How far back `findByInputFile` looks through the account's batches (newest first). */
const FIND_LIMIT = 500;

/**
 * Creates the batch side of an OpenAI-compatible endpoint. The SDK's own retries are off: a retried
 * `create` whose first answer was lost would start a second, paid batch; the round runner retries, and
 * asks `findByInputFile` first. Errors become ModelErrors exactly as online calls' do (the key redacted).
 *
 * @example
 * const provider = createOpenAIBatchProvider({ key: 'openai@default', apiKey, baseURL: undefined, timeoutMs: 120_000, completionWindow: '24h' });
 */
export function createOpenAIBatchProvider(options: OpenAIBatchOptions): BatchProvider {
  const client = new OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0, timeout: options.timeoutMs, defaultHeaders: options.headers });
  const where = `batch API ${options.baseURL === undefined ? 'api.openai.com' : safeUrl(options.baseURL)}`;
  // A key, a header value or a URL's credentials never reach an error line.
  const secrets = [options.apiKey, ...Object.values(options.headers ?? {}), ...urlSecrets(options.baseURL)];
  const guarded = async <T>(call: () => Promise<T>, signal: AbortSignal): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw toModelError(error, where, secrets, signal.aborted);
    }
  };
  return {
    key: options.key,
    upload: (file: InputFile, signal) => guarded(async () => (await client.files.create({ file: await toFile(Buffer.from(fileText(file), 'utf8'), file.name, { type: 'application/jsonl' }), purpose: 'batch' }, { signal })).id, signal),
    create: (inputFileId, signal) =>
      guarded(async () => infoOf((await client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: options.completionWindow as '24h', metadata: { personaflow_input: inputFileId } }, { signal })) as SdkBatch), signal),
    retrieve: (batchId, signal) => guarded(async () => infoOf((await client.batches.retrieve(batchId, { signal })) as SdkBatch), signal),
    content: (fileId, signal) => guarded(async () => (await client.files.content(fileId, { signal })).text(), signal),
    findByInputFile: (inputFileId, signal) =>
      guarded(async () => {
        let seen = 0;
        for await (const batch of client.batches.list({ limit: 100 }, { signal })) {
          if (batch.input_file_id === inputFileId) return infoOf(batch);
          seen += 1;
          if (seen >= FIND_LIMIT) break;
        }
        return undefined;
      }, signal),
  };
}
