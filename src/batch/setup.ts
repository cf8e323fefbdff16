// A batch run set up from the configuration: the rounds, each model's batch form, and the record in --out.
import type { ChatModel } from '../chat.js';
import type { Config } from '../config/schema.js';
import type { BatchTarget } from '../models/specs.js';
import { stableId } from '../rng.js';
import { BatchJournal } from './journal.js';
import { batchModel } from './model.js';
import type { BatchProvider } from './provider.js';
import { BatchRounds, type RoundFigures } from './rounds.js';
import { createSimBatchProvider } from './simProvider.js';

export interface BatchRun {
  /** For buildModels' `batch` flag: the batch form of each model the run builds. */
  readonly model: (target: BatchTarget) => ChatModel;
  /** Opens the record in DIR (after the sink has accepted DIR): a resume reattaches to what it lists. */
  start(dir: string, resume: boolean): Promise<void>;
  readonly figures: () => RoundFigures;
  /** Stops polling and closes the record. */
  close(): Promise<void>;
}

/**
 * A provider whose SDK code is imported on its first use (a sim batch run never loads it). The key names the
 * endpoint (provider, base URL, a digest of the API key), so requests of one account share files.
 */
function remoteProvider(config: Config, target: Extract<BatchTarget, { kind: 'openai' }>): BatchProvider {
  const key = `${target.provider}@${target.baseURL ?? 'default'}#${stableId(target.apiKey, 8)}`;
  const made = import('./openaiProvider.js').then((module) =>
    module.createOpenAIBatchProvider({ key, apiKey: target.apiKey, baseURL: target.baseURL, headers: target.headers, timeoutMs: target.timeoutMs, completionWindow: config.batch.completion_window }),
  );
  made.catch(() => undefined);
  return {
    key,
    upload: async (file, signal) => (await made).upload(file, signal),
    create: async (id, signal) => (await made).create(id, signal),
    retrieve: async (id, signal) => (await made).retrieve(id, signal),
    content: async (id, signal) => (await made).content(id, signal),
    findByInputFile: async (id, signal) => (await made).findByInputFile(id, signal),
  };
}

/**
 * Sets up `generate --batch` from the config's `batch` section. `onEvent` gets the rounds' lines for stderr.
 *
 * @example
 * const batch = setUpBatch(config, (line) => report.say(line));
 * const models = buildModels(config, { ...flags, batch: batch.model });
 * await batch.start(outDir, resuming);
 */
export function setUpBatch(config: Config, onEvent: (text: string) => void): BatchRun {
  const settings = config.batch;
  const rounds = new BatchRounds({
    limits: { maxRequests: settings.max_requests_per_file, maxBytes: settings.max_bytes_per_file },
    poll: { initialMs: settings.poll_initial_s * 1000, maxMs: settings.poll_max_s * 1000, factor: 1.5 },
    gatherMs: settings.gather_ms,
    completionWindow: settings.completion_window,
    onEvent,
  });
  const sim = createSimBatchProvider();
  const providers = new Map<string, BatchProvider>();
  let journal: BatchJournal | undefined;
  return {
    model: (target) => {
      if (target.kind === 'sim') return batchModel(rounds, sim, { provider: 'sim', model: target.model.model, lengthParam: 'max_tokens' }, target.model);
      let provider = remoteProvider(config, target);
      provider = providers.get(provider.key) ?? provider;
      providers.set(provider.key, provider);
      // As online: OpenAI itself takes max_completion_tokens, every other server max_tokens.
      const lengthParam = target.baseURL === undefined || /^https:\/\/api\.openai\.com\b/.test(target.baseURL) ? 'max_completion_tokens' : 'max_tokens';
      const named: ChatModel = {
        provider: target.provider,
        model: target.model,
        complete: () => Promise.reject(new Error('a remote batch model is answered by its batch, not called')),
      };
      return batchModel(rounds, provider, { provider: target.provider, model: target.model, lengthParam, topP: target.topP }, named);
    },
    start: async (dir, resume) => {
      journal = await BatchJournal.open(dir, resume);
      rounds.start(journal);
    },
    figures: () => rounds.figures,
    close: async () => {
      rounds.close();
      await journal?.close();
    },
  };
}
