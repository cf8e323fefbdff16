// Token totals for the run, in PersonaGym's token_usage shape (summary, by_module, by_model).
import type { ModelModule, ModelRef, TokenUsage } from '../models/types.js';
import type { Outcome } from '../types.js';

interface Totals {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  call_count: number;
}

const empty = (): Totals => ({ input_tokens: 0, output_tokens: 0, total_tokens: 0, call_count: 0 });

function add(into: Record<string, Totals>, key: string, usage: TokenUsage): void {
  const totals = (into[key] ??= empty());
  totals.input_tokens += usage.input;
  totals.output_tokens += usage.output;
  totals.total_tokens += usage.input + usage.output;
  totals.call_count += 1;
}

/**
 * What the run has used, counted per answered call (`call`), so calls of tasks that later fail or are
 * cancelled count too: they were billed. Memory is per model and module, not per interaction.
 */
export class UsageTotals {
  readonly byModule: Record<string, Totals> = {};
  readonly byModel: Record<string, Totals> = {};
  interactions = 0;
  failures = 0;

  /** One answered model call. */
  call(module: ModelModule, model: ModelRef, usage: TokenUsage): void {
    add(this.byModule, module, usage);
    add(this.byModel, `${model.provider}/${model.model}`, usage);
  }

  /** One finished task. */
  outcome(outcome: Outcome): void {
    if (outcome.ok) this.interactions += 1;
    else this.failures += 1;
  }

  get calls(): number {
    return Object.values(this.byModule).reduce((sum, totals) => sum + totals.call_count, 0);
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
