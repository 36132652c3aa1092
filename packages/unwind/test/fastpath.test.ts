import type { Machine, Task } from '@klpsim/kernel';
import { CORRUPTIONS, syntheticKernelDesc } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import { POLICIES, type PolicyName, Walker, type WalkOptions } from '../src/index.js';
import { build } from './build.js';
import { irqPreempted, KWORKER, USER_NANOSLEEP } from './chains.js';
import { CAPTURE_61, CAPTURE_72, capture } from './fixtures.js';

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

const NAMES: PolicyName[] = ['mainline', 'linux-6.1', 'symcode-v8'];

describe('the plain-frame fast path changes nothing but speed', () => {
  it('on every task of both real captures, both walks, every policy', () => {
    for (const file of [CAPTURE_61, CAPTURE_72]) {
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
