// What the failures of a run have in common: the most common reason (for progress), and the early stop when the first ones all fail alike.
import { printable } from '../redact.js';
import { unfinished, type Failure, type Outcome } from '../types.js';

/** Reasons told apart before the rest are counted under the ones already seen (a bound on memory). */
const MAX_REASONS = 200;
/** A reason as progress shows it, at most this long. */
const SHOWN = 120;

/** The model a message names first (`openai/gpt-4o-mini: ...`), left out when reasons are compared. */
const MODEL_PREFIX = /^[\w.-]+\/[^\s:]+(?: at \S+)?: /;

/**
 * The reason of a failure, normalised so that failures of one cause compare equal: its kind and message
 * without the model it names, numbers and long ids (request ids, timestamps) left out. `shown` is the
 * message as a person reads it: printable and at most 120 characters.
 *
 * @example
 * reasonOf({ kind: 'server', message: 'openai/m: server error (500): overloaded (req 8f2a9c1d77)' })
 * // { key: 'server|server error (#): overloaded (req *)', shown: 'openai/m: server error (500): overloaded (req 8f2a9c1d77)' }
 */
export function reasonOf(error: Failure['error']): { readonly key: string; readonly shown: string } {
  const message = error.message.replace(MODEL_PREFIX, '');
  const key = `${error.kind}|${message.replace(/\b(?=[\w-]*\d)[\w-]{8,}\b/g, '*').replace(/\d+/g, '#').toLowerCase()}`;
  const text = printable(error.message);
  return { key, shown: text.length <= SHOWN ? text : `${text.slice(0, SHOWN - 1)}…` };
}

/** Counts failures by reason; the most common one is what the progress line names. */
export class FailureTally {
  readonly #counts = new Map<string, { shown: string; count: number }>();
  #top: { shown: string; count: number } | undefined;

  add(failure: Failure): void {
    const { key, shown } = reasonOf(failure.error);
    let entry = this.#counts.get(key);
    if (entry === undefined) {
      if (this.#counts.size >= MAX_REASONS) return;
      entry = { shown, count: 0 };
      this.#counts.set(key, entry);
    }
    entry.count += 1;
    if (this.#top === undefined || entry.count > this.#top.count) this.#top = entry;
  }

  /** The most common reason so far and how many failed so (the first to reach that count wins a tie). */
  top(): { readonly reason: string; readonly count: number } | undefined {
    return this.#top === undefined ? undefined : { reason: this.#top.shown, count: this.#top.count };
  }
}

/**
 * How many of the first conversations must all fail alike before a run stops: max(8, min(concurrency, 32)).
 * At least 8, so a couple of unlucky conversations never stop a run; as many as run at once up to 32, so a
 * wide run sees a whole round of them fail before it gives up; never more, so it spends little on a cause
 * that fails everything.
 */
export const earlyStopAfter = (concurrency: number): number => Math.max(8, Math.min(concurrency, 32));

/** What a person can do about a kind of failure, for the early stop's line. */
const REMEDY: Readonly<Record<string, string>> = {
  auth: 'check the API key',
  endpoint: 'check the base URL and the model name',
  unreachable: 'check that the server is running and the base URL',
  rate_limit: "the provider refuses every call as over its limit: check the account's quota and billing, or lower -j or personaflow.limits",
  server: "the server fails every call: check its status or logs, or try again later",
  timeout: 'no call answers in time: check that the server is up, or raise api.timeout or lower -j',
  network: 'connections break: check the network and the base URL',
  malformed: 'the answers are not chat completions: check the base URL and that the server speaks the OpenAI API',
  bad_request: "the server rejects the requests: check the model's settings in the config (temperature, max_completion_tokens, headers) and the model name",
  guard: "the user simulator's replies never pass the guards: check the user model and its template (the rejected replies are in guard-rejections.ndjson with --out)",
  judge: "the judge's answers cannot be read: check judge.llm's model",
};

/**
 * Watches the first outcomes of a run: when every one of the first `after` conversations failed for the
 * same reason (same kind, same normalised message: a 400 for a parameter the model refuses, a quota
 * exhausted, a server that fails every call), it says so once, so the run stops instead of paying for the
 * rest. One success, or a second reason, among the first `after` and it never stops the run. Cut-short
 * conversations (a Ctrl-C) do not count.
 */
export class EarlyStop {
  #seen = 0;
  #key: string | undefined;
  #alike = true;
  #first: Failure | undefined;

  constructor(readonly after: number) {}

  /** Tells the stop about an outcome as it is written; returns the line to stop with, once. */
  observe(outcome: Outcome): string | undefined {
    if (!this.#alike || this.#seen >= this.after || unfinished(outcome)) return undefined;
    this.#seen += 1;
    if (outcome.ok) {
      this.#alike = false;
      return undefined;
    }
    const { key } = reasonOf(outcome.failure.error);
    if (this.#key === undefined) {
      this.#key = key;
      this.#first = outcome.failure;
    } else if (key !== this.#key) {
      this.#alike = false;
      return undefined;
    }
    if (this.#seen < this.after) return undefined;
    const failure = this.#first as Failure;
    const remedy = REMEDY[failure.error.kind] ?? 'see failures.ndjson';
    return `every one of the first ${this.after} conversations failed the same way (${failure.error.kind}): ${printable(failure.error.message)}; stopped before spending on the rest. ${remedy[0]?.toUpperCase() ?? ''}${remedy.slice(1)}`;
  }
}
