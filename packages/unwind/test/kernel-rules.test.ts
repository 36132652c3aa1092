import {
  type BuiltTask,
  kretprobeInstance,
  type Machine,
  type Task,
  type TaskDesc,
} from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import { POLICIES, type PolicyName, Walker, type WalkOptions } from '../src/index.js';
import { build } from './build.js';
import { KWORKER } from './chains.js';

/**
 * Four rules the kernel applies and klpsim once did not, each pinned by a
 * case whose expected value is worked out here from the kernel source named
 * beside it (with BigInt, independently of the walker's two-halves code),
 * never taken from klpsim's own output.
 */

const U64 = 2n ** 64n - 1n;

function word(m: Machine, addr: number): bigint {
  const w = { hi: 0, lo: 0 };
  if (!m.memory.read64(addr, w)) throw new Error('unmapped');
  return (BigInt(w.hi) << 32n) | BigInt(w.lo);
}

function poke(m: Machine, addr: number, v: bigint): void {
  m.memory.write64(addr, Number((v >> 32n) & 0xffffffffn), Number(v & 0xffffffffn));
}

/** The frame-record addresses of a built task, innermost first, read from its stack. */
function records(m: Machine, t: Task, count: number): number[] {
  const out = [t.cpuContext.fp];
  while (out.length < count) {
    const v = word(m, out[out.length - 1]!);
    // Kernel-half words fold to v - 0xfff0_0000_0000_0000 (@klpsim/arm64 addr.ts).
    out.push(Number(v - 0xfff0_0000_0000_0000n));
  }
  return out;
}

function walk(
  m: Machine,
  name: PolicyName,
  task: Task,
  options: WalkOptions,
): ReturnType<Walker['result']> & { ret: number } {
  const w = new Walker(m, POLICIES[name]);
  const ret = w.walk(task, options);
  return { ...w.result(), ret };
}

function one(desc: TaskDesc, layout: 'mainline' | 'linux-6.1' = 'mainline') {
  const b = build({ layout, tasks: [desc] });
  return { machine: b.machine, built: b.tasks[0]! as BuiltTask };
}

const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;

describe('kernel/kprobes.c kretprobe_find_ret_addr: an instance with ret_addr 0 ends the search', () => {
  // `ret = __kretprobe_find_ret_addr(tsk, cur); if (!ret) break;` returns 0,
  // and arch/arm64/kernel/stacktrace.c kunwind_recover_return_address turns
  // 0 into -EINVAL (`if (!orig_pc) return -EINVAL;`). 6.1's unwind_next
  // assigns the 0 to the pc and walks on.
  const frames = KWORKER.map((f, i) => (i === 3 ? { ...f, kretprobe: true } : f));

  it('mainline refuses the stack even though a later instance matches', () => {
    const { machine, built } = one({ frames });
    const good = walk(machine, 'mainline', built.task, { reliable: true });
    expect(good.reliable).toBe(true);
    // A stale instance of another frame, ret_addr 0, newest in the list.
    const stale = kretprobeInstance({ hi: 0, lo: 0 }, { hi: 0xffff8000, lo: 0x10000010 });
    const task: Task = { ...built.task, kretprobes: [stale, ...built.task.kretprobes] };
    const r = walk(machine, 'mainline', task, { reliable: true });
    expect(r.ret).toBe(-22);
    expect(r.reason?.code).toBe('KRETPROBE_UNRECOVERABLE');
    // Entries stored before the failing step: __switch_to, __schedule, schedule.
    expect(r.trace.length).toBe(3);
  });

  it('linux-6.1 prints the 0 it got and goes on', () => {
    const { machine, built } = one({ frames }, 'linux-6.1');
    const stale = kretprobeInstance({ hi: 0, lo: 0 }, { hi: 0xffff8000, lo: 0x10000010 });
    const task: Task = { ...built.task, kretprobes: [stale, ...built.task.kretprobes] };
    const r = walk(machine, 'linux-6.1', task, { reliable: false });
    expect(r.trace[3]!.address).toBe(hex(0n));
    expect(r.trace.length).toBe(frames.length);
  });
});

describe('PAC strip: bit 55 picks the half (asm/compiler.h xpaclri, 6.1 pointer_auth.h ptrauth_strip_insn_pac)', () => {
  // Bit 55 clear: ptr & ~GENMASK_ULL(54, vabits); TCR_EL1.TBI0 keeps the top
  // byte (arch/arm64/mm/proc.S), so the value stays in the lower half.
  for (const name of ['mainline', 'linux-6.1', 'symcode-v8'] as const) {
    it(`${name}: an LR with bit 55 flipped is printed as the raw stripped value`, () => {
      const layout = name === 'mainline' ? 'mainline' : 'linux-6.1';
      const { machine, built } = one({ frames: KWORKER }, layout);
      const recs = records(machine, built.task, 3);
      // Record 1 holds the return address of frame 2 (schedule), PAC-signed.
      const lr = word(machine, recs[1]! + 8);
      const flipped = lr & ~(1n << 55n);
      poke(machine, recs[1]! + 8, flipped);
      const userPac = ((1n << 55n) - 1n) & ~((1n << 48n) - 1n); // GENMASK(54, 48)
      const expected = flipped & ~userPac & U64;
      const r = walk(machine, name, built.task, { reliable: name !== 'linux-6.1' });
      expect(r.trace[2]!.address).toBe(hex(expected));
      // Not kernel text: the series' unwind_is_reliable (__kernel_text_address) refuses it.
      if (name === 'symcode-v8') expect(r.reason?.code).toBe('NOT_KERNEL_TEXT');
      // Mainline's reliable consumer has no text check: the chain itself is intact.
      if (name === 'mainline') expect(r.reliable).toBe(true);
    });
  }
});

