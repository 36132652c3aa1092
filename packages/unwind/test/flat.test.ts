import { readFileSync } from 'node:fs';
import type { Machine } from '@klpsim/kernel';
import { CORRUPTIONS, syntheticKernelDesc } from '@klpsim/kernel';
import { beforeAll, describe, expect, it } from 'vitest';
import wabtInit from 'wabt';
import { buildStackArena, TRACE_ENTRIES } from '../src/flat/arena.js';
import { flatEntries, walkFlatRange } from '../src/flat/batch.js';
import { flatMode, HANDED_BACK, walkFlat, walkTaskFlat } from '../src/flat/walk.js';
import { useWalkCore } from '../src/flat/wasm.js';
import {
  POLICIES,
  POLICY_NAMES,
  type PolicyName,
  Walker,
  WalkPool,
  walkBatch,
} from '../src/index.js';
import { build } from './build.js';
import { irqPreempted, KWORKER, USER_NANOSLEEP } from './chains.js';
import { CAPTURE_61, CAPTURE_72, CAPTURE_72_HARD, capture } from './fixtures.js';

/** Every policy in the index: a new policy is covered without editing this file. */
const NAMES: readonly PolicyName[] = POLICY_NAMES;

// The WebAssembly core, compiled here from its source as the build compiles it, so that these
// tests never run a stale dist/.
beforeAll(async () => {
  const wabt = await wabtInit();
  const wat = new URL('../src/flat/walk-core.wat', import.meta.url);
  const m = wabt.parseWat('walk-core.wat', readFileSync(wat, 'utf8'), { threads: true });
  useWalkCore(m.toBinary({}).buffer);
  m.destroy();
});

/**
 * The flat walk against the reference step functions alone (fast path off):
 * every task of `machine`, every policy that fits it, both walks, two buffer
 * sizes. Returns how many walks the flat path completed itself.
 */
function sameEverywhere(machine: Machine): number {
  const arena = buildStackArena(machine);
  let flat = 0;
  for (const name of NAMES) {
    const policy = POLICIES[name];
    if (policy.checkLayout(machine) !== null) continue;
    const fast = new Walker(machine, policy);
    const slow = new Walker(machine, policy);
    for (const reliable of [true, false])
      for (const size of [100, 6]) {
        const mode = flatMode(policy.rules, reliable);
        const scratch = new Uint32Array(size);
        const kinds = new Uint8Array(size);
        machine.tasks.forEach((task, i) => {
          const options = { reliable, size };
          const a = fast.walkAt(arena, i, options);
          const b = slow.walk(task, { ...options, fastPath: false });
          const what = `${name} ${task.pid} ${task.comm} reliable=${reliable} size=${size}`;
          expect(a, what).toBe(b);
          expect(fast.result(), what).toEqual(slow.result());
          if (
            walkTaskFlat(arena, mode, i, size, { his: scratch, los: scratch, kinds }) !==
            HANDED_BACK
          )
            flat++;
        });
      }
  }
  return flat;
}

describe('the flat walk over a stack arena changes nothing but speed', () => {
  it('on every task of the three real captures, every policy, both walks', () => {
    let flat = 0;
    for (const file of [CAPTURE_61, CAPTURE_72, CAPTURE_72_HARD])
      flat += sameEverywhere(capture(file).machine);
    // Most real walks are plain: the flat path is exercised, not bypassed.
    expect(flat).toBeGreaterThan(500);
  });

  it('on tracer-hooked, exception and corrupted chains of both layouts', () => {
    const tasks = [
      { frames: irqPreempted('saved') },
      { frames: irqPreempted('unsaved') },
      {
        frames: KWORKER.map((f, i) =>
          i > 0 && i < 5 ? { ...f, fgraph: i % 2 === 0, kretprobe: i % 3 === 0 } : f,
        ),
      },
      { frames: KWORKER },
      ...CORRUPTIONS.filter((k) => !['missing-fgraph', 'missing-kretprobe'].includes(k)).map(
        (kind) => ({ frames: USER_NANOSLEEP, corrupt: [{ kind, frame: 4 }] }),
      ),
    ];
    for (const layout of ['mainline', 'linux-6.1'] as const)
      sameEverywhere(build({ layout, tasks }).machine);
  });

  it('on a synthetic kernel of 300 tasks, completing every walk that succeeds', () => {
    const { machine } = build(syntheticKernelDesc({ tasks: 300, seed: 7 }));
    sameEverywhere(machine);
    // No tracer hooks these chains and each ends at its FINAL record: every
    // walk the reference completes with success is plain, so the flat path
    // must complete it too (and no other).
    const arena = buildStackArena(machine);
    const walker = new Walker(machine, POLICIES.mainline);
    const mode = flatMode(POLICIES.mainline.rules, true);
    const scratch = new Uint32Array(100);
    machine.tasks.forEach((task, i) => {
      const ok = walker.walk(task, { reliable: true, fastPath: false }) === 0;
      const n = walkTaskFlat(arena, mode, i, 100, {
        his: scratch,
        los: scratch,
        kinds: new Uint8Array(100),
      });
      expect(n === HANDED_BACK ? -1 : n, task.comm).toBe(ok ? walker.trace.len : -1);
    });
  });
});

