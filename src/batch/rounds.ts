// The rounds of a batch run: every call the conversations are waiting on, gathered, submitted together, and answered.
import type { ChatModel, ChatRequest, ChatResponse } from '../chat.js';
import { ModelError, describeError } from '../errors.js';
import { splitFiles, type FileLimits } from './files.js';
import type { BatchJournal } from './journal.js';
import { bodyOf, customIdOfLine, digestOf, lineOf, resultOf, type LineTarget } from './lines.js';
import type { PollOptions } from './poll.js';
import type { BatchInfo, BatchLine, BatchProvider } from './provider.js';
import { runFile, settleBatch, type StepOptions } from './round.js';

export interface BatchRoundsOptions {
  readonly limits: FileLimits;
  readonly poll: PollOptions;
  /** Milliseconds without a new call before a round is submitted: the conversations that can go on have asked. */
  readonly gatherMs: number;
  /** Attempts of each upload, create and download on transient errors. */
  readonly attempts?: number;
  /** The provider's completion window, said with each round (`24h`). */
  readonly completionWindow?: string;
  /** Lines for stderr: rounds, batch states, requests done. */
  readonly onEvent?: (text: string) => void;
}

/** One call waiting for its round. */
interface Pending {
  readonly provider: BatchProvider;
  readonly line: BatchLine;
  readonly where: string;
  readonly resolve: (response: ChatResponse) => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
}

/** What progress shows about the rounds. */
export interface RoundFigures {
  readonly round: number;
  /** Requests submitted in all rounds, and those that came back (answered or failed). */
  readonly submitted: number;
  readonly done: number;
  /** Answers taken from results an earlier run into the same directory paid for. */
  readonly reused: number;
  /** Each batch of the current round and its last known state. */
  readonly batches: ReadonlyMap<string, string>;
}

/**
 * Gathers the model calls of every conversation into rounds. A call waits in the current gathering; once
 * `gatherMs` pass without a new one, the round is cut into input files per endpoint and model, submitted,
 * polled and downloaded, and each result goes to its call by custom id; the conversations go on and
 * their next calls gather into the next round. One round runs at a time.
 *
 * A call's custom id is the digest of the request and how many identical requests this run made before
 * it, so the calls a resumed run replays find the results an earlier run downloaded (batch-results.ndjson)
 * and the batches it left running (reattached before the first round of the resume), and pay for none
 * of them again.
 */
export class BatchRounds {
  readonly #options: BatchRoundsOptions;
  readonly #providers = new Map<string, BatchProvider>();
  readonly #seen = new Map<string, number>();
  #journal: BatchJournal | undefined;
  #cache = new Map<string, string>();
  readonly #abort = new AbortController();
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #reattached = false;
  #round = 0;
  #submitted = 0;
  #done = 0;
  #reused = 0;
  #batches = new Map<string, string>();
  #closed = false;

  constructor(options: BatchRoundsOptions) {
    this.#options = options;
  }

  /**
   * Opens the rounds on the run's record (--out DIR): what an earlier run downloaded and left in flight is
   * taken from it, and every id is written to it. Before this, no call can be made.
   */
  start(journal: BatchJournal): void {
    this.#journal = journal;
    this.#round = journal.rounds;
  }

  get #record(): BatchJournal {
    if (this.#journal === undefined) throw new Error('BatchRounds: a call before start(journal)');
    return this.#journal;
  }

