import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Machine } from '@klpsim/kernel';
import { syntheticKernelDesc } from '@klpsim/kernel';
import { afterAll, describe, expect, it } from 'vitest';
import { buildStackArena } from '../src/flat/arena.js';
import { cReferenceSource, outcomeHash, stackArenaFileParts } from '../src/flat/export.js';
import { flatMode, walkFlat } from '../src/flat/walk.js';
import { flatEntries, POLICIES } from '../src/index.js';
import { build } from './build.js';
import { CAPTURE_61, CAPTURE_72_HARD, capture } from './fixtures.js';

/**
 * The C reference walker (bench/walk-reference.c), an independent
 * implementation of the flat walk in native 64-bit C, reaches the same
 * outcome for every task as the JavaScript flat walk. Skipped where there is
 * no C compiler (`bench walk` then reports the reference as missing).
 */
const dir = mkdtempSync(join(tmpdir(), 'klpsim-c-test-'));
const exe = join(dir, 'walk-reference');
const cc = spawnSync(process.env.CC ?? 'cc', ['-O2', '-o', exe, cReferenceSource()]);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sameAsC(machine: Machine): void {
  const arena = buildStackArena(machine);
  for (const policy of Object.values(POLICIES))
    for (const reliable of [true, false]) {
      const mode = flatMode(policy.rules, reliable);
      walkFlat(arena, mode, 100, 0, arena.ntasks, arena.verdicts, 0, flatEntries(100));
      const file = join(dir, 'arena.bin');
      writeFileSync(file, Buffer.concat(stackArenaFileParts(arena, mode, 100)));
      const r = spawnSync(exe, [file, '0'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const hash = /hash=([0-9a-f]{8})/.exec(r.stdout)![1]!;
      expect(Number.parseInt(hash, 16), `${policy.name} reliable=${reliable}`).toBe(
        outcomeHash(arena.verdicts, arena.ntasks),
      );
    }
}

describe.skipIf(cc.error !== undefined || cc.status !== 0)('the C reference walker', () => {
  it('reaches the flat walk’s outcome for every task of two real captures', () => {
    for (const file of [CAPTURE_61, CAPTURE_72_HARD]) sameAsC(capture(file).machine);
  });

  it('and of a synthetic kernel', () => {
    sameAsC(build(syntheticKernelDesc({ tasks: 200, seed: 9 })).machine);
  });
});
