// ESLint (typescript-eslint, type-aware) over the TypeScript sources, benchmarks, tests and examples.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/**', '.venv/**', 'runs/**', '.cache/**', '.gpu/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // unused names are the compiler's job (noUnusedLocals/noUnusedParameters); `_x` marks an intentional one
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `any` needs a reason in a comment next to an eslint-disable line
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
      'prefer-const': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly',
        document: 'readonly', window: 'readonly', fetch: 'readonly', Chart: 'readonly', performance: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', history: 'readonly', location: 'readonly',
      },
    },
  },
);
