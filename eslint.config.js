// Lint setup: typescript-eslint's recommended type-aware rules over src, test and bench, and the house's floors.
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The floors of src/, top to bottom, as a persona line meets them: a file may import from its own floor
 * and the floors below, never from one above (import-x/no-restricted-paths), and no files may import each
 * other in a circle (import-x/no-cycle). ARCHITECTURE.md walks them.
 */
const FLOORS = [
  ['cli.ts', 'index.ts'],
  ['commands', 'library.ts'],
  ['pipeline.ts', 'estimate', 'export', 'view'],
  ['queue'],
  ['operators'],
  ['conversation'],
  ['sinks'],
  ['distractor', 'queries', 'judge'],
  ['prompts'],
  ['batch'],
  ['streams'],
  ['models'],
  ['limits'],
  ['noise'],
  ['config'],
  ['chat.ts', 'types.ts', 'errors.ts', 'redact.ts', 'rng.ts', 'paths.ts', 'options.ts', 'sleep.ts', 'shell.ts'],
];
const at = (place) => `./src/${place}`;
const zones = FLOORS.slice(1).flatMap((floor, i) =>
  floor.map((place) => ({
    target: at(place),
    from: FLOORS.slice(0, i + 1).flat().map(at),
    message: `src/${place} is on a lower floor than what it imports: imports point down (see the floors in eslint.config.js)`,
  })),
);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bin/*.js', 'bench/*.js', 'bench/*.cjs'] }, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { ...importX.flatConfigs.typescript.settings, 'import-x/resolver-next': [createTypeScriptImportResolver()] },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones }],
      'import-x/no-cycle': 'error',
    },
  },
  {
    // The viewer's page shows texts from models and persona files: it builds elements with text nodes
    // (src/view/client/dom.ts), never from markup, and nothing here may turn a string into HTML or code.
    files: ['src/view/client/**/*.ts'],
    languageOptions: { globals: globals.browser },
    rules: {
      'no-restricted-properties': [
        'error',
        ...['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'srcdoc', 'createContextualFragment', 'parseFromString', 'write', 'writeln'].map((property) => ({
          property,
          message: 'the page builds elements from text nodes (h() in dom.ts); markup from a string could run what a model wrote',
        })),
      ],
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // A --require preload must be CommonJS.
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The examples import 'personaflow' as a user's project does, which only scripts/check-examples.js sets
    // up (npm run typecheck): linted without types here, and they print what they make.
    files: ['examples/**/*.ts'],
    extends: [tseslint.configs.disableTypeChecked],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['test/**', 'bench/**'],
    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
);
