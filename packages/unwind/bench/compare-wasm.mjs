#!/usr/bin/env node
// The measurement behind docs/performance.md's choice of the flat walk's
// implementation: the JavaScript twin (walkFlat, src/flat/walk.ts) against
// the hand-written WebAssembly core (src/flat/walk-core.wat, as the build
// compiles it to dist/) and klpsim's C reference (bench/walk-reference.c,
// built with the system cc), on the same stack arena, in one run, per CPU
// second. Each one's outcome for every task is compared; the figures are
// printed, never asserted.
//
//   node packages/unwind/bench/compare-wasm.mjs [capture.json | synthetic:TASKS:DEPTH] [SECONDS]
//
// Run after a build (it imports the packages' dist/).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildMachine, loadCapture, syntheticKernelDesc } from '../../kernel/dist/index.js';
import { walkFlat } from '../dist/flat/walk.js';
import {
  buildStackArena,
  C_REFERENCE_SOURCE,
  flatEntries,
  outcomeHash,
  POLICIES,
  stackArenaFileParts,
  Walker,
  walkCoreModule,
  walkFlatRange,
} from '../dist/index.js';

const what = process.argv[2] ?? 'fixtures/captures/linux-6.1-arm64-plain/capture.json';
const seconds = Number(process.argv[3] ?? 2);

let machine;
if (what.startsWith('synthetic:')) {
  const [, tasks, depth] = what.split(':').map(Number);
  machine = buildMachine(syntheticKernelDesc({ tasks, meanDepth: depth, seed: 1 })).value.machine;
} else {
  const r = loadCapture(what);
  if (!r.ok) throw new Error(r.error.message);
  machine = r.value.machine;
}
if (walkCoreModule() === null) throw new Error('no dist/flat/walk-core.wasm: build first');
const policy = machine.config.ptRegs.meta !== null ? POLICIES.mainline : POLICIES['symcode-v8'];
const arena = buildStackArena(machine);
const mode = new Walker(machine, policy).flatModeOf(true);
const size = 100;
const n = arena.ntasks;
const entries = flatEntries(size);

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** Repeats `pass` for `seconds` of CPU time after a warm-up; Mframes/s and ns per walk. */
function measure(pass) {
  for (let i = 0; i < 50; i++) pass();
  const reps = Math.ceil(100_000 / n);
  let frames = 0;
  let walks = 0;
  const t0 = cpu();
  let s = 0;
  do {
    for (let r = 0; r < reps; r++) frames += pass();
    walks += reps * n;
    s = cpu() - t0;
  } while (s < seconds);
  return { mfps: frames / s / 1e6, nsPerWalk: (s * 1e9) / walks };
}

const js = measure(() => walkFlat(arena, mode, size, 0, n, arena.verdicts, 0, entries));
const jsHash = outcomeHash(arena.verdicts, n);
const wasm = measure(() => walkFlatRange(arena, mode, size, 0, n, 0, entries));
const wasmHash = outcomeHash(arena.verdicts, n);

let c = null;
const dir = mkdtempSync(join(tmpdir(), 'klpsim-compare-'));
const exe = join(dir, 'walk-reference');
if (spawnSync('cc', ['-O2', '-o', exe, C_REFERENCE_SOURCE]).status === 0) {
  const file = join(dir, 'arena.bin');
  writeFileSync(file, Buffer.concat(stackArenaFileParts(arena, mode, size)));
  const out = spawnSync(exe, [file, String(seconds)], { encoding: 'utf8' }).stdout;
  const m = /frames=(\d+) walks=(\d+) ns=(\d+) plain=\d+ hash=([0-9a-f]+)/.exec(out);
  c = {
    mfps: Number(m[1]) / (Number(m[3]) / 1e3),
    nsPerWalk: Number(m[3]) / Number(m[2]),
    hash: Number.parseInt(m[4], 16),
  };
}
rmSync(dir, { recursive: true, force: true });

const line = (name, r) =>
  `${name.padEnd(14)} ${r.mfps.toFixed(1).padStart(7)} Mframes/s ${r.nsPerWalk.toFixed(0).padStart(6)} ns per walk${c ? `  ${(r.mfps / c.mfps).toFixed(2)} of C` : ''}`;
console.log(`${what}: ${n} tasks, policy ${policy.name}, per CPU second, ${seconds} s each`);
console.log(line('JavaScript', js));
console.log(line('WebAssembly', wasm));
if (c) console.log(line('C (cc -O2)', c));
console.log(
  `outcomes: JavaScript ${jsHash === wasmHash ? '=' : '!='} WebAssembly${c ? ` ${c.hash === jsHash ? '=' : '!='} C` : ''}`,
);
