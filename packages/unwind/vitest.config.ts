import { defineConfig } from 'vitest/config';

// Tests run against the sources of sibling packages (the `@klpsim/source`
// export condition), so `pnpm test` needs no build step.
export default defineConfig({
  resolve: { conditions: ['@klpsim/source'] },
  test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'], testTimeout: 120_000 },
});
