import type { BuiltMachine, KernelDesc, TaskDesc } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import {
  type CheckName,
  POLICIES,
  type PolicyName,
  REASON_CODES,
  type ReasonCode,
  Walker,
} from '../src/index.js';
import { build } from './build.js';
import { irqPreempted, KWORKER, USER_NANOSLEEP } from './chains.js';

/**
 * Every reason code, under every policy, from chains the builder makes.
 * `expect` per policy: the reliable walk's reason (mainline, symcode-v8),
 * or for linux-6.1 (debug only) what stopped or marked its walk;
 * `ok` means a reliable verdict, `none` a debug walk that ran to the end.
 */
interface Case {
  readonly name: string;
  readonly kernel?: Partial<KernelDesc>;
  readonly task: TaskDesc;
  readonly checks?: CheckName[];
  readonly size?: number;
  /** Bytes changed after the build, as a bug would change them. */
  readonly poke?: (b: BuiltMachine) => void;
  readonly expect: Readonly<Partial<Record<PolicyName, ReasonCode | 'ok' | 'none'>>>;
}

const running = (frames: TaskDesc['frames']): TaskDesc => ({ frames, running: true });

const CASES: Case[] = [
  {
    name: 'misaligned fp',
    task: { frames: KWORKER, corrupt: [{ kind: 'misaligned-fp', frame: 1 }] },
    expect: {
      mainline: 'FP_MISALIGNED',
      'symcode-v8': 'FP_MISALIGNED',
      'linux-6.1': 'FP_MISALIGNED',
    },
  },
  {
    name: 'record straddling the top of the stack',
    task: { frames: KWORKER, corrupt: [{ kind: 'off-stack', frame: 2 }] },
    expect: {
      mainline: 'RECORD_OFF_STACK',
      'symcode-v8': 'RECORD_OFF_STACK',
      'linux-6.1': 'RECORD_OFF_STACK',
    },
  },
  {
    name: 'jump to a stack no walk may use',
    task: { frames: USER_NANOSLEEP, corrupt: [{ kind: 'other-stack', frame: 4 }] },
    expect: {
      mainline: 'RECORD_OFF_STACK',
      'symcode-v8': 'RECORD_OFF_STACK',
      'linux-6.1': 'RECORD_OFF_STACK',
    },
  },
  {
    name: 'truncated chain (fp = 0, lr kept)',
    task: { frames: USER_NANOSLEEP, corrupt: [{ kind: 'truncated', frame: 5 }] },
    expect: {
      mainline: 'RECORD_OFF_STACK',
      'symcode-v8': 'RECORD_OFF_STACK',
      'linux-6.1': 'RECORD_OFF_STACK',
    },
  },
  {
    name: 'loop',
    task: { frames: KWORKER, corrupt: [{ kind: 'loop', frame: 2 }] },
    expect: {
      mainline: 'STACK_REENTERED',
      'symcode-v8': 'STACK_REENTERED',
      'linux-6.1': 'STACK_REENTERED',
    },
  },
  {
    name: 'a known IRQ stack whose bytes are not available',
    kernel: { mapCpuStacks: false },
    task: running([
      { fn: 'handle_irq_thing', stack: 'irq' },
      { fn: 'call_on_irq_stack' },
      { fn: 'el1_interrupt' },
      { fn: 'kthread' },
      { fn: 'ret_from_fork' },
    ]),
    expect: {
      mainline: 'RECORD_UNREADABLE',
      'symcode-v8': 'RECORD_UNREADABLE',
      'linux-6.1': 'RECORD_UNREADABLE',
    },
  },
  {
    name: 'FINAL meta record in the middle of the stack',
    task: { frames: KWORKER, corrupt: [{ kind: 'final-misplaced', frame: 2 }] },
    expect: {
      mainline: 'FINAL_MISPLACED',
      'symcode-v8': 'NOT_KERNEL_TEXT',
      'linux-6.1': 'RECORD_OFF_STACK',
    },
  },
  {
    name: 'meta record of unknown type',
    task: { frames: KWORKER, corrupt: [{ kind: 'meta-unknown', frame: 1 }] },
    expect: {
      mainline: 'META_TYPE_UNKNOWN',
      'symcode-v8': 'NOT_KERNEL_TEXT',
      'linux-6.1': 'RECORD_OFF_STACK',
    },
  },
  {
    name: 'exception boundary (mainline layout)',
    task: { frames: irqPreempted('saved') },
    expect: {
      mainline: 'EXCEPTION_BOUNDARY',
      'symcode-v8': 'IN_SYM_CODE',
      'linux-6.1': 'RECORD_OFF_STACK',
      // The interrupted pc is in the body (state F): the record holds the caller.
      'sframe-regs': 'ok',
      'fp-validate': 'ok',
    },
  },
  {
    name: 'exception boundary with LR live (mainline layout)',
    task: { frames: irqPreempted('unsaved') },
    expect: {
      mainline: 'EXCEPTION_BOUNDARY',
      // At crc32_body+0x4 (state L) the caller is in regs[30]: reported, then on from regs[29].
      'sframe-regs': 'ok',
      // x29 is still the caller's record: a frame-pointer step would skip the caller.
      'fp-validate': 'FP_MISMATCH',
    },
  },
  {
    name: 'exception boundary with a misaligned regs->sp',
    task: { frames: irqPreempted('unsaved') },
    poke: (b) => {
      // pt_regs of the boundary: where mainline's walk stopped (state->regs).
      const w = new Walker(b.machine, POLICIES.mainline);
      w.walk(b.tasks[0]!.task, { reliable: true });
      const regs = w.st.regs;
      b.machine.memory.write64(regs + b.machine.config.ptRegs.pcOffset - 8, 0xffff8000, 0x10000004);
    },
    expect: { mainline: 'EXCEPTION_BOUNDARY', 'sframe-regs': 'FRAME_STATE_STEP_FAILED' },
  },
  {
    name: 'exception boundary (6.1 layout: a synthetic frame record)',
    kernel: { layout: 'linux-6.1' },
    task: { frames: irqPreempted('unsaved') },
    expect: { mainline: 'ok', 'symcode-v8': 'IN_SYM_CODE', 'linux-6.1': 'none' },
  },
  {
    name: 'return address into data',
    task: { frames: USER_NANOSLEEP, corrupt: [{ kind: 'lr-not-text', frame: 3 }] },
    expect: { mainline: 'ok', 'symcode-v8': 'NOT_KERNEL_TEXT', 'linux-6.1': 'none' },
  },
  {
    name: 'return address inside SYM_CODE (an ftrace trampoline mid-chain)',
    task: {
      frames: [
        { fn: '__switch_to' },
        { fn: '__schedule' },
        { fn: 'schedule' },
        { fn: 'ftrace_caller' },
        { fn: 'kthread' },
        { fn: 'ret_from_fork' },
      ],
    },
    expect: {
      mainline: 'ok',
      'symcode-v8': 'IN_SYM_CODE',
      'linux-6.1': 'none',
      'sframe-regs': 'ok',
      // ORC has no data for assembly outside the calling convention.
      'fp-validate': 'NO_FRAME_STATE',
    },
  },
  {
    name: 'function-graph entry missing',
    task: {
      frames: KWORKER.map((f, i) => (i === 3 ? { ...f, fgraph: true } : f)),
      corrupt: [{ kind: 'missing-fgraph', frame: 3 }],
    },
    expect: {
      mainline: 'FGRAPH_UNRECOVERABLE',
      'symcode-v8': 'FGRAPH_UNRECOVERABLE',
      'linux-6.1': 'FGRAPH_UNRECOVERABLE',
    },
  },
  {
    name: 'kretprobe instance missing',
    task: {
      frames: KWORKER.map((f, i) => (i === 2 ? { ...f, kretprobe: true } : f)),
      corrupt: [{ kind: 'missing-kretprobe', frame: 2 }],
    },
    expect: {
      mainline: 'KRETPROBE_UNRECOVERABLE',
      'symcode-v8': 'KRETPROBE_UNRECOVERABLE',
      'linux-6.1': 'KRETPROBE_UNRECOVERABLE',
    },
  },
  {
    name: 'trace buffer too small',
    task: { frames: USER_NANOSLEEP },
    size: 5,
    expect: { mainline: 'BUFFER_FULL', 'symcode-v8': 'BUFFER_FULL', 'linux-6.1': 'BUFFER_FULL' },
  },
  {
    name: 'return address not after a call (call-site check)',
    task: {
      frames: USER_NANOSLEEP.map((f, i) => (i === 4 ? { ...f, at: 0x100 } : f)),
      corrupt: [{ kind: 'lr-not-after-call', frame: 4 }],
    },
    checks: ['call-site'],
    expect: {
      mainline: 'NOT_AFTER_CALL',
      'symcode-v8': 'NOT_AFTER_CALL',
      'linux-6.1': 'NOT_AFTER_CALL',
    },
  },
  {
    name: 'walk not starting in the context switch (start-in-schedule check)',
    task: { frames: USER_NANOSLEEP.slice(3) },
    checks: ['start-in-schedule'],
    expect: {
      mainline: 'NOT_IN_SCHEDULE',
      'symcode-v8': 'NOT_IN_SCHEDULE',
      'linux-6.1': 'NOT_IN_SCHEDULE',
    },
  },
];