  get figures(): RoundFigures {
    return { round: this.#round, submitted: this.#submitted, done: this.#done, reused: this.#reused, batches: this.#batches };
  }

  /** The provider of an endpoint; one per key, so lines of one endpoint share files. */
  provider(provider: BatchProvider): BatchProvider {
    const known = this.#providers.get(provider.key);
    if (known !== undefined) return known;
    this.#providers.set(provider.key, provider);
    return provider;
  }

  /** A call of `model` (described by `target`) through the rounds: resolves when its round's results arrive. */
  call(provider: BatchProvider, target: LineTarget, model: ChatModel, request: ChatRequest, signal: AbortSignal): Promise<ChatResponse> {
    const body = bodyOf(target, request);
    const digest = digestOf(target, request, body);
    const nth = this.#seen.get(digest) ?? 0;
    this.#seen.set(digest, nth + 1);
    const customId = `pf-${digest}-${nth}`;
    const where = `${target.provider}/${target.model}`;
    const cached = this.#take(customId, where);
    if (cached !== undefined) return cached;
    if (this.#journal === undefined) return Promise.reject(new Error('BatchRounds: a call before start(journal)'));
    if (this.#closed || signal.aborted) return Promise.reject(new ModelError('aborted', `${where}: batch call aborted`));
    return new Promise<ChatResponse>((resolve, reject) => {
      const pending: Pending = { provider: this.provider(provider), line: { customId, text: lineOf(customId, body), model, request }, where, resolve, reject, settled: false };
      this.#pending.push(pending);
      signal.addEventListener(
        'abort',
        () => {
          // Still gathering: it leaves the round. Already submitted: its result is recorded when it comes, and nobody waits for it.
          this.#pending = this.#pending.filter((other) => other !== pending);
          this.#settle(pending, { ok: false, error: new ModelError('aborted', `${where}: batch call aborted`) });
        },
        { once: true },
      );
      this.#schedule();
    });
  }

  /** Stops: no new rounds, polling aborted, waiting calls rejected as aborted. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    for (const pending of this.#pending) this.#settle(pending, { ok: false, error: new ModelError('aborted', `${pending.where}: batch run closed`) });
    this.#pending = [];
  }

  /** A result this run already holds for the call: reattached, or downloaded by an earlier run (each taken once). */
  #held(customId: string): string | undefined {
    const line = this.#cache.get(customId);
    if (line !== undefined) {
      this.#cache.delete(customId);
      return line;
    }
    return this.#journal?.takePrevious(customId);
  }

  #take(customId: string, where: string): Promise<ChatResponse> | undefined {
    const line = this.#held(customId);
    if (line === undefined) return undefined;
    this.#reused += 1;
    const result = resultOf(line, where);
    return result.ok ? Promise.resolve(result.response) : Promise.reject(result.error);
  }

  #settle(pending: Pending, result: { readonly ok: true; readonly response: ChatResponse } | { readonly ok: false; readonly error: unknown }): void {
    if (pending.settled) return;
    pending.settled = true;
    if (result.ok) pending.resolve(result.response);
    else pending.reject(result.error);
  }

  #schedule(): void {
    if (this.#running || this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#runRound(), this.#options.gatherMs);
  }

