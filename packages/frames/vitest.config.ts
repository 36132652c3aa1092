import { defineConfig } from 'vitest/config';

// Tests run against the sources of sibling packages (the `@klpsim/source`
// export condition), so `pnpm test` needs no build step and never sees a
// stale dist/. Vitest runs tests as SSR, hence `ssr.resolve`.
const conditions = ['@klpsim/source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'], testTimeout: 120_000 },
});
