// `generate --dry-run` / `--preview`: before a long run, what the models will see (the simulator's and the assistant's prompts) and one whole conversation, on stdout; nothing written, no lock.
import type { ChatMessage, ChatModel, ChatRequest, RetryListener } from '../chat.js';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { generate, type GenerateOptions } from '../pipeline.js';
import { userSimulatorMessages } from '../prompts/simulator.js';
import { printable } from '../redact.js';
import { BrokenPipeError, streamTarget } from '../sinks/stdout.js';
import { UsageTotals } from '../sinks/usage.js';
import { openInput } from '../streams/ndjson.js';
import { verdictOf, type Interaction, type Outcome, type Task } from '../types.js';
import { assertReadable } from './common.js';
import type { GenerateFlags } from './flags.js';
import { readInput } from './generate.js';
import { resumeFlags } from './invocation.js';
import { Reporter } from './reporter.js';
import { callLine, retryLine } from './verbose.js';
import { settingsOf, setUpConversations } from './setup.js';

/** The flags of a long run that a preview does not use, as the notice names them. */
const NOT_APPLIED: readonly [keyof GenerateFlags, string][] = [
  ['out', '--out (nothing is written there, and no lock is taken)'],
  ['queue', '--queue'],
  ['batch', '--batch (the one conversation is called online)'],
  ['maxCost', '--max-cost'],
  ['supplementRounds', '--supplement-rounds'],
  ['limit', '--limit'],
];

/**
 * Runs `generate --dry-run` or `generate --preview` and returns the exit code: the run's configuration,
 * models, prompts and noise, exactly as `generate` sets them up, on the first task of the input (of the
 * shard), one conversation, printed turn by turn with the prompts the simulator and the assistant were
 * given. `--dry-run` calls no model: every model is sim (model names kept), so it is free and works
 * offline. `--preview` calls the configured models: one conversation's calls (and the judge's, when one
 * runs), whose usage and cost are printed.
 */
export async function runPreview(typedFile: string | undefined, typed: GenerateFlags): Promise<number> {
  if (typed.dryRun === true && typed.preview === true) throw new ConfigError('--dry-run and --preview do not go together: --dry-run calls no model (sim stands in), --preview calls the configured models for one conversation');
  const report = new Reporter(typed.quiet === true, typed.verbose === true);
  const dry = typed.dryRun === true;
  const mode = dry ? '--dry-run' : '--preview';
  // `--out DIR --resume --dry-run`: the settings the run in DIR was started with (its run.json is only read).
  const { file, flags } = await resumeFlags(typedFile, typed.out === '-' ? { ...typed, out: undefined } : typed);
  const loaded = await loadConfig(flags.config);
  const settings = settingsOf(loaded.config, dry ? { ...flags, provider: 'sim' } : flags);
  await assertReadable(file, 'personas');
  const queriesFile = flags.queriesPath ?? flags.queries;
  if (queriesFile !== undefined) await assertReadable(queriesFile, 'query');
  // What the user typed, not what a resumed run.json holds.
  const unused = NOT_APPLIED.filter(([flag]) => typed[flag] !== undefined && typed[flag] !== false).map(([, name]) => name);
  if (unused.length > 0) report.notice(`${mode}: one conversation runs here and nothing is written; not applied: ${unused.join(', ')}`);
  const totals = new UsageTotals(loaded.config.personaflow.prices);
  const conversations = await setUpConversations(
    loaded,
    { ...settings, supplement_rounds: 0 },
    { concurrency: 1, threads: flags.threads, strict: flags.strict, quiet: flags.quiet, onUsage: totals.call.bind(totals), queriesFile, simFallback: flags.model === undefined && loaded.named.length === 0, onNotice: (message) => report.say(message), onWarning: (message) => report.warning(message), onCall: report.verbose ? (call) => report.detail(callLine(call)) : undefined },
    report,
  );
  const { models, queries } = conversations;
  try {
    const simulator: ChatRequest[] = [];
    const onRetry: RetryListener = (module, error, note) => report.detail(retryLine(module, error, note, conversations.options.maxRetries));
    const options: GenerateOptions = { ...conversations.options, onRetry, concurrency: 1, user: { ...conversations.options.user, model: recording(conversations.options.user.model, simulator) } };
    const input = openInput(file);
    const task = await first(readInput({ options, config: loaded.config, queries, flags: { ...flags, limit: 1 }, report }, input.stream, input.name));
    input.stream.destroy();
    if (task === undefined) {
      report.say(`${mode}: the input held no task, so there is nothing to show`);
      return 3;
    }
    const outcome = await oneConversation(task, options);
    const simulated = models.providers.every((provider) => provider === 'sim');
    const text = render({ task, outcome, simulator: simulator[0], fallbackPrompt: () => promptAfterFirstAnswer(task, outcome, options), totals, dry, simulated });
    try {
      await streamTarget(process.stdout)(text);
    } catch (error) {
      if (error instanceof BrokenPipeError) return 0;
      throw error;
    }
    return outcome.ok ? 0 : 3;
  } finally {
    await models.close();
    await queries.dataset?.close();
  }
}

