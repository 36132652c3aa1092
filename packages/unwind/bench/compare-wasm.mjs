#!/usr/bin/env node
// The measurement behind docs/performance.md's choice of the flat walk's
// implementation: flat int32 JavaScript (src/flat/walk.ts) against the
// hand-written WebAssembly core (bench/walk-core.wat, compiled here with
// wabt's wat2wasm into a temporary directory) and klpsim's C reference
// (bench/walk-reference.c, built with the system cc), on the same stack
// arena, in one run, per CPU second. Each implementation's outcome for
// every task is compared; the figures are printed, never asserted.
//
//   node packages/unwind/bench/compare-wasm.mjs [capture | synthetic:TASKS:DEPTH] [SECONDS]
//
// Run after a build (it imports the packages' dist/); wat2wasm comes from
// the wabt npm package (npx fetches it once).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildMachine, loadCapture, syntheticKernelDesc } from '../../kernel/dist/index.js';
import {
  buildStackArena,
  C_REFERENCE_SOURCE,
  outcomeHash,
  POLICIES,
  stackArenaFileParts,
  Walker,
  walkFlatRange,
} from '../dist/index.js';

const WAT = fileURLToPath(new URL('walk-core.wat', import.meta.url));
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
const policy = machine.config.ptRegs.meta !== null ? POLICIES.mainline : POLICIES['symcode-v8'];
const arena = buildStackArena(machine);
const walker = new Walker(machine, policy);
const mode = walker.flatModeOf(true);
const size = 100;
const n = arena.ntasks;

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** Repeats `pass` for `seconds` of CPU time after a warm-up; frames and ns per walk. */
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

// JavaScript: the flat walk itself.
const verdicts = new Int32Array(n);
const entries = { his: new Uint32Array(size), los: new Uint32Array(size), kinds: new Uint8Array(size) };
const js = measure(() => walkFlatRange(arena, mode, size, 0, n, verdicts, entries));
walkFlatRange(arena, mode, size, 0, n, verdicts, entries);
const jsHash = outcomeHash(verdicts, n);

// WebAssembly: the arena laid out as walk-core.wat reads it, with i64 addresses.
const dir = mkdtempSync(join(tmpdir(), 'klpsim-wasm-'));
const wasmFile = join(dir, 'walk-core.wasm');
execFileSync('npx', ['--yes', '-p', 'wabt@1.0.39', 'wat2wasm', WAT, '-o', wasmFile], {
  stdio: 'inherit',
});
const bytes = readFileSync(wasmFile);
const nsym = arena.kernel[12];
const at = { tasks: 0 };
at.kernel = at.tasks + n * 48;
at.starts = at.kernel + 64;
at.ends = at.starts + nsym * 8;
at.pages = at.ends + nsym * 8;
at.words = (at.pages + arena.symCodePages.length + 7) & ~7;
at.verdicts = at.words + arena.words.length * 4;
at.trace = (at.verdicts + n * 4 + 7) & ~7;
const total = at.trace + size * 8;
const memory = new WebAssembly.Memory({ initial: Math.ceil(total / 65536) });
const dv = new DataView(memory.buffer);
const u64 = (hi, lo) => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
for (let t = 0; t < n; t++) {
  const r = t * 11;
  const row = at.tasks + t * 48;
  const T = arena.tasks;
  dv.setInt32(row, T[r], true);
  dv.setInt32(row + 4, at.words + T[r + 1] * 4, true);
  dv.setInt32(row + 8, T[r + 2], true);
  dv.setBigUint64(row + 16, u64(T[r + 3], T[r + 4]), true);
  dv.setBigUint64(row + 24, u64(T[r + 5], T[r + 6]), true);
  dv.setBigUint64(row + 32, u64(T[r + 7], T[r + 8]), true);
  dv.setBigUint64(row + 40, u64(T[r + 9], T[r + 10]), true);
}
const K = arena.kernel;
dv.setBigUint64(at.kernel, BigInt(K[0] >>> 0) << 32n, true);
dv.setBigUint64(at.kernel + 8, u64(K[1], K[2]), true);
dv.setBigUint64(at.kernel + 16, u64(K[3], K[4]), true);
dv.setInt32(at.kernel + 24, K[5] < 0 ? -1 : K[5] * 4, true);
dv.setBigUint64(at.kernel + 32, BigInt(K[6] >>> 0), true);
dv.setInt32(at.kernel + 40, K[7], true);
dv.setInt32(at.kernel + 44, K[8], true);
const text = u64(K[9], K[10]);
dv.setBigUint64(at.kernel + 48, text, true);
dv.setInt32(at.kernel + 56, K[11], true);
dv.setInt32(at.kernel + 60, nsym, true);
for (let i = 0; i < nsym; i++) {
  dv.setBigUint64(at.starts + i * 8, text + BigInt(arena.symCodeStarts[i] >>> 0), true);
  dv.setBigUint64(at.ends + i * 8, text + BigInt(arena.symCodeEnds[i] >>> 0), true);
}
new Uint8Array(memory.buffer, at.pages, arena.symCodePages.length).set(arena.symCodePages);
new Int32Array(memory.buffer, at.words, arena.words.length).set(arena.words);
const { instance } = await WebAssembly.instantiate(bytes, { env: { mem: memory } });
const walk = instance.exports.walk;
const wasmPass = () =>
  walk(0, n, mode, size, at.tasks, at.kernel, at.verdicts, at.trace, at.starts, at.ends, at.pages);
const wasm = measure(wasmPass);
wasmPass();
const wasmHash = outcomeHash(new Int32Array(memory.buffer, at.verdicts, n), n);

// C: the reference walker on the same arena.
let c = null;
const exe = join(dir, 'walk-reference');
if (spawnSync('cc', ['-O2', '-o', exe, C_REFERENCE_SOURCE]).status === 0) {
  const file = join(dir, 'arena.bin');
  writeFileSync(file, Buffer.concat(stackArenaFileParts(arena, mode, size)));
  const out = spawnSync(exe, [file, String(seconds)], { encoding: 'utf8' }).stdout;
  const m = /frames=(\d+) walks=(\d+) ns=(\d+) plain=\d+ hash=([0-9a-f]+)/.exec(out);
  c = { mfps: Number(m[1]) / (Number(m[3]) / 1e3), nsPerWalk: Number(m[3]) / Number(m[2]) };
  c.hash = Number.parseInt(m[4], 16);
}
rmSync(dir, { recursive: true, force: true });

const line = (name, r) =>
  `${name.padEnd(12)} ${r.mfps.toFixed(1).padStart(7)} Mframes/s ${r.nsPerWalk.toFixed(0).padStart(6)} ns per walk`;
console.log(`${what}: ${n} tasks, policy ${policy.name}, per CPU second, ${seconds} s each`);
console.log(`${line('flat JS', js)}${c ? `  ${(js.mfps / c.mfps).toFixed(2)} of C` : ''}`);
console.log(`${line('WebAssembly', wasm)}${c ? `  ${(wasm.mfps / c.mfps).toFixed(2)} of C` : ''}`);
if (c) console.log(line('C (cc -O2)', c));
console.log(
  `outcomes: JS ${jsHash === wasmHash ? '=' : '!='} WebAssembly${c ? ` ${c.hash === jsHash ? '=' : '!='} C` : ''}`,
);
