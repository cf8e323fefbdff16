// Token totals for the run, in PersonaGym's token_usage shape (summary, by_module, by_model).
import type { ModelRef } from '../models/types.js';
import type { Outcome, UsageEntry } from '../types.js';

interface Totals {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  call_count: number;
}

const empty = (): Totals => ({ input_tokens: 0, output_tokens: 0, total_tokens: 0, call_count: 0 });

function add(into: Record<string, Totals>, key: string, entry: UsageEntry): void {
  const totals = (into[key] ??= empty());
  totals.input_tokens += entry.input_tokens;
  totals.output_tokens += entry.output_tokens;
  totals.total_tokens += entry.input_tokens + entry.output_tokens;
  totals.call_count += entry.calls;
}

/** Accumulates the usage every outcome carries; memory is per model and module, not per interaction. */
export class UsageTotals {
  readonly byModule: Record<string, Totals> = {};
  readonly byModel: Record<string, Totals> = {};
  interactions = 0;
  failures = 0;

  add(outcome: Outcome): void {
    const record = outcome.ok ? outcome.interaction.metadata : outcome.failure;
    if (outcome.ok) this.interactions += 1;
    else this.failures += 1;
    const models: Partial<Record<string, ModelRef>> = { assistant: record.assistant_model, user_simulator: record.user_model };
    for (const [module, entry] of Object.entries(record.usage)) {
      add(this.byModule, module, entry);
      const ref = models[module];
      add(this.byModel, ref === undefined ? 'unknown' : `${ref.provider}/${ref.model}`, entry);
    }
  }

  /** PersonaGym's token_usage file (`exported_at`, `statistics.{summary, by_module, by_model}`). */
  toJSON(): unknown {
    const all = Object.values(this.byModule).reduce((sum, t) => {
      sum.input_tokens += t.input_tokens;
      sum.output_tokens += t.output_tokens;
      sum.call_count += t.call_count;
      return sum;
    }, empty());
    return {
      exported_at: new Date().toISOString(),
      statistics: {
        summary: {
          total_calls: all.call_count,
          total_input_tokens: all.input_tokens,
          total_output_tokens: all.output_tokens,
          total_tokens: all.input_tokens + all.output_tokens,
        },
        by_module: this.byModule,
        by_model: this.byModel,
      },
      interactions: this.interactions,
      failures: this.failures,
    };
  }
}
