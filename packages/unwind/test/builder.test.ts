import { formatAddr } from '@klpsim/arm64';
import { describe, expect, it } from 'vitest';
import { POLICIES, type PolicyName, Walker } from '../src/index.js';
import { build } from './build.js';
import { irqPreempted, KWORKER, task, USER_NANOSLEEP } from './chains.js';

const pcsOf = (w: Walker) => Array.from(w.trace.pcs.subarray(0, w.trace.len), formatAddr);

describe('builder chains walk back exactly', () => {
  for (const layout of ['mainline', 'linux-6.1'] as const) {
    it(`clean user and kthread chains (${layout} layout) under every policy`, () => {
      const b = build({ layout, tasks: [task(USER_NANOSLEEP), task(KWORKER)] });
      for (const name of ['mainline', 'linux-6.1', 'symcode-v8'] as PolicyName[]) {
        const policy = POLICIES[name];
        if (policy.checkLayout(b.machine) !== null) continue;
        const w = new Walker(b.machine, policy);
        for (const t of b.tasks) {
          w.walk(t.task, { reliable: false });
          expect(pcsOf(w), `${name} debug`).toEqual(t.debugTrace.map((e) => formatAddr(e.pc)));
          if (policy.hasReliableWalk) {
            expect(
              w.walk(t.task, { reliable: true }),
              `${name} reliable: ${JSON.stringify(w.result().reason)}`,
            ).toBe(0);
            expect(pcsOf(w)).toEqual(t.chain.map(formatAddr));
          }
        }
      }
    });
  }

  it('mainline marks the exception boundary and refuses it in the reliable walk', () => {
    const b = build({ tasks: [task(irqPreempted('saved'))] });
    const w = new Walker(b.machine, POLICIES.mainline);
    const t = b.tasks[0]!;
    w.walk(t.task, { reliable: false });
    expect(w.result().trace.map((e) => e.source)).toEqual(t.debugTrace.map((e) => e.marker));
    expect(pcsOf(w)).toEqual(t.chain.map(formatAddr));
    expect(w.walk(t.task, { reliable: true })).toBe(-22);
    expect(w.result().reason?.code).toBe('EXCEPTION_BOUNDARY');
    expect(w.trace.len).toBe(7);
  });

  it('a mid-prologue leaf hides its caller from every walk', () => {
    const b = build({ tasks: [task(irqPreempted('unsaved'))] });
    const t = b.tasks[0]!;
    expect(t.debugTrace.length).toBe(t.chain.length - 1);
    const w = new Walker(b.machine, POLICIES.mainline);
    w.walk(t.task, { reliable: false });
    expect(pcsOf(w)).toEqual(t.debugTrace.map((e) => formatAddr(e.pc)));
    const b61 = build({ layout: 'linux-6.1', tasks: [task(irqPreempted('unsaved'))] });
    const w61 = new Walker(b61.machine, POLICIES['linux-6.1']);
    w61.walk(b61.tasks[0]!.task, { reliable: false });
    expect(pcsOf(w61)).toEqual(b61.tasks[0]!.debugTrace.map((e) => formatAddr(e.pc)));
  });
});

describe('rewritten return addresses are recovered before any check', () => {
  const hooked = KWORKER.map((f, i) =>
    i === 1
      ? { ...f, fgraph: true }
      : i === 2
        ? { ...f, kretprobe: true }
        : i === 3
          ? { ...f, fgraph: true, kretprobe: true }
          : f,
  );
  for (const layout of ['mainline', 'linux-6.1'] as const) {
    it(`function graph (F), kretprobe (K) and both nested (FK), ${layout} layout`, () => {
      const b = build({ layout, tasks: [task(hooked)] });
      const t = b.tasks[0]!;
      expect(t.task.retStack?.layout).toBe(layout === 'mainline' ? 'shadow' : 'array');
      for (const name of ['mainline', 'linux-6.1', 'symcode-v8'] as PolicyName[]) {
        const policy = POLICIES[name];
        if (policy.checkLayout(b.machine) !== null) continue;
        const w = new Walker(b.machine, policy);
        w.walk(t.task, { reliable: policy.hasReliableWalk });
        const r = w.result();
        expect(r.reason, name).toBeNull();
        expect(pcsOf(w), name).toEqual(t.chain.map(formatAddr));
        expect(r.trace.map((e) => e.source)).toEqual(['T', 'F', 'K', 'FK', '', '']);
      }
    });
  }
});
