import { type Addr, parseAddr } from '@klpsim/arm64';
import { type LoadedCapture, rawFromMachine } from '@klpsim/kernel';
import type { PolicyName } from '@klpsim/unwind';
import { generatedExpectation } from '../new.js';
import { type Expectation, VECTOR_FORMAT, type Vector } from '../schema.js';

/**
 * Every task of a real capture as a raw vector. The expectation the kernel
 * itself recorded (`kernelReliable`, `kernelTraceFull`) is stated with
 * origin `kernel`; what the other policies make of the task is added as
 * `generated`, never in a field that means the kernel's own.
 */
export function captureVectors(cap: LoadedCapture, name: string): Vector[] {
  const m = cap.machine;
  const meta = m.config.ptRegs.meta !== null;
  const out: Vector[] = [];
  for (const task of m.tasks) {
    const oracle = cap.oracle.get(task.pid);
    const kernelTraceFull = oracle?.traceFull ?? null;
    const kernelReliable = oracle?.reliable ?? null;
    const expect: Expectation[] = [];
    const ownPolicy: PolicyName = meta ? 'mainline' : 'linux-6.1';
    if (kernelReliable !== null)
      expect.push({
        policy: 'mainline',
        walk: 'reliable',
        origin: 'kernel',
        reliable: kernelReliable.ret >= 0,
        trace: kernelReliable.trace.map((e) => ({ address: e.address, symbol: e.symbol })),
      });
    if (kernelTraceFull !== null)
      expect.push({
        policy: ownPolicy,
        walk: 'debug',
        origin: 'kernel',
        reliable: null,
        trace: kernelTraceFull.map((e) => ({ address: e.address, symbol: e.symbol })),
      });
    const symbolize: Addr[] = [];
    for (const e of [...(kernelTraceFull ?? []), ...(kernelReliable?.trace ?? [])]) {
      const a = parseAddr(e.address);
      if (a !== null) symbolize.push(a);
    }
    const generated = (policy: PolicyName, reliable: boolean) => {
      const e = generatedExpectation(m, task, policy, reliable ? 'reliable' : 'debug');
      for (const t of e.trace) {
        const a = parseAddr(t.address);
        if (a !== null) symbolize.push(a);
      }
      expect.push(e);
    };
    generated('symcode-v8', true);
    if (meta) generated('linux-6.1', false);
    out.push({
      format: VECTOR_FORMAT,
      id: `captures/${name}/${task.pid}-${task.comm.replace(/[^a-z0-9._-]/gi, '_').toLowerCase()}`,
      title: `${name}: ${task.comm} (pid ${task.pid}), ${task.kthread ? 'kthread' : 'user task'} in state ${task.state}`,
      pins: {
        behaviour: `the real kernel's own ${kernelReliable !== null ? 'stack_trace_save_tsk_reliable verdict and entries, and its ' : ''}unfiltered arch_stack_walk of this task`,
        source: `fixtures/captures/${name} (arm64-stack-capture/v1, ${m.config.release})`,
      },
      tags: ['captures', name, task.kthread ? 'kthread' : 'user'],
      raw: rawFromMachine(m, { tasks: [task], scope: { symbolize } }),
      walks: [{ task: 0, from: { kind: 'task' }, expect }],
    });
  }
  return out;
}
