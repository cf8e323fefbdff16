// What the viewer's server and its page say to each other (and what a report embeds): JSON shapes only, no code that runs in Node.

/** Conversations per page of the list. */
export const PAGE_SIZE = 50;

/** A filter of the list; every field is optional, and all given fields must hold. */
export interface Filter {
  /** Part of the persona id (case-insensitive). */
  readonly persona?: string;
  /** Persona feature values that must match exactly: `{role: "nurse"}`. */
  readonly features?: Readonly<Record<string, string>>;
  /** `provider/model` of the assistant. */
  readonly model?: string;
  /** `metadata.end_reason`, or NOT_RECORDED. */
  readonly endReason?: string;
  /** A guard reason (`metadata.guard`) or a rejection reason (guard-rejections.ndjson) the conversation has. */
  readonly reason?: string;
  readonly noised?: 'yes' | 'no';
  /** `main`, or a supplement round as digits. */
  readonly round?: string;
  /** The judge's verdict (`metadata.quality.verdict`), or NOT_RECORDED. */
  readonly verdict?: string;
  /** A judge score's name, with its bounds (both inclusive). */
  readonly score?: string;
  readonly scoreMin?: number;
  readonly scoreMax?: number;
}

/** The value a filter uses for "this interaction has no such field". */
export const NOT_RECORDED = '(not recorded)';

/** One conversation in the list. */
export interface Row {
  /** Byte offset of its line in interactions.ndjson: the conversation's address. */
  readonly at: number;
  /** 1-based position in the directory. */
  readonly n: number;
  readonly id: string;
  readonly persona: string;
  readonly model: string;
  readonly turns: number;
  readonly endReason: string | null;
  readonly noised: boolean;
  readonly round: number | null;
  readonly verdict: string | null;
  /** The first user message, cut to a preview. */
  readonly first: string;
  readonly reasons: readonly string[];
}

export interface PageResponse {
  readonly rows: readonly Row[];
  readonly page: number;
  readonly pageSize: number;
  /** Conversations that match (all of them without a filter); with a filter, among the `scanned` so far. */
  readonly matches: number;
  /** False while the count is still growing: the scan or the index has not reached the end. */
  readonly complete: boolean;
}

/** The directory at a glance: shown in the header. */
export interface Summary {
  readonly dir: string;
  /** Interactions in the index (or counted so far), and whether that count is final. */
  readonly interactions: number;
  readonly interactionsFinal: boolean;
  readonly failures: number;
  readonly rejections: number;
  /** Interaction lines the background scan has read, and whether it is done. */
  readonly scanned: number;
  readonly scanDone: boolean;
  /** Lines that are not interactions (torn, not JSON), skipped. */
  readonly badLines: number;
  /** run.json, secrets removed. */
  readonly run: unknown;
  /** `report` for a report file (a sample, no server), `view` for the live viewer. */
  readonly mode: 'view' | 'report';
}

/** Counts by a name. */
export type Counts = Readonly<Record<string, number>>;

export interface UsageRow {
  readonly name: string;
  readonly calls: number;
  readonly input: number;
  readonly output: number;
  /** USD, when usage.json priced it. */
  readonly cost: number | null;
}

/** Everything the dashboard draws, and the values the filters offer. */
export interface Stats {
  readonly scanned: number;
  readonly done: boolean;
  /** Conversations by number of user→assistant exchanges. */
  readonly turns: Counts;
  /** For each persona feature (with few enough values to chart): value → user turns and their words. */
  readonly userWords: Readonly<Record<string, Readonly<Record<string, { readonly turns: number; readonly words: number }>>>>;
  readonly endReasons: Counts;
  readonly guardReasons: Counts;
  readonly rejectionReasons: Counts;
  /** Noise strategies of the user turns that were sent noised. */
  readonly noiseStrategies: Counts;
  readonly noisedTurns: number;
  readonly userTurns: number;
  readonly models: Counts;
  readonly rounds: Counts;
  readonly verdicts: Counts;
  /** Score name → value → conversations with that score. */
  readonly scores: Readonly<Record<string, Counts>>;
  readonly failures: Counts;
  /** From usage.json; null when the directory has none. */
  readonly usage: { readonly byModel: readonly UsageRow[]; readonly byModule: readonly UsageRow[]; readonly totalCost: number | null; readonly unpriced: readonly string[] } | null;
  /** Feature → its values (what the feature filters offer). */
  readonly features: Readonly<Record<string, readonly string[]>>;
}

/** One message of a conversation as the pane shows it. */
export interface MessageView {
  readonly role: string;
  readonly content: string;
  readonly turn: number | null;
  /** For a noised user turn: what the user meant, and the strategies that noised it. */
  readonly clean: string | null;
  readonly noise: readonly string[];
}

export interface RejectionView {
  readonly reason: string;
  readonly text: string;
  readonly turn: number | null;
  readonly role: string | null;
}

/** One conversation, ready to show. */
export interface ConversationView {
  readonly at: number;
  readonly n: number;
  readonly id: string;
  readonly persona: { readonly id: string; readonly features: readonly (readonly [string, string])[]; readonly systemPrompt: string | null };
  readonly originalQuery: string | null;
  readonly messages: readonly MessageView[];
  readonly model: string;
  readonly userModel: string;
  readonly turns: number;
  readonly endReason: string | null;
  readonly round: number | null;
  readonly quality: { readonly verdict: string | null; readonly scores: readonly (readonly [string, number])[]; readonly tags: readonly string[] } | null;
  readonly guard: readonly (readonly [string, number])[];
  readonly usage: readonly UsageRow[];
  /** USD at the prices of the configuration, and the modules that could not be priced. */
  readonly cost: { readonly usd: number | null; readonly unpriced: readonly string[] };
  readonly rejections: readonly RejectionView[];
  /** The interaction's metadata, secrets removed, for the raw view. */
  readonly metadata: unknown;
}

/** What a report file embeds: the dashboard and a sample of conversations. */
export interface ReportData {
  readonly summary: Summary;
  readonly stats: Stats;
  readonly conversations: readonly ConversationView[];
  readonly rows: readonly Row[];
  readonly generatedAt: string;
  readonly sampleSeed: number;
}
