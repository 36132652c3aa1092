import { describe, expect, it } from 'vitest';
import { archStackWalk, archStackWalkReliable, POLICIES, Walker } from '../src/index.js';
import { CAPTURE_61, CAPTURE_72, CAPTURE_72_HARD, capture, strip } from './fixtures.js';

describe('linux-6.1 replays the real 6.1 kernel', () => {
  it('reproduces kernelTraceFull of every task, frame for frame (476 frames)', () => {
    const { machine, oracle } = capture(CAPTURE_61);
    const walker = new Walker(machine, POLICIES['linux-6.1']);
    let frames = 0;
    for (const task of machine.tasks) {
      const r = archStackWalk(walker, task);
      const want = oracle.get(task.pid)!.traceFull!;
      expect(strip(r.trace), `${task.comm}:${task.pid}`).toEqual(strip(want));
      expect(r.reliable).toBeNull();
      expect(r.reason, `${task.comm}:${task.pid} ended early`).toBeNull();
      frames += r.trace.length;
    }
    expect(frames).toBe(476);
  });

  it('reproduces kernelTrace (/proc/PID/stack: no sched or lock text)', () => {
    const { machine, oracle } = capture(CAPTURE_61);
    const walker = new Walker(machine, POLICIES['linux-6.1']);
    for (const task of machine.tasks) {
      const r = archStackWalk(walker, task);
      const kept = r.trace.filter((_, i) => !machine.text.inSchedFunctions(walker.trace.pcs[i]!));
      expect(strip(kept)).toEqual(strip(oracle.get(task.pid)!.trace!));
    }
  });
});

describe('mainline matches the real 7.2 kernel', () => {
  it("gives every task the kernel's own arch_stack_walk_reliable verdict and entries", () => {
    const { machine, oracle } = capture(CAPTURE_72);
    const walker = new Walker(machine, POLICIES.mainline);
    for (const task of machine.tasks) {
      const r = archStackWalkReliable(walker, task);
      if (!r.ok) throw new Error(r.error.message);
      const want = oracle.get(task.pid)!.reliable!;
      expect(r.value.reliable, `${task.comm}:${task.pid}`).toBe(want.ret >= 0);
      expect(strip(r.value.trace)).toEqual(strip(want.trace));
      if (want.ret >= 0) expect(r.value.trace.length).toBe(want.ret);
    }
  });

  it('--best-effort reproduces kernelTraceFull of every task (532 frames)', () => {
    const { machine, oracle } = capture(CAPTURE_72);
    const walker = new Walker(machine, POLICIES.mainline);
    let frames = 0;
    for (const task of machine.tasks) {
      const r = archStackWalk(walker, task);
      expect(strip(r.trace), `${task.comm}:${task.pid}`).toEqual(
        strip(oracle.get(task.pid)!.traceFull!),
      );
      frames += r.trace.length;
    }
    expect(frames).toBe(532);
  });
});

describe('mainline matches the real 7.2 kernel under tracers, faults and IRQ preemption', () => {
  it("gives every task of the hard capture the kernel's own verdict and entries (five -EINVAL)", () => {
    const { machine, oracle } = capture(CAPTURE_72_HARD);
    const walker = new Walker(machine, POLICIES.mainline);
    let refused = 0;
    for (const task of machine.tasks) {
      const r = archStackWalkReliable(walker, task);
      if (!r.ok) throw new Error(r.error.message);
      const want = oracle.get(task.pid)!.reliable!;
      expect(r.value.reliable, `${task.comm}:${task.pid}`).toBe(want.ret >= 0);
      expect(strip(r.value.trace), `${task.comm}:${task.pid}`).toEqual(strip(want.trace));
      if (want.ret < 0) refused++;
      const full = archStackWalk(walker, task);
      expect(strip(full.trace), `${task.comm}:${task.pid} full`).toEqual(
        strip(oracle.get(task.pid)!.traceFull!),
      );
    }
    expect(machine.tasks.length).toBe(86);
    expect(refused).toBe(5);
  });
});
