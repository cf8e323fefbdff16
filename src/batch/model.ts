// A chat model whose calls go through the batch rounds: the seam that lets the conversation code run unchanged in batch mode.
import type { ChatModel } from '../chat.js';
import type { LineTarget } from './lines.js';
import type { BatchProvider } from './provider.js';
import type { BatchRounds } from './rounds.js';

/**
 * `model` as the conversations see it, its calls queued into the current round of `rounds` and answered
 * when that round's results arrive. `model` itself is called only by a provider that answers in this
 * process (sim); for a remote provider it names the model and its lines.
 *
 * @example
 * const assistant = batchModel(rounds, provider, { provider: 'openai', model: 'gpt-4o-mini', lengthParam: 'max_completion_tokens' }, online);
 */
export function batchModel(rounds: BatchRounds, provider: BatchProvider, target: LineTarget, model: ChatModel): ChatModel {
  const known = rounds.provider(provider);
  return {
    provider: model.provider,
    model: model.model,
    complete: (request, signal) => rounds.call(known, target, model, request, signal),
  };
}
