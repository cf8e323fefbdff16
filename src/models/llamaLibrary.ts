// The part of node-llama-cpp's API the llama provider calls, declared here: node-llama-cpp is optional, so building personaflow must not need its types.

/** A chat message as node-llama-cpp takes it. */
export type ChatHistoryItem = { type: 'system'; text: string } | { type: 'user'; text: string } | { type: 'model'; response: string[] };

/** A tokenizer, passed back to node-llama-cpp as it was received. */
export type Tokenizer = object;

export interface LlamaContextSequence {
  clearHistory(): Promise<void>;
}

export interface LlamaContext<Sequence extends LlamaContextSequence = LlamaContextSequence> {
  getSequence(): Sequence;
  dispose(): Promise<void>;
}

export interface LlamaModel<Sequence extends LlamaContextSequence = LlamaContextSequence> {
  readonly tokenizer: Tokenizer;
  createContext(options: { sequences: number; threads: number; contextSize: { max: number } }): Promise<LlamaContext<Sequence>>;
  dispose(): Promise<void>;
}

export interface Llama<Sequence extends LlamaContextSequence = LlamaContextSequence> {
  loadModel(options: { modelPath: string }): Promise<LlamaModel<Sequence>>;
  dispose(): Promise<void>;
}

export interface ChatWrapper {
  generateContextState(options: { chatHistory: ChatHistoryItem[] }): { contextText: { tokenize(tokenizer: Tokenizer): readonly unknown[] } };
}

export interface LlamaChat<Wrapper extends ChatWrapper = ChatWrapper> {
  readonly chatWrapper: Wrapper;
  generateResponse(history: ChatHistoryItem[], options: { signal?: AbortSignal; maxTokens?: number; temperature?: number; seed?: number; onToken?: (tokens: unknown[]) => void }): Promise<{ response: string; metadata: { stopReason: string } }>;
  dispose(options: { disposeSequence: boolean }): void;
}

/**
 * What `import('node-llama-cpp')` gives the provider. test/models/llamaLibrary.test.ts checks, where the
 * package is installed, that the real module fits this shape. The type parameters are the library's own
 * types of what the provider only passes back to it: the log-level enum, a context sequence, a chat wrapper.
 */
export interface Library<Level = unknown, Sequence extends LlamaContextSequence = LlamaContextSequence, Wrapper extends ChatWrapper = ChatWrapper> {
  getLlama(options: { build: 'never'; skipDownload: boolean; progressLogs: boolean; logLevel: Level; maxThreads: number }): Promise<Llama<Sequence>>;
  readonly LlamaLogLevel: { readonly error: Level };
  resolveModelFile(uri: string, options: { cli: boolean; directory?: string }): Promise<string>;
  readonly LlamaChat: new (options: { contextSequence: Sequence; chatWrapper: Wrapper | 'auto'; autoDisposeSequence: boolean }) => LlamaChat<Wrapper>;
}
