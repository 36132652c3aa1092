import type { Machine, Task, TaskDesc } from '@klpsim/kernel';
import { CORRUPTIONS, STACK_NAMES, syntheticKernelDesc } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import {
  POLICIES,
  POLICY_NAMES,
  type PolicyName,
  Walker,
  type WalkFrom,
  type WalkOptions,
} from '../src/index.js';
import { build } from './build.js';
import { irqPreempted, KWORKER, USER_NANOSLEEP } from './chains.js';
import { CAPTURE_61, CAPTURE_72, CAPTURE_72_HARD, capture } from './fixtures.js';

/** Walks with the fast path on and off and requires the same result, reason and state. */
function same(machine: Machine, name: PolicyName, task: Task, options: WalkOptions): void {
  const policy = POLICIES[name];
  if (policy.checkLayout(machine) !== null) return;
  const fast = new Walker(machine, policy);
  const slow = new Walker(machine, policy);
  const a = fast.walk(task, { ...options, fastPath: true });
  const b = slow.walk(task, { ...options, fastPath: false });
  expect(a, `${name} ${task.comm}`).toBe(b);
  expect(
    fast.result(),
    `${name} ${task.comm} ${JSON.stringify(options.size)} ${options.reliable}`,
  ).toEqual(slow.result());
}

/** Every policy in the index: a new policy is covered without editing this file. */
const NAMES: readonly PolicyName[] = POLICY_NAMES;

describe('the plain-frame fast path changes nothing but speed', () => {
  it('on every task of the three real captures, both walks, every policy', () => {
    for (const file of [CAPTURE_61, CAPTURE_72, CAPTURE_72_HARD]) {
      const { machine } = capture(file);
      for (const task of machine.tasks)
        for (const name of NAMES)
          for (const reliable of [true, false]) same(machine, name, task, { reliable });
    }
  });

  it('on tracer-hooked, exception and corrupted chains', () => {
    const tasks = [
      { frames: irqPreempted('saved') },
      { frames: irqPreempted('unsaved') },
      {
        frames: KWORKER.map((f, i) =>
          i > 0 && i < 5 ? { ...f, fgraph: i % 2 === 0, kretprobe: i % 3 === 0 } : f,
        ),
      },
      ...CORRUPTIONS.filter(
        (k) => !['missing-fgraph', 'missing-kretprobe', 'lr-not-after-call'].includes(k),
      ).map((kind) => ({
        frames: USER_NANOSLEEP,
        corrupt: [{ kind, frame: 4 }],
      })),
      { frames: USER_NANOSLEEP, corrupt: [{ kind: 'lr-not-after-call' as const, frame: 4 }] },
    ];
    for (const layout of ['mainline', 'linux-6.1'] as const) {
      const b = build({ layout, tasks });
      for (const t of b.tasks)
        for (const name of NAMES)
          for (const size of [100, 6]) {
            same(b.machine, name, t.task, { reliable: true, size, from: t.from });
            same(b.machine, name, t.task, { reliable: false, size, from: t.from });
          }
    }
  });

  it('on a synthetic kernel of 300 tasks', () => {
    const b = build(syntheticKernelDesc({ tasks: 300, seed: 7 }));
    for (const t of b.tasks)
      for (const name of NAMES) same(b.machine, name, t.task, { reliable: true });
  });
});

describe('the fast path on every start kind', () => {
  // Blocked, running (from the caller), from pt_regs, and running with the
  // innermost records on each per-CPU stack, clean and corrupted, walked
  // with each walking context the kernel allows.
  const irqChain = (stack: (typeof STACK_NAMES)[number]) => [
    { fn: 'gic_handle_irq', stack },
    { fn: 'call_on_irq_stack', stack },
    { fn: 'el1_interrupt' },
    { fn: 'el1h_64_irq_handler' },
    { fn: 'el1h_64_irq' },
    { fn: 'crc32_body', at: 0x48, exception: { lr: 'saved' as const } },
    { fn: 'crc32_update' },
    { fn: 'worker_thread' },
    { fn: 'kthread' },
    { fn: 'ret_from_fork' },
  ];
  it('blocked, running, regs-first and per-CPU-stack walks agree both ways', () => {
    const tasks: TaskDesc[] = [];
    for (const stack of STACK_NAMES) {
      const frames = irqChain(stack);
      tasks.push({ frames, running: true });
      // The PT_REGS meta record first: interrupted, walked from the vector.
      tasks.push({ frames: frames.slice(4), running: true });
      tasks.push({ frames, running: false });
      for (const kind of ['loop', 'truncated', 'other-stack', 'misaligned-fp'] as const)
        tasks.push({ frames, running: true, corrupt: [{ kind, frame: 6 }] });
    }
    for (const layout of ['mainline', 'linux-6.1'] as const) {
      const b = build({ layout, tasks });
      for (const t of b.tasks) {
        const starts: WalkFrom[] = [t.from, { kind: 'task' }];
        if (t.from.kind === 'caller') {
          // From the pt_regs of the exception the chain crosses.
          const regs = regsOf(b.machine, t.task, t.from.fp);
          if (regs !== null) starts.push({ kind: 'regs', regs, nonPreemptible: true });
          for (const nonPreemptible of [true, false])
            for (const inNmi of [true, false]) starts.push({ ...t.from, nonPreemptible, inNmi });
        }
        for (const from of starts)
          for (const name of NAMES)
            for (const reliable of [true, false]) same(b.machine, name, t.task, { reliable, from });
      }
    }
  });
});

/** The pt_regs a chain's first PT_REGS meta record (or 6.1 exception record) belongs to, found by following records. */
function regsOf(m: Machine, task: Task, fp: number): number | null {
  const layout = m.config.ptRegs;
  const w = { hi: 0, lo: 0 };
  for (let i = 0, at = fp; i < 32; i++) {
    if (!m.memory.read64(at, w)) return null;
    const lr = { hi: 0, lo: 0 };
    m.memory.read64(at + 8, lr);
    if ((w.hi | w.lo | lr.hi | lr.lo) === 0 || at === task.finalFrame) {
      return at === task.finalFrame ? null : at - layout.stackframeOffset;
    }
    at = (w.hi - 0xfff00000) * 2 ** 32 + w.lo;
  }
  return null;
}