describe('walkBatch', () => {
  it('gives each task the verdict and entry count of stack_trace_save_tsk_reliable', () => {
    for (const file of [CAPTURE_61, CAPTURE_72_HARD]) {
      const { machine } = capture(file);
      const arena = buildStackArena(machine);
      for (const name of ['mainline', 'symcode-v8'] as const) {
        const policy = POLICIES[name];
        if (policy.checkLayout(machine) !== null) continue;
        const walker = new Walker(machine, policy);
        const ref = new Walker(machine, policy);
        const frames = walkBatch(walker, arena, { reliable: true }, 0, arena.ntasks);
        const verdicts = arena.verdicts;
        let total = 0;
        machine.tasks.forEach((task, i) => {
          const ret = ref.walk(task, { reliable: true, fastPath: false });
          const expected = ret < 0 ? ret : ref.trace.len;
          expect(verdicts[i], `${name} ${task.comm}`).toBe(expected);
          total += ref.trace.len;
        });
        expect(frames).toBe(total);
      }
    }
  });
});

/**
 * The WebAssembly core against its JavaScript twin on every task of
 * `machine`: the same outcome and, for each completed walk, the same
 * entries (the core's trace slot holds each as one i64, low half first).
 */
function coreMatchesJs(machine: Machine): number {
  const arena = buildStackArena(machine);
  let completed = 0;
  for (const name of NAMES) {
    const policy = POLICIES[name];
    for (const reliable of [true, false])
      for (const size of [100, 6]) {
        const mode = flatMode(policy.rules, reliable);
        const js = flatEntries(size);
        const trace = new Int32Array(arena.memory.buffer, arena.layout.traces, 2 * TRACE_ENTRIES);
        machine.tasks.forEach((task, i) => {
          const what = `${name} ${task.pid} ${task.comm} reliable=${reliable} size=${size}`;
          const one = new Int32Array(1);
          walkFlat(arena, mode, size, i, 1, one, i, js);
          walkFlatRange(arena, mode, size, i, 1, 0, js);
          expect(arena.verdicts[i], what).toBe(one[0]);
          for (let j = 0; j < one[0]!; j++) {
            expect(trace[2 * j], `${what} entry ${j}`).toBe(js.los[j]! | 0);
            expect(trace[2 * j + 1], `${what} entry ${j}`).toBe(js.his[j]! | 0);
          }
          if (one[0]! > 0) completed++;
        });
      }
  }
  return completed;
}

describe('the WebAssembly core is the flat walk', () => {
  it('on every task of the three real captures, every policy, both walks, two sizes', () => {
    let completed = 0;
    for (const file of [CAPTURE_61, CAPTURE_72, CAPTURE_72_HARD])
      completed += coreMatchesJs(capture(file).machine);
    expect(completed).toBeGreaterThan(500);
  });

  it('on corrupted and tracer-hooked chains and a synthetic kernel', () => {
    const tasks = [
      { frames: irqPreempted('saved') },
      { frames: KWORKER.map((f, i) => (i > 0 && i < 5 ? { ...f, fgraph: i % 2 === 0 } : f)) },
      ...CORRUPTIONS.filter((k) => !['missing-fgraph', 'missing-kretprobe'].includes(k)).map(
        (kind) => ({ frames: USER_NANOSLEEP, corrupt: [{ kind, frame: 4 }] }),
      ),
    ];
    for (const layout of ['mainline', 'linux-6.1'] as const)
      coreMatchesJs(build({ layout, tasks }).machine);
    expect(
      coreMatchesJs(build(syntheticKernelDesc({ tasks: 100, seed: 3 })).machine),
    ).toBeGreaterThan(0);
  });
});

describe('WalkPool', () => {
  // The workers run the built code (dist/flat/worker.js): this needs `pnpm build` first.
  it('gives walkBatch’s outcome for every task with 1 and 2 workers', async () => {
    const { machine } = build(syntheticKernelDesc({ tasks: 200, seed: 5 }));
    const arena = buildStackArena(machine);
    const walker = new Walker(machine, POLICIES.mainline);
    const frames = walkBatch(walker, arena, { reliable: true }, 0, arena.ntasks);
    const want = Array.from(arena.verdicts);
    for (const n of [1, 2]) {
      arena.verdicts.fill(0);
      const pool = await WalkPool.start(arena, n);
      try {
        expect(await pool.walk(walker, { reliable: true })).toBe(frames);
      } finally {
        await pool.close();
      }
      expect(Array.from(arena.verdicts), `${n} workers`).toEqual(want);
    }
  });
});
