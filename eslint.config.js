// Lint rules. Workflow files are replayed by Temporal and must be deterministic:
// no Node built-ins, no clocks or randomness outside the workflow API.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.state/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code must be deterministic: no Node built-ins.' })),
          patterns: [
            { group: ['../activities/*', '../daemon/*', '../db/*', '../api/*', '../queries/*', '../forges/*', '../cache/*'], allowTypeImports: true, message: 'Workflows import activity types only (import type).' },
          ],
        },
      ],
      // Temporal's sandbox already makes Date and Math.random replay-safe; these are not.
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'Workflow code must not read the process environment: pass it as an argument.' },
        { name: 'require', message: 'Use import.' },
        { name: 'fetch', message: 'I/O belongs in activities.' },
        { name: 'crypto', message: 'Use uuid4() from @temporalio/workflow.' },
        { name: 'performance', message: 'Wall-clock timing is not replay-safe.' },
        { name: 'setImmediate', message: 'Use sleep() or condition() from @temporalio/workflow.' },
        { name: 'WeakRef', message: 'Garbage-collection timing is not replay-safe.' },
        { name: 'FinalizationRegistry', message: 'Garbage-collection timing is not replay-safe.' },
      ],
    },
  },
);
