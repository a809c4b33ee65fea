import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of every workspace package, so a
    // change is tested without a rebuild; `./hashwire test` still builds first.
    alias: [
      { find: /^@hashwire\/bench$/, replacement: `${root}bench/src/index.ts` },
      { find: /^@hashwire\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores on CI: two test files at a time, each may start its own daemons.
    poolOptions: { forks: { minForks: 1, maxForks: 2 } },
  },
});
