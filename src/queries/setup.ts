// From configuration to the query side of a run: the query dataset, style transfer, the supplement generator.
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { ModelSettings } from '../models/build.js';
import { locateConfigPath } from '../paths.js';
import { DEFAULT_QUERY_GENERATION_TEMPLATE, QUERY_GENERATION_TEMPLATE } from '../prompts/queryGeneration.js';
import { DEFAULT_STYLE_TRANSFER_TEMPLATE, STYLE_TRANSFER_TEMPLATE } from '../prompts/styleTransfer.js';
import { loadTemplate } from '../prompts/template.js';
import { QueryDataset } from '../streams/queries.js';
import { createQueryGenerator, type QueryGenerator } from './queryGenerator.js';
import { createStyleTransfer, type StyleTransfer } from './styleTransfer.js';

export interface QuerySetup {
  readonly dataset: QueryDataset | undefined;
  readonly styleTransfer: StyleTransfer | undefined;
  readonly generator: QueryGenerator | undefined;
}

export interface QuerySetupOptions {
  /** `--queries FILE` (else `paths.query_datasets`). */
  readonly queriesFile?: string | undefined;
  /** Supplement rounds the run will make (a generator is built when > 0). */
  readonly rounds: number;
  /** The model of style transfer and query generation (needed when either is on). */
  readonly model?: ModelSettings | undefined;
  readonly onNotice?: (message: string) => void;
  readonly onWarning?: (message: string) => void;
  readonly strict?: boolean;
  /** Open the query dataset (default true; a queue worker gets its tasks with their queries already drawn). */
  readonly dataset?: boolean;
}

/**
 * Opens the query dataset (`--queries`, or PersonaGym's `paths.query_datasets`; a configured file that
 * does not exist is a notice, since personas may carry their own queries), and builds style transfer
 * and the query generator from `query_generation`.
 */
export async function setUpQueries(config: Config, baseDir: string, options: QuerySetupOptions): Promise<QuerySetup> {
  const qg = config.query_generation;
  let files: string[] = [];
  if (options.dataset === false) files = [];
  else if (options.queriesFile !== undefined) files = [options.queriesFile];
  else {
    for (const path of config.paths?.query_datasets ?? []) {
      const located = locateConfigPath(path, baseDir);
      if (existsSync(located)) files.push(located);
      else options.onNotice?.(`paths.query_datasets: ${path} not found; personas without queries will be skipped`);
    }
  }
  const max = qg.max_queries ?? qg.dataset?.max_queries ?? undefined;
  const dataset = files.length === 0 ? undefined : await QueryDataset.open(files, { maxQueries: max === 0 ? undefined : max, strict: options.strict, onWarning: options.onWarning });
  if (dataset !== undefined && dataset.size < qg.selection.queries_per_persona) {
    options.onNotice?.(`${files.join(', ')}: ${dataset.size} usable queries, fewer than queries_per_persona (${qg.selection.queries_per_persona}): each persona without queries gets ${dataset.size}`);
  }
  const model = options.model;
  const st = qg.style_transfer;
  let styleTransfer: StyleTransfer | undefined;
  if (st.enabled && model !== undefined) {
    const template = await loadTemplate(st.template, baseDir, 'query_generation.style_transfer.template', DEFAULT_STYLE_TRANSFER_TEMPLATE, STYLE_TRANSFER_TEMPLATE);
    const partialTemplate = st.partial_template === undefined ? undefined : await loadTemplate(st.partial_template, baseDir, 'query_generation.style_transfer.partial_template', DEFAULT_STYLE_TRANSFER_TEMPLATE, STYLE_TRANSFER_TEMPLATE);
    styleTransfer = createStyleTransfer({ ...model, template, partialTemplate, probability: st.transfer_probability, validationRetries: 2 });
  }
  let generator: QueryGenerator | undefined;
  if (options.rounds > 0 && model !== undefined) {
    const template = await loadTemplate(qg.generation_template, baseDir, 'query_generation.generation_template', DEFAULT_QUERY_GENERATION_TEMPLATE, QUERY_GENERATION_TEMPLATE);
    generator = createQueryGenerator({ ...model, template, validationRetries: 2 });
  }
  return { dataset, styleTransfer, generator };
}
