// ESLint flat config (a dotfile: the top level stays src/ rules/ test/ docker/);
// run with `npm run lint`. Formatting is prettier's job, not the linter's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'test/bench/.build/', 'test/fixtures/', 'bin/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  // Benchmarks and test harnesses print their own reports.
  // Tests read JSON off the wire: `any` there is the honest type.
  { files: ['test/**/*.ts'], rules: { 'no-console': 'off', '@typescript-eslint/no-explicit-any': 'off' } },
  {
    files: ['src/api/console/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        WebSocket: 'readonly',
        fetch: 'readonly',
        sessionStorage: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
        Blob: 'readonly',
        navigator: 'readonly',
        location: 'readonly',
      },
    },
  },
);