describe('no pointer authentication, no strip (asm/compiler.h without CONFIG_ARM64_PTR_AUTH_KERNEL)', () => {
  it('an LR with bit 55 flipped is printed exactly as it was saved', () => {
    const b = build({ layout: 'mainline', pac: false, tasks: [{ frames: KWORKER }] });
    const { machine } = b;
    const task = b.tasks[0]!.task;
    const recs = records(machine, task, 3);
    const flipped = word(machine, recs[1]! + 8) & ~(1n << 55n);
    poke(machine, recs[1]! + 8, flipped);
    const r = walk(machine, 'mainline', task, { reliable: false });
    expect(r.trace[2]!.address).toBe(hex(flipped));
  });
});

describe('raw 64-bit values: equal non-canonical fps match in the tracer lookups', () => {
  // kernel/kprobes.c kretprobe_find_ret_addr compares `ri->fp != fp` and
  // kernel/trace/fgraph.c ftrace_graph_ret_addr `ret_stack->retp == retp`:
  // plain unsigned long / pointer equality, canonical or not.
  const X = 0x1234_8000_1000_0010n; // aligned, in neither half
  for (const tracer of ['kretprobe', 'fgraph'] as const) {
    it(`${tracer}: the address is recovered, then the next step fails off every stack`, () => {
      const frames = KWORKER.map((f, i) => (i === 3 ? { ...f, [tracer]: true } : f));
      const { machine, built } = one({ frames });
      const recs = records(machine, built.task, 3);
      // Record 2 is read at the step to frame 3; its fp is the lookup key.
      poke(machine, recs[2]!, X);
      const xs = { hi: Number(X >> 32n), lo: Number(X & 0xffffffffn) };
      const t = built.task;
      const task: Task =
        tracer === 'kretprobe'
          ? {
              ...t,
              kretprobes: t.kretprobes.map((k) =>
                kretprobeInstance({ hi: k.retAddrHi, lo: k.retAddrLo }, xs),
              ),
            }
          : {
              ...t,
              retStack: {
                ...t.retStack!,
                entries: t.retStack!.entries.map((e) => ({ ...e, retpHi: xs.hi, retpLo: xs.lo })),
              },
            };
      const r = walk(machine, 'mainline', task, { reliable: false });
      expect(r.trace.length).toBe(4);
      // What the tracer saved: ri->ret_addr, or ret_stack->ret.
      const saved =
        tracer === 'kretprobe'
          ? (BigInt(t.kretprobes[0]!.retAddrHi) << 32n) | BigInt(t.kretprobes[0]!.retAddrLo)
          : (BigInt(t.retStack!.entries[0]!.retHi) << 32n) | BigInt(t.retStack!.entries[0]!.retLo);
      expect(r.trace[3]!.address).toBe(hex(saved));
      expect(r.trace[3]!.source).toBe(tracer === 'kretprobe' ? 'K' : 'F');
      expect(r.trace[3]!.symbol.startsWith('worker_thread+')).toBe(true);
      expect(r.reason?.code).toBe('RECORD_OFF_STACK');
    });
  }
});

describe('fast path: a PT_REGS meta record as the first record (arch/arm64/kernel/stacktrace.c)', () => {
  // kunwind_next_frame_record reads the zero {fp, lr} before it consumes the
  // stack, then kunwind_next_frame_record_meta -> kunwind_next_regs_pc needs
  // the whole pt_regs on a stack still allowed; the reliable consumer
  // refuses the pc taken from pt_regs (KUNWIND_SOURCE_REGS_PC).
  const frames: TaskDesc['frames'] = [
    { fn: 'el1h_64_irq' },
    { fn: 'crc32_body', at: 0x48, exception: { lr: 'saved' } },
    { fn: 'crc32_update' },
    { fn: 'worker_thread' },
    { fn: 'kthread' },
    { fn: 'ret_from_fork' },
  ];
  for (const fastPath of [true, false]) {
    it(`running task interrupted in the kernel, fastPath ${fastPath}`, () => {
      const { machine, built } = one({ frames, running: true });
      const from = built.from as WalkOptions['from'];
      const rel = walk(machine, 'mainline', built.task, {
        reliable: true,
        fastPath,
        ...(from ? { from } : {}),
      });
      expect(rel.ret).toBe(-22);
      expect(rel.reason?.code).toBe('EXCEPTION_BOUNDARY');
      expect(rel.trace.map((e) => e.symbol.split('+')[0])).toEqual(['el1h_64_irq']);
      const dbg = walk(machine, 'mainline', built.task, {
        reliable: false,
        fastPath,
        ...(from ? { from } : {}),
      });
      expect(dbg.reason).toBeNull();
      expect(dbg.trace.map((e) => e.symbol.split('+')[0])).toEqual(frames.map((f) => f.fn));
      expect(dbg.trace[1]!.source).toBe('P');
    });
  }
});
