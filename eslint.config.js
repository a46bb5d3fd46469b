import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // The browser tests type their in-page functions with the DOM library, which is then
    // global to the whole program: keep the server's code off the browser's globals.
    files: ['lib/**/*.ts', 'cmd/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-globals': ['error', ...['window', 'document', 'location', 'navigator', 'localStorage', 'sessionStorage', 'HTMLElement', 'Element'].map((name) => ({ name, message: 'server code runs in Node: no browser globals' }))],
    },
  },
  {
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
);
