#!/usr/bin/env node
// Cross-checks klpsim against the independent Python runner on mutated
// stacks: writes `count` mutated stacks of the corpus's recipe vectors (seed
// `seed`) as raw vectors with klpsim's own results (labelled generated) into a
// temporary folder, runs test-vectors/runners/python/run.py on them, and exits
// with its status. Run after a build:
// `pnpm build && node scripts/crosscheck-mutations.mjs 2000 7`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatInputError } from '../packages/kernel/dist/index.js';
import { mutatedVectors } from '../packages/vectors/dist/index.js';

const count = Number(process.argv[2] ?? 400);
const seed = Number(process.argv[3] ?? 1);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || seed < 0) {
  console.error('usage: crosscheck-mutations.mjs [count >= 1] [seed >= 0]');
  process.exit(2);
}
const made = mutatedVectors(['test-vectors'], seed, 0, count);
if (!made.ok) {
  console.error(formatInputError(made.error));
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'klpsim-crosscheck-'));
try {
  for (const [i, v] of made.value.entries())
    writeFileSync(join(dir, `${i}.json`), JSON.stringify(v));
  console.log(`${count} mutated stacks (seed ${seed}) through the Python runner:`);
  const r = spawnSync('python3', ['test-vectors/runners/python/run.py', dir], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
