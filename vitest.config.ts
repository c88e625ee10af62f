import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks', // libtorch is happiest with one process per test file
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Test files run side by side on few cores: one libtorch thread each avoids oversubscription.
    env: { SPN_THREADS: '1' },
  },
});
