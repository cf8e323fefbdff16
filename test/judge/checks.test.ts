// The judge's deterministic layer: precision and recall per tag on a labelled corpus, and exactly one tag per injected defect.
import { writeFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { CHECK_TAGS, deterministicChecks, type CheckTag, type Checkable } from '../../src/judge/checks.js';
import type { Features, InteractionMessage } from '../../src/types.js';
import { JUDGED, type JudgedConversation } from '../fixtures/judged-conversations.js';

/** The tags the corpus labels (too_short depends on an option and near_duplicate on other conversations: tested apart). */
const CORPUS_TAGS: readonly CheckTag[] = ['user_assistant_voice', 'premature_stop', 'user_out_of_character', 'truncated_answer', 'assistant_refusal', 'user_too_long', 'user_repeats'];

/** Per tag: conversations labelled with it, found with it, found with it though not labelled (false positives); then clean ones with any finding. */
export function corpusReport(corpus: readonly JudgedConversation[]) {
  const seen = corpus.map((entry) => ({ entry, tags: new Set(deterministicChecks(entry.conversation).map((finding) => finding.tag)) }));
  const rows = CORPUS_TAGS.map((tag) => {
    const labelled = seen.filter(({ entry }) => entry.checks.includes(tag));
    const found = labelled.filter(({ tags }) => tags.has(tag)).length;
    const falsePositives = seen.filter(({ entry, tags }) => !entry.checks.includes(tag) && tags.has(tag)).map(({ entry }) => entry.id);
    return {
      tag,
      labelled: labelled.length,
      found,
      only: labelled.filter(({ tags }) => tags.size === 1 && tags.has(tag)).length,
      falsePositives,
      precision: found + falsePositives.length === 0 ? 1 : found / (found + falsePositives.length),
      recall: labelled.length === 0 ? 1 : found / labelled.length,
    };
  });
  const flagged = (label: string) => seen.filter(({ entry, tags }) => entry.label === label && tags.size > 0).map(({ entry, tags }) => `${entry.id} as ${[...tags].join('+')}`);
  const misses = seen.filter(({ entry, tags }) => entry.checks.some((tag) => !tags.has(tag))).map(({ entry }) => entry.id);
  const defects = seen.filter(({ entry }) => entry.checks.length > 0).length;
  return {
    rows,
    clean: corpus.filter((entry) => entry.label === 'clean').length,
    cleanFlagged: flagged('clean'),
    reviewOnly: corpus.filter((entry) => entry.label === 'hallucination').length,
    reviewOnlyFlagged: flagged('hallucination'),
    defects,
    misses,
    recall: (defects - misses.length) / defects,
  };
}

describe('the labelled corpus of judged conversations', () => {
  it('holds at least 25 clean conversations, and at least 3 of each defect, each an interaction as generate writes it', () => {
    expect(new Set(JUDGED.map((entry) => entry.id)).size).toBe(JUDGED.length);
    expect(JUDGED.filter((entry) => entry.label === 'clean').length).toBeGreaterThanOrEqual(25);
    for (const label of [...CORPUS_TAGS, 'hallucination']) expect(JUDGED.filter((entry) => entry.label === label).length, label).toBeGreaterThanOrEqual(3);
    expect(new Set(JUDGED.map((entry) => entry.conversation.persona_id)).size).toBeGreaterThanOrEqual(20);
    for (const { id, conversation } of JUDGED) {
      const { messages } = conversation;
      const answers = messages.filter((m) => m.role === 'assistant');
      expect(conversation.num_turns, id).toBe(answers.length);
      expect(messages[0]?.metadata, id).toMatchObject({ turn: 0, is_initial: true });
      // Roles alternate, a closing user message aside; every message carries the turn it belongs to.
      messages.forEach((message, i) => {
        const expectedRole = message.metadata.is_closing === true ? 'user' : i % 2 === 0 ? 'user' : 'assistant';
        expect(message.role, `${id} #${i}`).toBe(expectedRole);
        expect(message.metadata.turn, `${id} #${i}`).toBe(messages.slice(0, i).filter((m) => m.role === 'assistant').length);
        if (message.role === 'user') expect(typeof message.metadata.clean_version, `${id} #${i}`).toBe('string');
        if (message.role === 'assistant') expect(['stop', 'length'], `${id} #${i}`).toContain(message.metadata.finish_reason);
      });
      if (conversation.metadata.end_reason === 'max_turns') expect(messages.at(-1)?.role, id).toBe('assistant');
      expect(['user_stop', 'max_turns'], id).toContain(conversation.metadata.end_reason);
    }
  });

  const report = corpusReport(JUDGED);

  /**
   * Measured on the corpus as first written (blind, before any change to the checks), and again after the
   * fix that judges earlier turns as meant: 26 of the 28 defects for the checks found, each with its own tag
   * only; no clean conversation flagged (0 of 28), no invented-fact one either (0 of 4); recall 1 on every
   * tag but assistant_refusal and user_repeats (3 of 4 each), precision 1 on every tag. The two misses come from
   * the shared rules: a refusal that says "I can't write the essay for you..." is not flagged `refused` by
   * src/prompts/assistant.ts (its verbs are help/assist/provide/...), and a repeat in other words ends
   * with "lawn." where the first said "lawn", which guards.ts's word pattern keeps as two words
   * (similarity 0.5, under the 0.7 for a repeat).
   */
  const FLOORS = { recall: 26 / 28, tagRecall: 0.75, precision: 1, cleanFlagged: 0, reviewOnlyFlagged: 0 };

  it(`finds at least ${(FLOORS.recall * 100).toFixed(1)}% of the defects, and at least ${FLOORS.tagRecall * 100}% of every tag`, () => {
    expect(report.recall, JSON.stringify(report.misses)).toBeGreaterThanOrEqual(FLOORS.recall);
    for (const row of report.rows) expect(row.recall, row.tag).toBeGreaterThanOrEqual(FLOORS.tagRecall);
  });

  it('names each defect it finds with its own tag and no other', () => {
    for (const row of report.rows) expect(row.only, row.tag).toBe(row.found);
  });

  it('flags no clean conversation and no conversation whose only defect is for the review (precision 1 on every tag)', () => {
    expect(report.cleanFlagged).toHaveLength(FLOORS.cleanFlagged);
    expect(report.reviewOnlyFlagged).toHaveLength(FLOORS.reviewOnlyFlagged);
    for (const row of report.rows) expect(row.precision, `${row.tag}: ${row.falsePositives.join(', ')}`).toBeGreaterThanOrEqual(FLOORS.precision);
  });
});

/** `JUDGE_REPORT=file.md npx vitest run test/judge/checks.test.ts` writes precision and recall per tag to that file. */
describe.runIf(process.env.JUDGE_REPORT !== undefined)('the report', () => {
  it('writes precision and recall per tag', () => {
    const report = corpusReport(JUDGED);
    const lines = [
      `### judged-conversations.ts: ${report.defects} with a defect for the checks, ${report.clean} clean, ${report.reviewOnly} for the review only`,
      '',
      '| tag | labelled | found | found alone | false positives | precision | recall |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...report.rows.map((row) => `| ${row.tag} | ${row.labelled} | ${row.found} | ${row.only} | ${row.falsePositives.length} | ${row.precision.toFixed(2)} | ${row.recall.toFixed(2)} |`),
      `| all | ${report.defects} | ${report.defects - report.misses.length} | | | | ${report.recall.toFixed(3)} |`,
      '',
      `Missed: ${report.misses.length === 0 ? 'none' : report.misses.join(', ')}.`,
      `Clean conversations flagged: ${report.cleanFlagged.length} of ${report.clean}${report.cleanFlagged.length === 0 ? '' : `: ${report.cleanFlagged.join(', ')}`}.`,
      `Invented-fact conversations flagged (the review's to find): ${report.reviewOnlyFlagged.length} of ${report.reviewOnly}${report.reviewOnlyFlagged.length === 0 ? '' : `: ${report.reviewOnlyFlagged.join(', ')}`}.`,
      '',
    ];
    writeFileSync(process.env.JUDGE_REPORT as string, lines.join('\n'));
    expect(lines.length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Conversations built from known-clean parts, with one defect injected
// ---------------------------------------------------------------------------------------------------------

/** Requests people open with: distinct topics, so that no follow-up repeats one by accident. */
const OPENINGS = [
  'how do i set up a budget spreadsheet for the month',
  'my sourdough starter smells like nail polish, is it dead',
  'best way to learn guitar chords as a complete beginner',
  'how do i get my toddler to eat vegetables',
  'what should i pack for a week of hiking in scotland',
];

/** Follow-ups a real user sends, each on its own topic and with at least three content words. */
const FOLLOW_UPS = [
  'does that also work on windows laptops',
  'how long would the whole thing take roughly',
  'what if my landlord refuses to pay back the deposit',
  'ok and which brand of running shoes would you pick',
  'is it safe to freeze cooked rice',
  'my cat keeps scratching the sofa at night',
  'can i claim mileage on my tax return',
  'the printer says paper jam but theres no paper inside',
  'what temperature should the oven be for chicken thighs',
  'hmm that didnt fix the wifi dropping out',
  'any tips for learning spanish verbs faster',
  'should i repot the monstera before winter',
  'whats a fair price for a used bike',
  'how do i stop the baby waking at 5am',
  'is a 401k better than paying off loans first',
  'the error says module not found after install',
  'can my daughter join the team mid season',
  'what size nails for hanging a heavy mirror',
];

/** Answers that leave nothing open: no question, or only a closing offer. */
const ANSWERS = [
  'Usually, yes. The main thing is to make the change gradually and keep an eye on how it behaves over the next few days; most problems show up early if they show up at all.',
  'Roughly two to three hours for a first attempt, less once you know the steps. Set aside an afternoon so you are not rushing the final part.',
  'It varies by region, so check the official guidance where you live. As a rule of thumb, keep written records of everything, since that is what settles disputes later.',
  'I would go with a mid-range option rather than the cheapest one. The cheap ones tend to wear out within a year, and the premium ones mostly add features you will not use.',
  'Yes, as long as it cools quickly and goes into the freezer within an hour or so. Reheat it until it is steaming hot all the way through, and only reheat it once.',
  'That behaviour is very common and usually means the current arrangement is not working for them. Offer an alternative nearby and reward them when they use it; punishment tends to make it worse.',
  'You can, provided you keep a log with dates, distances and the purpose of each trip. The allowance is fixed each year, so look up the current rate before you file.',
  'Open every cover and look for small torn scraps near the rollers, the usual cause. Switching it off and on again after clearing them resets the sensor. Does that help?',
  'Around 200 °C for 35 to 40 minutes, until the juices run clear and the thickest part reaches 75 °C on a thermometer.',
  'Then the cause is probably elsewhere. Move closer to the router for a while to rule out range, and if it still drops, updating its firmware is the next step.',
  'Little and often works better than long sessions: ten minutes a day with flashcards beats an hour on Sunday. Anything else I can help with?',
  'Spring is the best time, when it starts growing again. In winter it grows slowly and recovers badly from root disturbance, so waiting a few months does no harm.',
];

/** Answers that end asking the user for a detail: a user who stops after one stops too early. */
const ASKING = [
  'I can help with that, but the steps differ between versions. Which version are you using?',
  'That could be a few different things. What exactly does the error message say?',
  'The rules depend on the country. Where do you live?',
  'To give you a useful number I need a bit more information. Roughly how much do you earn a month?',
  'Before I suggest anything: how old is your child, and how much does she weigh?',
];

/** User turns in an assistant's voice. */
const ASSISTANT_VOICED = [
  "Great question! Here's a quick summary of what we covered so far.",
  'I hope this helps! Let me know if you have any other questions.',
  'Sure! Here are the steps:\n1. Open the settings menu.\n2. Click on the account tab.\n3. Save your changes.',
  "You'll want to check the cables first, and don't worry, this is a very common issue.",
  'Would you like me to put together a short plan for the next two weeks?',
];

const CLOSINGS = ['ok thanks', "perfect, that's all i needed", 'great, cheers', 'got it'];

const PERSONAS: readonly Features[] = [
  { communication_style: 'casual', query_length_pref: 'very_short' },
  { communication_style: 'terse', tech_proficiency: 'expert', query_length_pref: 'short' },
  { communication_style: 'formal', age_band: '55+', tech_proficiency: 'novice', query_length_pref: 'medium' },
  { role: 'student', age_band: '13-17' },
];

/** Light noise as the distractor makes it: every word of five letters or more loses its second letter. */
const noisy = (text: string): string => text.replace(/\b([a-z])[a-z]([a-z]{3,})\b/g, '$1$2');

type Defect =
  | { readonly kind: 'assistant_voice'; readonly at: number; readonly text: string }
  | { readonly kind: 'truncated'; readonly at: number; readonly how: 'flag' | 'finish_reason' | 'both' }
  | { readonly kind: 'refused'; readonly at: number }
  | { readonly kind: 'premature_stop'; readonly text: string; readonly closing: boolean }
  | { readonly kind: 'too_short'; readonly missing: number }
  | { readonly kind: 'repeat'; readonly at: number; readonly of: number };

interface Parts {
  readonly persona: Features;
  readonly opening: string;
  readonly followUps: readonly string[];
  readonly answers: readonly string[];
  /** Which user turns (0: the opening) the distractor noised. */
  readonly noised: readonly boolean[];
  readonly end: 'user_stop' | 'max_turns';
  readonly closing: string | undefined;
}

/** 2 to 6 exchanges from the pools, distinct texts each, some user turns noised. */
const arbParts: fc.Arbitrary<Parts> = fc.integer({ min: 2, max: 6 }).chain((turns) =>
  fc.record({
    persona: fc.constantFrom(...PERSONAS),
    opening: fc.constantFrom(...OPENINGS),
    followUps: fc.shuffledSubarray(FOLLOW_UPS, { minLength: turns - 1, maxLength: turns - 1 }),
    answers: fc.shuffledSubarray(ANSWERS, { minLength: turns, maxLength: turns }),
    noised: fc.array(fc.boolean(), { minLength: turns, maxLength: turns }),
    end: fc.constantFrom('user_stop' as const, 'max_turns' as const),
    closing: fc.option(fc.constantFrom(...CLOSINGS), { nil: undefined }),
  }),
);

/** One defect at a random place in a conversation of `turns` exchanges. */
const arbDefect = (turns: number): fc.Arbitrary<Defect> =>
  fc.oneof(
    fc.record({ kind: fc.constant('assistant_voice' as const), at: fc.integer({ min: 1, max: turns - 1 }), text: fc.constantFrom(...ASSISTANT_VOICED) }),
    fc.record({ kind: fc.constant('truncated' as const), at: fc.integer({ min: 0, max: turns - 1 }), how: fc.constantFrom('flag' as const, 'finish_reason' as const, 'both' as const) }),
    fc.record({ kind: fc.constant('refused' as const), at: fc.integer({ min: 0, max: turns - 1 }) }),
    fc.record({ kind: fc.constant('premature_stop' as const), text: fc.constantFrom(...ASKING), closing: fc.boolean() }),
    fc.record({ kind: fc.constant('too_short' as const), missing: fc.integer({ min: 1, max: 4 }) }),
    fc.integer({ min: 1, max: turns - 1 }).chain((at) => fc.record({ kind: fc.constant('repeat' as const), at: fc.constant(at), of: fc.integer({ min: 0, max: at - 1 }) })),
  );

/** What the deterministic layer must say of a defect: its one tag, and the turn it is about. */
const expected = (defect: Defect, turns: number): { tag: CheckTag; turn: number } => {
  switch (defect.kind) {
    case 'assistant_voice':
      return { tag: 'user_assistant_voice', turn: defect.at };
    case 'truncated':
      return { tag: 'truncated_answer', turn: defect.at };
    case 'refused':
      return { tag: 'assistant_refusal', turn: defect.at };
    case 'premature_stop':
      return { tag: 'premature_stop', turn: turns - 1 };
    case 'too_short':
      return { tag: 'too_short', turn: turns };
    case 'repeat':
      return { tag: 'user_repeats', turn: defect.at };
  }
};

/** The conversation as generate writes it, with the defect (if any) in it, and the minTurns to check it with. */
function build(parts: Parts, defect?: Defect): { conversation: Checkable; minTurns: number } {
  const turns = parts.answers.length;
  const users = [parts.opening, ...parts.followUps];
  if (defect?.kind === 'assistant_voice') users[defect.at] = defect.text;
  if (defect?.kind === 'repeat') users[defect.at] = users[defect.of] as string;
  const answers = [...parts.answers];
  if (defect?.kind === 'premature_stop') answers[turns - 1] = defect.text;
  const end = defect?.kind === 'premature_stop' ? 'user_stop' : parts.end;
  const closing = defect?.kind === 'premature_stop' ? (defect.closing ? 'ok thanks' : undefined) : parts.closing;
  const messages: Pick<InteractionMessage, 'role' | 'content' | 'metadata'>[] = [];
  for (let turn = 0; turn < turns; turn += 1) {
    const text = users[turn] as string;
    const sent = parts.noised[turn] === true ? noisy(text) : text;
    messages.push({ role: 'user', content: sent, metadata: { turn, ...(turn === 0 ? { is_initial: true } : { is_followup: true }), clean_version: text, was_noised: sent !== text } });
    const truncated = defect?.kind === 'truncated' && defect.at === turn;
    const flags = {
      finish_reason: truncated && defect.how !== 'flag' ? 'length' : 'stop',
      ...(truncated && defect.how !== 'finish_reason' ? { truncated: true } : {}),
      ...(defect?.kind === 'refused' && defect.at === turn ? { refused: true } : {}),
    };
    messages.push({ role: 'assistant', content: answers[turn] as string, metadata: { turn, ...flags } });
  }
  if (end === 'user_stop' && closing !== undefined) messages.push({ role: 'user', content: closing, metadata: { turn: turns, is_closing: true, clean_version: closing, was_noised: false } });
  const minTurns = defect?.kind === 'too_short' ? turns + defect.missing : Math.min(turns, 2);
  return { conversation: { persona_features: parts.persona, messages, num_turns: turns, metadata: { end_reason: end, conversation_ended: end === 'user_stop' } }, minTurns };
}

describe('deterministicChecks on conversations built from known-clean parts', () => {
  test.prop([arbParts])('finds nothing in a clean conversation', (parts) => {
    const { conversation, minTurns } = build(parts);
    expect(deterministicChecks(conversation, { minTurns })).toEqual([]);
  });

  test.prop([arbParts.chain((parts) => fc.tuple(fc.constant(parts), arbDefect(parts.answers.length)))])('finds exactly the one injected defect, at its turn, and nothing else', ([parts, defect]) => {
    const { conversation, minTurns } = build(parts, defect);
    const findings = deterministicChecks(conversation, { minTurns });
    const { tag, turn } = expected(defect, parts.answers.length);
    expect(findings.map((finding) => ({ tag: finding.tag, turn: finding.turn }))).toEqual([{ tag, turn }]);
  });

  it('has pools that are clean one by one: every follow-up and opening passes as a user turn after every answer', () => {
    for (const persona of PERSONAS) {
      for (const text of [...OPENINGS, ...FOLLOW_UPS]) {
        for (const answer of ANSWERS) {
          const messages = [
            { role: 'user' as const, content: 'hello there, quick question about something', metadata: { turn: 0 } },
            { role: 'assistant' as const, content: answer, metadata: { turn: 0 } },
            { role: 'user' as const, content: text, metadata: { turn: 1 } },
          ];
          expect(deterministicChecks({ persona_features: persona, messages }), `${text} after ${answer.slice(0, 30)}`).toEqual([]);
        }
      }
    }
  });
});

describe('deterministicChecks, case by case', () => {
  const ask = (content: string, turn: number) => ({ role: 'user' as const, content, metadata: { turn, clean_version: content, was_noised: false } });
  const answer = (content: string, turn: number, extra: Record<string, unknown> = {}) => ({ role: 'assistant' as const, content, metadata: { turn, finish_reason: 'stop', ...extra } });
  const casual = { communication_style: 'casual', query_length_pref: 'very_short' };

  it('does not judge the opening message: it is the dataset query, not the simulator', () => {
    const opening = "Great question! Here's a summary:\n1. Use the settings menu to open the account tab now.\n2. Click save to keep all your changes for later.";
    expect(deterministicChecks({ persona_features: casual, messages: [ask(opening, 0), answer('Done, that is right.', 0)] })).toEqual([]);
  });

  it('judges a noised turn as the user meant it (clean_version), not as it was sent', () => {
    const noisyButMeant = { role: 'user' as const, content: 'I hope this helps! Let me know', metadata: { turn: 1, clean_version: 'ok and for excel files?', was_noised: true } };
    const meantAsAssistant = { role: 'user' as const, content: 'ok nd fr excl?', metadata: { turn: 1, clean_version: 'I hope this helps! Let me know if you have questions.', was_noised: true } };
    const around = (message: typeof noisyButMeant) => ({ persona_features: casual, messages: [ask('how do i dedupe a csv', 0), answer('Use pandas drop_duplicates.', 0), message, answer('Same thing with read_excel.', 1)] });
    expect(deterministicChecks(around(noisyButMeant))).toEqual([]);
    expect(deterministicChecks(around(meantAsAssistant)).map((f) => f.tag)).toEqual(['user_assistant_voice']);
  });

  it('catches a repeat of an earlier noised turn: both are compared as the user meant them', () => {
    const meant = 'how do i remove duplicate emails from my mailing list';
    const messages = [
      { role: 'user' as const, content: 'hw do i remve duplicte emals frm my maling lst', metadata: { turn: 0, is_initial: true, clean_version: meant, was_noised: true } },
      answer('Sort by the email column and use Remove Duplicates in the Data tab.', 0),
      ask('and what about the unsubscribed ones', 1),
      answer('Filter them out first, then remove duplicates.', 1),
      ask(meant, 2),
      answer('As above: Data, then Remove Duplicates.', 2),
    ];
    expect(deterministicChecks({ persona_features: casual, messages }).map((f) => ({ tag: f.tag, turn: f.turn }))).toEqual([{ tag: 'user_repeats', turn: 2 }]);
  });

  it('reports an answer cut at the token limit once, whether the flag, the finish reason or both say so', () => {
    for (const extra of [{ truncated: true }, { finish_reason: 'length' }, { truncated: true, finish_reason: 'length' }]) {
      const messages = [ask('give me a bread recipe', 0), answer('Mix 500 g flour with', 0, extra)];
      expect(deterministicChecks({ messages }), JSON.stringify(extra)).toEqual([{ tag: 'truncated_answer', turn: 0, detail: 'cut at the token limit' }]);
    }
  });

  it.each([
    ['a request for a detail', 'Which version of Excel are you using?', 'user_stop', ['premature_stop']],
    ['two questions for details', 'It depends. How old is he, and roughly how much does he weigh?', 'user_stop', ['premature_stop']],
    ['"anything else?"', 'That should fix it. Is there anything else I can help with?', 'user_stop', []],
    ['"does that help?"', 'Restart it after that. Does that help?', 'user_stop', []],
    ['no question', 'That should fix it.', 'user_stop', []],
    ['a question, but max_turns ended it', 'Which version are you using?', 'max_turns', []],
  ] as const)('premature_stop: the last answer ends with %s (%s)', (_name, last, end, tags) => {
    const messages = [ask('excel says it found a problem with some content', 0), answer(last, 0)];
    expect(deterministicChecks({ messages, metadata: { end_reason: end } }).map((f) => f.tag)).toEqual(tags);
    // The user's closing words change nothing: it stopped all the same.
    expect(deterministicChecks({ messages: [...messages, { role: 'user', content: 'ok thanks', metadata: { turn: 1, is_closing: true, clean_version: 'ok thanks' } }], metadata: { end_reason: end } }).map((f) => f.tag)).toEqual(tags);
  });

  // Known gap, left for the owners of checks.ts: OFFER lists "anything else", "can I help", "does that help",
  // "make sense?", not the offers assistants end with as often ("Would you like me to...?", "Want me
  // to...?", "Shall I...?"), so a user who stops after one, its request answered, is a premature_stop.
  it.fails('premature_stop: a closing offer "Would you like me to...?" is no request for a detail', () => {
    const messages = [ask('how do i ask my boss for a raise', 0), answer('Lead with what you delivered this year and a number from market data. Would you like me to draft the email?', 0)];
    expect(deterministicChecks({ messages, metadata: { end_reason: 'user_stop' } })).toEqual([]);
  });

  it('counts exchanges from num_turns when given, else from the assistant answers, against minTurns', () => {
    const messages = [ask('hi, how do i boil an egg', 0), answer('Ten minutes in boiling water.', 0)];
    expect(deterministicChecks({ messages }, { minTurns: 2 })).toEqual([{ tag: 'too_short', turn: 1, detail: '1 exchange(s), fewer than 2' }]);
    expect(deterministicChecks({ messages, num_turns: 3 }, { minTurns: 2 })).toEqual([]);
    expect(deterministicChecks({ messages }, { minTurns: 1 })).toEqual([]);
    expect(deterministicChecks({ messages })).toEqual([]);
  });

  it('reads an interaction line from a file: no metadata, no persona, no turn numbers (the message index stands in)', () => {
    const messages = [
      { role: 'user' as const, content: 'how do i boil an egg', metadata: {} },
      { role: 'assistant' as const, content: 'Ten minutes in boiling water.', metadata: { refused: true } },
      { role: 'user' as const, content: 'As an AI language model, I cannot eat eggs.', metadata: {} },
      { role: 'assistant' as const, content: 'Understood. Do you want them soft or hard?', metadata: {} },
    ] as unknown as Checkable['messages'];
    expect(deterministicChecks({ messages, metadata: null }).map((f) => ({ tag: f.tag, turn: f.turn }))).toEqual([
      { tag: 'assistant_refusal', turn: 1 },
      { tag: 'user_out_of_character', turn: 2 },
    ]);
    expect(deterministicChecks({ messages, metadata: { end_reason: 'user_stop' } }).map((f) => ({ tag: f.tag, turn: f.turn }))).toContainEqual({ tag: 'premature_stop', turn: 3 });
  });

  it('judges neither a system message nor the opening user message after it (a PersonaGym line may start with one)', () => {
    const opening =
      'I run a small bakery and I want a simple way to track which breads sell out each day, how much flour we go through each week, and when to reorder from a supplier who needs three days notice. I have a laptop with Excel and a phone. What would you suggest, and which columns should the sheet have so we can start on Monday?';
    const messages = [
      { role: 'system', content: 'You are a helpful assistant.', metadata: {} },
      { role: 'user', content: opening, metadata: {} },
      { role: 'assistant', content: 'One sheet per week: date, bread, baked, sold, left over.', metadata: {} },
      { role: 'user', content: 'ok and the flour', metadata: {} },
      { role: 'assistant', content: 'Add a flour tab with the sacks opened each day.', metadata: {} },
    ] as unknown as Checkable['messages'];
    expect(deterministicChecks({ persona_features: { query_length_pref: 'very_short' }, messages })).toEqual([]);
  });

  it('names every tag it can give in CHECK_TAGS', () => {
    expect(CHECK_TAGS).toEqual(expect.arrayContaining([...CORPUS_TAGS, 'too_short', 'near_duplicate']));
  });
});
