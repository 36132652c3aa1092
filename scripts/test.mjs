#!/usr/bin/env node
// Every check a fresh clone must pass, in order: lint and format (biome),
// types (tsc), tests (vitest, per package through turbo), then the test
// vectors through the independent Python runner (python3, standard library). Ends with one line,
// "tests: N passed, M failed", summed over the packages' vitest reports.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureSystemPackages } from './system-packages.mjs';

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };
// Colour only for a person at a terminal: a log file or CI gets plain text.
if (!process.stdout.isTTY) {
  env.NO_COLOR = '1';
  env.FORCE_COLOR = '0';
}
const packages = readdirSync('packages').map((p) => join('packages', p));
for (const p of packages) rmSync(join(p, '.vitest'), { recursive: true, force: true });

function step(name, cmd, args) {
  console.log(`\n== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  return r.status === 0;
}

let ok = ensureSystemPackages();
ok = step('lint', 'biome', ['check', '.']) && ok;
ok =
  step('types and tests', 'turbo', [
    'run',
    'typecheck',
    'test',
    '--output-logs=new-only',
    '--continue',
    ...(process.stdout.isTTY ? [] : ['--no-color']),
  ]) && ok;

// The independent Python runner over every raw-state vector (mainline, linux-6.1, sframe-regs, fp-validate).
ok =
  step('vectors (independent Python runner)', 'python3', ['test-vectors/runners/python/run.py']) &&
  ok;
// The same runner on 2,000 mutated stacks, against klpsim's own results.
ok =
  step('mutated stacks (klpsim against the Python runner)', 'node', [
    'scripts/crosscheck-mutations.mjs',
    '2000',
    '1',
  ]) && ok;

// The QEMU stage (docs/capture.md): boots Debian's arm64 6.1 kernel, captures it with capture/,
// and checks klpsim's walk of every task against the kernel's own trace. About a minute once
// the downloads are cached; KLPSIM_SKIP_QEMU=1 leaves it out (and says so) on a machine without
// network or root.
// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by this script, which turbo does not run
if (process.env.KLPSIM_SKIP_QEMU === '1') {
  console.log('\n== QEMU capture stage: skipped (KLPSIM_SKIP_QEMU=1)');
} else {
  ok = step('QEMU capture stage', 'node', ['scripts/capture-qemu.mjs']) && ok;
}

let passed = 0;
let failed = 0;
const missing = [];
for (const p of packages) {
  const f = join(p, '.vitest', 'results.json');
  if (!existsSync(f)) {
    missing.push(p);
    continue;
  }
  const r = JSON.parse(readFileSync(f, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
}
if (missing.length > 0) {
  console.log(`no test report from: ${missing.join(', ')}`);
  ok = false;
}
console.log(`\ntests: ${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 && passed > 0 ? 0 : 1);