/** The first item of `source` (then it is closed: no more input is read), or undefined. */
async function first<T>(source: AsyncIterable<T>): Promise<T | undefined> {
  for await (const item of source) return item;
  return undefined;
}

/** `model`, with every request it is sent kept in `into`. */
function recording(model: ChatModel, into: ChatRequest[]): ChatModel {
  return {
    provider: model.provider,
    model: model.model,
    complete: (request, signal) => {
      into.push(request);
      return model.complete(request, signal);
    },
  };
}

/** The task's conversation through the run's own pipeline (lockModel, noise, converse, the judge), its outcome kept. */
function oneConversation(task: Task, options: GenerateOptions): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    let result: Outcome | undefined;
    generate(one(task), options, (outcome) => {
      result = outcome;
      return Promise.resolve();
    }).subscribe({
      error: reject,
      complete: () => (result === undefined ? reject(new Error('the preview conversation left no outcome')) : resolve(result)),
    });
  });
}

async function* one(task: Task): AsyncGenerator<Task> {
  yield await Promise.resolve(task);
}

/**
 * The simulator's prompt when the conversation ended before the simulator spoke (a target of one turn,
 * `stop_policy: personagym`): as it would have been sent after the assistant's first answer.
 */
function promptAfterFirstAnswer(task: Task, outcome: Outcome, options: GenerateOptions): readonly ChatMessage[] {
  const history = outcome.ok ? outcome.interaction.messages.slice(0, 2) : [{ role: 'user' as const, content: task.initialQuery }];
  return userSimulatorMessages(options.user.template, {
    persona: outcome.ok ? outcome.interaction.persona_features : task.personaFeatures,
    systemPrompt: task.systemPrompt,
    originalQuery: task.originalQuery,
    facts: task.facts ?? [],
    history,
    currentTurn: 1,
    targetTurns: task.targetTurns,
    minTurns: options.minTurns,
    maxTurns: options.maxTurns,
    stopToken: options.stopToken ?? '',
  });
}

/** A text as the terminal shows it: control characters escaped, each line after the first indented. */
const block = (text: string, indent = '  '): string =>
  text
    .split('\n')
    .map((line) => printable(line))
    .join(`\n${indent}`);

const heading = (title: string): string => `\n== ${title} ==`;

interface Shown {
  readonly task: Task;
  readonly outcome: Outcome;
  /** The simulator's first request, when it was called. */
  readonly simulator: ChatRequest | undefined;
  readonly fallbackPrompt: () => readonly ChatMessage[];
  readonly totals: UsageTotals;
  readonly dry: boolean;
  /** Every model of the run was sim (a dry run, or no key set). */
  readonly simulated: boolean;
}