describe('every reason code under every policy', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const b = build({ ...c.kernel, tasks: [c.task] });
      c.poke?.(b);
      const t = b.tasks[0]!;
      for (const name of Object.keys(c.expect) as PolicyName[]) {
        const policy = POLICIES[name];
        const want = c.expect[name];
        const mismatch = policy.checkLayout(b.machine);
        if (mismatch !== null) {
          // mainline refuses a kernel without meta records rather than guess.
          expect(c.kernel?.layout).toBe('linux-6.1');
          continue;
        }
        const w = new Walker(b.machine, policy);
        const opts = {
          reliable: policy.hasReliableWalk,
          from: t.from,
          ...(c.checks ? { checks: c.checks } : {}),
          ...(c.size ? { size: c.size } : {}),
        };
        const ret = w.walk(t.task, opts);
        const r = w.result();
        if (want === 'ok') {
          expect(ret, `${name}: ${r.reason?.message}`).toBe(0);
          expect(r.reliable).toBe(true);
        } else if (want === 'none') {
          expect(r.reason, name).toBeNull();
        } else {
          expect(r.reason?.code, `${name}: ${r.reason?.message}`).toBe(want);
          if (policy.hasReliableWalk) {
            expect(ret).toBe(-22);
            expect(r.reliable).toBe(false);
            expect(r.error).toBe('EINVAL');
          }
        }
      }
    });
  }

  it('covers every code', () => {
    const seen = new Set(CASES.flatMap((c) => Object.values(c.expect)));
    for (const code of REASON_CODES) expect(seen, code).toContain(code);
  });
});
