import type { Machine } from '@klpsim/kernel';
import { CORRUPTIONS, syntheticKernelDesc } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import { buildStackArena } from '../src/flat/arena.js';
import { flatMode, HANDED_BACK, walkTaskFlat } from '../src/flat/walk.js';
import { POLICIES, POLICY_NAMES, type PolicyName, Walker, walkBatch } from '../src/index.js';
import { build } from './build.js';
import { irqPreempted, KWORKER, USER_NANOSLEEP } from './chains.js';
import { CAPTURE_61, CAPTURE_72, CAPTURE_72_HARD, capture } from './fixtures.js';

/** Every policy in the index: a new policy is covered without editing this file. */
const NAMES: readonly PolicyName[] = POLICY_NAMES;

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
        const verdicts = new Int32Array(machine.tasks.length);
        const frames = walkBatch(walker, arena, { reliable: true }, 0, arena.ntasks, verdicts);
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
