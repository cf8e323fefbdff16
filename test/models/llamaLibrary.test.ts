// node-llama-cpp is an optional peer dependency (npm ci does not install it): the sources build without it, and where it is installed the real module fits the API we declare.
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { llamaInstalled } from '../helpers/llama.js';

/** The errors tsc reports for `config` (and `extra` files), as if node-llama-cpp were not installed when `hide` is set. */
function diagnostics(config: string, options: { readonly hide: boolean; readonly extra?: Readonly<Record<string, string>> }): string[] {
  const hidden = (path: string): boolean => options.hide && /[\\/]node_modules[\\/](@node-llama-cpp|node-llama-cpp)([\\/]|$)/.test(path);
  const parsed = ts.getParsedCommandLineOfConfigFile(join(ROOT, config), { noEmit: true }, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (parsed === undefined) throw new Error(`cannot read ${config}`);
  const host = ts.createCompilerHost(parsed.options);
  const extra = options.extra ?? {};
  const real = { fileExists: host.fileExists.bind(host), readFile: host.readFile.bind(host), getSourceFile: host.getSourceFile.bind(host) };
  host.fileExists = (path) => path in extra || (!hidden(path) && real.fileExists(path));
  host.directoryExists = (path) => !hidden(path) && ts.sys.directoryExists(path);
  host.readFile = (path) => extra[path] ?? (hidden(path) ? undefined : real.readFile(path));
  host.getSourceFile = (path, language, ...rest) => (path in extra ? ts.createSourceFile(path, extra[path] as string, language) : hidden(path) ? undefined : real.getSourceFile(path, language, ...rest));
  const program = ts.createProgram({ rootNames: [...parsed.fileNames, ...Object.keys(extra)], options: parsed.options, host });
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('node-llama-cpp, an optional peer dependency', () => {
  it('regression: the build needs none of its types (`npm ci` does not install it; `npm run build` failed without it)', () => {
    expect(diagnostics('tsconfig.build.json', { hide: true })).toEqual([]);
  }, 120_000);

  it('the tests and benches type-check without it too (`npm ci && npm run typecheck` on a fresh clone)', () => {
    expect(diagnostics('tsconfig.json', { hide: true })).toEqual([]);
  }, 240_000);

  it.skipIf(!llamaInstalled)('the installed module fits the API declared in src/models/llamaLibrary.ts', () => {
    const check = join(ROOT, 'src', 'models', '__llama_fits__.ts');
    const source = "import type * as Real from 'node-llama-cpp';\nimport type { Library } from './llamaLibrary.js';\ndeclare const real: typeof Real;\nexport const fits: Library<Real.LlamaLogLevel, Real.LlamaContextSequence, Real.ChatWrapper> = real;\n";
    expect(diagnostics('tsconfig.build.json', { hide: false, extra: { [check]: source } })).toEqual([]);
  }, 120_000);
});