  #say(text: string): void {
    this.#options.onEvent?.(text);
  }

  #steps(round: number): StepOptions {
    return {
      journal: this.#record,
      poll: this.#options.poll,
      attempts: this.#options.attempts ?? 5,
      round,
      onState: (batch: BatchInfo) => {
        const before = this.#batches.get(batch.id);
        const state = `${batch.status}${batch.counts === undefined ? '' : ` ${batch.counts.completed + batch.counts.failed}/${batch.counts.total}`}`;
        this.#batches.set(batch.id, state);
        if (before !== state) this.#say(`batch ${batch.id}: ${state}`);
      },
    };
  }

  /** Before the first round of a resume: the batches an earlier run left are waited for and their results kept. */
  async #reattach(): Promise<void> {
    this.#reattached = true;
    const unsettled = this.#record.unsettled;
    if (unsettled.length === 0) return;
    this.#say(`batch: reattaching to ${unsettled.length} batch(es) an earlier run left in flight`);
    const signal = this.#abort.signal;
    const steps = this.#steps(this.#round);
    await Promise.all(
      unsettled.map(async (left) => {
        const provider = this.#providers.get(left.provider);
        if (provider === undefined) {
          this.#say(`batch: cannot reattach to ${left.batchId ?? `the batch of ${left.fileId}`}: no model of this run is at ${left.provider}; its requests are submitted again`);
          return;
        }
        try {
          const batchId = left.batchId ?? (await provider.findByInputFile(left.fileId, signal))?.id;
          if (batchId === undefined) return; // never created: its requests go into the next round
          if (left.batchId === undefined) await this.#record.record({ event: 'created', provider: left.provider, file_id: left.fileId, batch_id: batchId, at: new Date().toISOString() });
          for (const line of await settleBatch(provider, batchId, undefined, steps, signal)) {
            const id = customIdOfLine(line);
            if (id !== undefined) this.#cache.set(id, line);
          }
        } catch (error) {
          if (error instanceof ModelError && error.kind === 'aborted') throw error;
          this.#say(`batch: cannot reattach to ${left.batchId ?? left.fileId}: ${describeError(error)}; its requests are submitted again`);
          // A batch the provider does not know (sim's, from a process that is gone) is settled for good, so later resumes do not ask again.
          if (left.batchId !== undefined && error instanceof ModelError && error.status === 404) await this.#record.record({ event: 'downloaded', batch_id: left.batchId, lines: 0, at: new Date().toISOString() });
        }
      }),
    );
  }

  async #runRound(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    let round: Pending[] = [];
    try {
      if (!this.#reattached) {
        await this.#reattach();
        // Calls gathered before the reattachment may find their results now.
        const waiting = this.#pending;
        this.#pending = [];
        for (const pending of waiting) {
          const line = this.#held(pending.line.customId);
          if (line === undefined) this.#pending.push(pending);
          else {
            this.#reused += 1;
            this.#settle(pending, resultOf(line, pending.where));
          }
        }
      }
      round = this.#pending.filter((pending) => !pending.settled);
      this.#pending = [];
      if (round.length === 0) return;
      this.#round += 1;
      this.#batches = new Map();
      const number = this.#round;
      const steps = this.#steps(number);
      // One group per endpoint and model: a batch holds requests of one model.
      const groups = new Map<string, Pending[]>();
      for (const pending of round) {
        const key = `${pending.provider.key}\u0000${pending.where}`;
        groups.set(key, [...(groups.get(key) ?? []), pending]);
      }
      const files = [...groups.values()].flatMap((group) => {
        const byId = new Map(group.map((pending) => [pending.line.customId, pending]));
        return splitFiles(
          group.map((pending) => pending.line),
          this.#options.limits,
          (i) => `personaflow-round-${number}-${group[0]?.where.replace(/[^A-Za-z0-9._-]/g, '_') ?? 'model'}-${i + 1}.jsonl`,
        ).map((file) => ({ file, provider: (group[0] as Pending).provider, pendings: file.lines.map((line) => byId.get(line.customId) as Pending) }));
      });
      this.#submitted += round.length;
      this.#say(`batch round ${number}: ${round.length} request(s) in ${files.length} file(s)${this.#options.completionWindow === undefined ? '' : `, results due within ${this.#options.completionWindow}`}`);
      let failed = 0;
      await Promise.all(
        files.map(async ({ file, provider, pendings }) => {
          let lines: string[];
          try {
            lines = await runFile(provider, file, steps, this.#abort.signal);
          } catch (error) {
            // The file never became a batch that ended (upload or create refused, polling stopped): its calls fail as that call would have.
            for (const pending of pendings) this.#settle(pending, { ok: false, error });
            failed += pendings.length;
            this.#done += pendings.length;
            return;
          }
          const byId = new Map(pendings.map((pending) => [pending.line.customId, pending]));
          for (const line of lines) {
            const id = customIdOfLine(line);
            const pending = id === undefined ? undefined : byId.get(id);
            if (pending === undefined) continue;
            const result = resultOf(line, pending.where);
            if (!result.ok) failed += 1;
            this.#done += 1;
            this.#settle(pending, result);
          }
        }),
      );
      this.#say(`batch round ${number}: done, ${round.length - failed} answered, ${failed} failed or expired (retried next round within max_retries)`);
    } catch (error) {
      // A round that could not run at all (stopped, a request too big for any file): its calls fail with why.
      for (const pending of [...round, ...this.#pending]) this.#settle(pending, { ok: false, error });
      this.#pending = [];
    } finally {
      this.#running = false;
      if (this.#pending.length > 0) this.#schedule();
    }
  }
}
