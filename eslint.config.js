import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** Node's built-in modules that do I/O or keep time: none of them in the pure protocol core. */
const IO_MODULES = ['child_process', 'cluster', 'crypto', 'dgram', 'dns', 'fs', 'fs/promises', 'http', 'http2', 'https', 'net', 'os', 'process', 'readline', 'stream', 'timers', 'tls', 'worker_threads', 'zlib'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/', 'test/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', URLSearchParams: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    // The library: no import cycles (type-only imports included, they are still a tangle to read).
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    // The protocol core is pure: no I/O, no timers, nothing from the rest of the library.
    files: ['src/protocol/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: IO_MODULES.flatMap((name) => [name, `node:${name}`]).map((name) => ({ name, message: 'src/protocol/ is pure: no I/O (type-only imports are fine)', allowTypeImports: true })),
          patterns: [
            { group: ['../*'], message: 'src/protocol/ imports only from src/protocol/ and pure packages', allowTypeImports: false },
            { group: ['redis', 'ws', 'raw-body', 'debug'], message: 'src/protocol/ is pure: no I/O', allowTypeImports: false },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'process', 'fetch'].map((name) => ({ name, message: 'src/protocol/ is pure: no timers, no process state, no I/O' })),
      ],
    },
  },
  {
    // The client runs in browsers: nothing from Node, no packages, nothing from the server side.
    files: ['src/client/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(?!\\./)', message: 'src/client/ runs in browsers: it imports only from src/client/ (no Node modules, no packages, no server code)', allowTypeImports: false },
          ],
        },
      ],
    },
  },
);
