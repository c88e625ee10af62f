import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks', // libtorch is happiest with one process per test file
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
