import { type Addr, formatAddr, parseAddr } from '@klpsim/arm64';
import { LazyFrameTable } from '@klpsim/frames';
import { type LoadedCapture, type Machine, type RawState, rawFromMachine } from '@klpsim/kernel';
import type { PolicyName } from '@klpsim/unwind';
import { frameStatesFromAnalysis } from '../frame-states.js';
import { generatedExpectation } from '../new.js';
import { type Expectation, type FrameStates, VECTOR_FORMAT, type Vector } from '../schema.js';

/**
 * The text of the functions in `fs` as memory regions (8-byte aligned,
 * overlapping ones merged), so the raw machine holds the words its frame
 * state was derived from and a runner's own analysis can read them.
 */
function textRegions(m: Machine, fs: FrameStates): RawState['memory'] {
  const spans: [number, number][] = [];
  for (const f of fs.functions) {
    const start = parseAddr(f.start)!;
    spans.push([start - (start % 8), start + f.size + ((8 - ((start + f.size) % 8)) % 8)]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else merged.push([s[0], s[1]]);
  }
  const out: RawState['memory'] = [];
  for (const [lo, hi] of merged) {
    const r = m.memory.regionOf(lo, hi - lo);
    if (r === null) continue;
    const bytes = r.bytes.subarray(lo - r.start, hi - r.start);
    out.push({
      name: `text@${formatAddr(lo)}`,
      start: formatAddr(lo),
      size: hi - lo,
      chunks: [{ offset: 0, base64: Buffer.from(bytes).toString('base64') }],
    });
  }
  return out;
}

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
  const table = meta ? new LazyFrameTable(m) : null;
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
    let frameStates: FrameStates | undefined;
    if (table !== null) {
      for (const p of ['sframe-regs', 'fp-validate'] as const) {
        generated(p, true);
        generated(p, false);
      }
      // Every function a trace's pc (or pc - 4) lies in, as the analysis of the text sees it.
      const pcs = symbolize.flatMap((a) => [a, a - 4]);
      frameStates = frameStatesFromAnalysis(table, pcs);
      symbolize.push(...pcs);
    }
    const raw = rawFromMachine(m, { tasks: [task], scope: { symbolize } });
    if (frameStates !== undefined) raw.memory.push(...textRegions(m, frameStates));
    out.push({
      format: VECTOR_FORMAT,
      id: `captures/${name}/${task.pid}-${task.comm.replace(/[^a-z0-9._-]/gi, '_').toLowerCase()}`,
      title: `${name}: ${task.comm} (pid ${task.pid}), ${task.kthread ? 'kthread' : 'user task'} in state ${task.state}`,
      pins: {
        behaviour: `the real kernel's own ${kernelReliable !== null ? 'stack_trace_save_tsk_reliable verdict and entries, and its ' : ''}unfiltered arch_stack_walk of this task`,
        source: `fixtures/captures/${name} (arm64-stack-capture/v1, ${m.config.release})`,
      },
      tags: ['captures', name, task.kthread ? 'kthread' : 'user'],
      raw,
      ...(frameStates !== undefined ? { frameStates } : {}),
      walks: [{ task: 0, from: { kind: 'task' }, expect }],
    });
  }
  return out;
}