/** The preview as text: what ran, the two system prompts, the conversation turn by turn (noise against the clean text), the judge's verdict, the usage. */
function render(shown: Shown): string {
  const { task, outcome, totals } = shown;
  const out: string[] = [];
  const interaction = outcome.ok ? outcome.interaction : undefined;
  out.push(
    shown.dry
      ? 'personaflow generate --dry-run: no model was called; the built-in sim provider stood in for every model (model names kept), so the replies below are simulated. Nothing was spent, nothing was written.'
      : shown.simulated
        ? 'personaflow generate --preview: every model ran on the built-in sim provider (see the notice on stderr), so the replies below are simulated. Nothing was written.'
        : 'personaflow generate --preview: one conversation with the configured models (billed: see the usage at the end). Nothing was written.',
  );
  out.push(`task: persona ${printable(task.personaId)}, query ${printable(task.queryId)} (${printable(task.source)}), target ${task.targetTurns} turn(s)`);
  const prompt = shown.simulator?.messages ?? shown.fallbackPrompt();
  const opening = prompt[0];
  const userModel = interaction === undefined ? undefined : `${interaction.metadata.user_model.provider}/${interaction.metadata.user_model.model}`;
  const note = shown.simulator === undefined ? ' (the simulator was not called: the conversation ended first; as it would be sent after the first answer)' : '';
  if (opening?.role === 'system') out.push(heading(`user simulator${userModel === undefined ? '' : ` ${userModel}`}: system prompt${note}`), block(opening.content, ''));
  else if (opening !== undefined) out.push(heading(`user simulator${userModel === undefined ? '' : ` ${userModel}`}: prompt (one user message, the conversation inlined)${note}`), block(opening.content, ''));
  if (interaction !== undefined) {
    const assistant = `${interaction.metadata.assistant_model.provider}/${interaction.metadata.assistant_model.model}`;
    out.push(heading(`assistant ${assistant}: system prompt`), block(typeof interaction.metadata.assistant_system_prompt === 'string' ? interaction.metadata.assistant_system_prompt : '', ''));
    out.push(heading(`conversation: ${interaction.num_turns} turn(s), ended by ${interaction.metadata.end_reason}`), ...conversationLines(interaction));
    const verdict = verdictOf(interaction);
    if (verdict !== undefined) out.push(heading(`judge: ${verdict.verdict}`), ...(verdict.reasons.length === 0 ? [] : [`reasons: ${verdict.reasons.map(printable).join(', ')}`]));
  } else if (!outcome.ok) {
    const { failure } = outcome;
    out.push(heading('the conversation failed'), `${failure.error.kind} after ${failure.attempts} attempt(s): ${printable(failure.error.message)}`);
  }
  out.push(heading('usage'), usageLine(totals, shown.dry));
  for (const [model, usage] of Object.entries(totals.byModel)) out.push(`  ${printable(model)}: ${usage.call_count} call(s), ${usage.input_tokens} input + ${usage.output_tokens} output tokens`);
  return `${out.join('\n')}\n`;
}

/**
 * Each message as `[n] role: text`, n the user → assistant exchange it belongs to; a noised user turn is
 * followed by the clean text it was made from.
 */
function conversationLines(interaction: Interaction): string[] {
  const lines: string[] = [];
  if (interaction.metadata.style_transfer !== undefined) lines.push(`(the first message was restyled by style transfer from the query: ${block(interaction.original_query)})`);
  let answered = 0;
  for (const message of interaction.messages) {
    if (message.role === 'assistant') answered += 1;
    const label = message.role === 'assistant' ? `[${answered}] assistant` : message.metadata.is_closing === true ? '[end] user' : `[${answered + 1}] user`;
    lines.push(`${label}: ${block(message.content)}`);
    if (message.metadata.was_noised === true && typeof message.metadata.clean_version === 'string') lines.push(`    (noised; the clean text: ${block(message.metadata.clean_version, '    ')})`);
  }
  return lines;
}

/** Calls, tokens and what they cost; a model without a price is named, never counted as free. */
function usageLine(totals: UsageTotals, dry: boolean): string {
  const cost = totals.cost();
  const spent = dry ? 'nothing spent (sim)' : cost.unpriced_models.length > 0 ? `cost unknown: no price for ${cost.unpriced_models.map(printable).join(', ')} under personaflow.prices${cost.total > 0 ? ` ($${cost.total.toFixed(6)} for the priced ones)` : ''}` : `$${cost.total.toFixed(6)}`;
  return `${totals.calls} call(s), ${totals.runTokens} tokens; ${spent}`;
}
