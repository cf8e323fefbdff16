// Counting tokens ourselves, for servers that report no usage (or an implausible one): a tokenizer for known model families, characters / 4 otherwise.
import type { ChatMessage, TokenUsage } from '../chat.js';

/** How a count was made: an OpenAI encoding, or characters / 4 for model families without a known one. */
export type TokenMethod = 'o200k_base' | 'cl100k_base' | 'chars/4';

/**
 * The encoding of an OpenAI model family, by name (with or without a `provider/` or `openai/` prefix,
 * as OpenRouter and proxies write them): o200k_base for GPT-4o, GPT-4.1, GPT-5 and the o-series,
 * cl100k_base for GPT-4 and GPT-3.5. Anything else (Llama, Claude, Qwen, ...) has a tokenizer of its own
 * that we do not ship: characters / 4, the usual rule of thumb for English.
 */
export function methodFor(model: string): TokenMethod {
  const name = model.toLowerCase().split('/').pop() ?? '';
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|o1|o3|o4)/.test(name)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5|gpt-35)/.test(name)) return 'cl100k_base';
  return 'chars/4';
}

/** Counts the tokens of one text. */
export type Counter = (text: string) => number;

const counters = new Map<TokenMethod, Promise<Counter>>();

/**
 * The counter of a method. gpt-tokenizer's encodings (pure JavaScript, MIT, no dependencies) are imported
 * only when a server first leaves usage out (or `personaflow estimate` counts prompts): loading one takes
 * about a second and ~60 MB, which runs against servers that report usage never pay.
 */
export function counterFor(method: TokenMethod): Promise<Counter> {
  let counter = counters.get(method);
  if (counter === undefined) {
    counter =
      method === 'o200k_base'
        ? import('gpt-tokenizer/encoding/o200k_base').then((module) => (text: string) => module.countTokens(text))
        : method === 'cl100k_base'
          ? import('gpt-tokenizer/encoding/cl100k_base').then((module) => (text: string) => module.countTokens(text))
          : Promise.resolve((text: string) => Math.ceil(text.length / 4));
    counters.set(method, counter);
  }
  return counter;
}

/** Tokens OpenAI's chat format adds per message (role and separators), and to prime the reply. */
export const PER_MESSAGE = 3;
export const REPLY_PRIMING = 3;

/**
 * The usage of one call, counted here: the prompt's messages with the chat format's overhead, and the
 * reply. Marked `estimated`, so usage.json and the summary can say so.
 *
 * @example
 * await countUsage('gpt-4o-mini', [{ role: 'user', content: 'Hello' }], 'Hi there!') // { input: 7, output: 3, estimated: true }
 */
export async function countUsage(model: string, messages: readonly ChatMessage[], reply: string): Promise<TokenUsage & { readonly method: TokenMethod }> {
  const method = methodFor(model);
  const count = await counterFor(method);
  let input = REPLY_PRIMING;
  for (const message of messages) input += PER_MESSAGE + count(message.content);
  return { input, output: count(reply), estimated: true, method };
}

/**
 * Whether a reported usage could be true of this call: no more prompt tokens than 4 per byte of the
 * prompt (a token is at least one byte in every byte-level tokenizer; 4× leaves room for system text a
 * provider adds) plus 4,096, and no more completion tokens than 4 × the cap asked for (65,536 when none)
 * plus 4,096. A reply claiming 10^15 tokens was billed as $750M.
 */
export function plausibleUsage(usage: TokenUsage, messages: readonly ChatMessage[], maxCompletionTokens: number | undefined): boolean {
  let bytes = 0;
  for (const message of messages) bytes += Buffer.byteLength(message.content);
  return usage.input <= 4 * bytes + 4096 && usage.output <= 4 * (maxCompletionTokens ?? 65_536) + 4096;
}
