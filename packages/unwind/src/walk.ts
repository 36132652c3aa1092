import {
  type Addr,
  addrHi,
  addrLo,
  foldAddress,
  formatAddr,
  hex64,
  KERNEL_HI_BASE,
  TWO_32,
} from '@klpsim/arm64';
import { lazyFrameTableOf } from '@klpsim/frames';
import {
  type Machine,
  STACK_TYPE_NAMES,
  StackType,
  type StackTypeName,
  type Task,
  type Word64,
} from '@klpsim/kernel';
import { type CheckName, checkBits } from './checks.js';
import { doKunwind } from './driver.js';
import type { StackArena } from './flat/arena.js';
import { flatMode, HANDED_BACK, walkTaskFlat } from './flat/walk.js';
import type { PolicyName } from './policies/index.js';
import type { Policy, PolicyMismatch } from './policies/policy.js';
import { REASON_TEXT, type WalkReason } from './reason.js';
import { ruleBits } from './rules.js';
import { initStacks, type StackContext } from './stackinfo.js';
import { EINVAL, FLAG_FGRAPH, FLAG_KRETPROBE, Source, UnwindState } from './state.js';
import { entryFlags, entrySource, entryStack, TraceBuffer } from './trace.js';

/** Where a walk starts (`kunwind_stack_walk`'s three cases). */
export type WalkFrom =
  /** A blocked task, from `thread.cpu_context` (`kunwind_init_from_task`). */
  | { readonly kind: 'task' }
  /** `current`, from the walker's caller (`kunwind_init_from_caller`). */
  | ({ readonly kind: 'caller'; readonly fp: Addr; readonly pc: Addr } & Partial<StackContext>)
  /** `current`, from a `struct pt_regs` at `regs` (`kunwind_init_from_regs`). */
  | ({ readonly kind: 'regs'; readonly regs: Addr } & Partial<StackContext>);

export interface WalkOptions {
  /** `arch_stack_walk_reliable` (true) or the debug `arch_stack_walk` (false). */
  readonly reliable: boolean;
  /** Trace buffer size: 100 for livepatch; the debug walk's default is 512. */
  readonly size?: number;
  readonly checks?: readonly CheckName[];
  readonly from?: WalkFrom;
  /** Use the plain-frame fast path (default true); false runs the reference step functions alone. */
  readonly fastPath?: boolean;
}

/** One trace entry as people and JSON see it. */
export interface TraceEntry {
  readonly address: string;
  /** `%pS`. */
  readonly symbol: string;
  /** The marker mainline prints after the symbol: T, C or P for the start, F / K for a recovered address; "" for a plain frame. */
  readonly source: string;
  /** The stack the entry's record was read from; null for the starting pc. */
  readonly stack: StackTypeName | null;
}

/** A walk's whole outcome, a plain object that serializes as it is. */
export interface WalkResult {
  readonly pid: number;
  readonly comm: string;
  readonly policy: PolicyName;
  readonly checks: readonly CheckName[];
  readonly walk: 'reliable' | 'debug';
  /** The verdict; null for a debug walk, which has none. */
  readonly reliable: boolean | null;
  /** `EINVAL` when the reliable walk failed, else null. */
  readonly error: 'EINVAL' | null;
  /** The first rule that failed, or for a debug walk what stopped it before the end; null otherwise. */
  readonly reason: WalkReason | null;
  readonly trace: readonly TraceEntry[];
}

const DEBUG_SIZE = 512;
const FROM_TASK: WalkFrom = { kind: 'task' };
const NO_CHECKS: readonly CheckName[] = [];
const SOURCE_MARK = ['U', '', 'C', 'T', 'P', 'L'];

/**
 * Walks tasks of one machine under one policy, reusing one unwind state and
 * one trace buffer so that a walk allocates nothing per frame.
 */
export class Walker {
  readonly st = new UnwindState();
  readonly trace = new TraceBuffer();
  private readonly scratch: Word64 = { hi: 0, lo: 0 };
  private lastReliable = true;
  private lastRet = 0;
  private lastChecks: readonly CheckName[] = [];
  /** The flat walk's mode for the reliable walk and for the debug walk (flatModeOf). */
  private readonly flatReliable: number;
  private readonly flatDebug: number;

  /**
   * Whether this policy has plain frames (fastpath.ts, flat/) at all; a
   * policy that checks the frame state at every frame has none, and every
   * walk runs its own step functions.
   */
  readonly plainFrames: boolean;

  /** The flat walk's mode (flat/walk.ts) for this walker's policy. */
  flatModeOf(reliable: boolean): number {
    return reliable ? this.flatReliable : this.flatDebug;
  }

  constructor(
    readonly machine: Machine,
    readonly policy: Policy,
  ) {
    // What depends on the kernel alone is set once, not per walk.
    const st = this.st;
    st.machine = machine;
    st.rules = ruleBits(policy.rules);
    // Without CONFIG_ARM64_PTR_AUTH_KERNEL the strip is the identity
    // (asm/compiler.h: `#define ptrauth_strip_kernel_insn_pac(ptr) (ptr)`).
    const pac = machine.config.kernelPacEnabled;
    st.kernelMask = pac ? machine.config.pacKernelMask : 0;
    st.userMask = pac ? machine.config.pacUserMask : 0;
    st.returnToHandler = machine.special.returnToHandler ?? Number.NaN;
    st.kretprobeTrampoline = machine.special.kretprobeTrampoline ?? Number.NaN;
    st.coreTextStart = machine.text.core.start;
    st.coreTextEnd = machine.text.core.end;
    const meta = machine.config.ptRegs.meta;
    st.metaTypeWord = meta === null ? -1 : meta.typeOffset >>> 2;
    st.metaTypeFinal = meta === null ? -1 : meta.typeFinal;
    st.metaSize = meta === null ? 0 : meta.size;
    this.flatReliable = flatMode(policy.rules, true);
    this.flatDebug = flatMode(policy.rules, false);
    this.plainFrames = policy.rules.frameState !== 'every-frame';
    st.frames = policy.rules.frameState === 'none' ? null : lazyFrameTableOf(machine);
  }

  /** `unwindStart`: initialises the state for `task` as `kunwind_stack_walk` does; false if `from` cannot be read. */
  unwindStart(task: Task, options: WalkOptions): boolean {
    const st = this.st;
    const from = options.from ?? FROM_TASK;
    const m = this.machine;
    st.task = task;
    st.finalFrame = task.finalFrame;
    st.hasRetStack = task.retStack !== null;
    st.flags = 0;
    st.graphIdx = 0;
    st.krCur = -1;
    st.prevFp = 0;
    st.prevType = StackType.UNKNOWN;
    st.stacksDone = 0;
    st.failed = false;
    st.needReliable = options.reliable;
    st.reason = null;
    st.reasonAddr = Number.NaN;
    st.reasonFrame = 0;
    st.consumed = 0;
    st.checks =
      options.checks === undefined || options.checks.length === 0 ? 0 : checkBits(options.checks);
    st.fromTask = from.kind === 'task';
    st.fastPath = (options.fastPath ?? true) && this.plainFrames;
    st.regs = from.kind === 'regs' ? from.regs : Number.NaN;
    st.frameSp = from.kind === 'task' ? task.cpuContext.sp : Number.NaN;
    if (from.kind === 'task') initStacks(st, undefined, false, false, false);
    else
      initStacks(
        st,
        m.cpus[task.cpu],
        from.nonPreemptible ?? false,
        from.inNmi ?? false,
        (from.inEfi ?? false) && this.policy.rules.efiStack,
      );
    if (from.kind === 'task') {
      this.setFp(task.cpuContext.fp);
      st.setPcAddr(task.cpuContext.pc);
      st.source = Source.TASK;
    } else if (from.kind === 'caller') {
      this.setFp(from.fp);
      st.setPcAddr(from.pc);
      st.source = Source.CALLER;
    } else {
      const layout = this.machine.config.ptRegs;
      const mem = this.machine.memory;
      const w = this.scratch;
      if (!mem.read64(from.regs + layout.regs29Offset, w)) return false;
      st.fpHi = w.hi;
      st.fpLo = w.lo;
      st.fp = foldAddress(w.hi, w.lo);
      if (!mem.read64(from.regs + layout.pcOffset, w)) return false;
      st.setPcExact(w.hi, w.lo);
      st.source = Source.REGS_PC;
    }
    return true;
  }

  private setFp(fp: Addr): void {
    this.st.fp = fp;
    this.st.fpHi = addrHi(fp);
    this.st.fpLo = addrLo(fp);
  }

  /**
   * Walks `task` and returns the kernel's return value: 0 or -EINVAL for a
   * reliable walk, 0 for a debug walk. The entries stay in `this.trace`
   * until the next walk; `result()` turns them into a WalkResult.
   */
  walk(task: Task, options: WalkOptions): number {
    this.trace.reset(options.size ?? (options.reliable ? 100 : DEBUG_SIZE));
    this.lastReliable = options.reliable;
    this.lastChecks = options.checks ?? NO_CHECKS;
    if (!this.unwindStart(task, options)) {
      this.st.setReason(
        'RECORD_UNREADABLE',
        options.from?.kind === 'regs' ? options.from.regs : Number.NaN,
      );
      this.lastRet = EINVAL;
      return EINVAL;
    }
    const ret = doKunwind(this.policy, this.st, this.trace);
    this.lastRet = options.reliable ? ret : 0;
    return this.lastRet;
  }

  /**
   * Walks task `i` of `arena`, a snapshot of this walker's machine: the flat
   * walk (flat/walk.ts) when the whole walk is plain, else `walk`. Returns
   * what `walk(machine.tasks[i], options)` returns, and leaves the same
   * trace and result. Walks that do not start from the task's saved context,
   * run optional checks or turn the fast path off always take `walk`.
   */
  walkAt(arena: StackArena, i: number, options: WalkOptions): number {
    const task = this.machine.tasks[i]!;
    if (
      arena.machine !== this.machine ||
      (options.from !== undefined && options.from.kind !== 'task') ||
      options.fastPath === false ||
      !this.plainFrames ||
      (options.checks !== undefined && options.checks.length > 0)
    )
      return this.walk(task, options);
    const trace = this.trace;
    trace.reset(options.size ?? (options.reliable ? 100 : DEBUG_SIZE));
    const mode = this.flatModeOf(options.reliable);
    const n = walkTaskFlat(arena, mode, i, trace.size, trace);
    if (n === HANDED_BACK) return this.walk(task, options);
    // Every entry of a flat walk is a kernel address: fold it as setPcExact would.
    const pcs = trace.pcs;
    for (let j = 0; j < n; j++) pcs[j] = (trace.his[j]! - KERNEL_HI_BASE) * TWO_32 + trace.los[j]!;
    trace.len = n;
    const st = this.st;
    st.task = task;
    st.reason = null;
    st.consumed = n;
    this.lastReliable = options.reliable;
    this.lastChecks = options.checks ?? NO_CHECKS;
    this.lastRet = 0;
    return 0;
  }

  /** The last walk as a WalkResult (symbolized; this is the edge, where allocation is fine). */
  result(): WalkResult {
    const { st, trace, machine } = this;
    const entries: TraceEntry[] = [];
    for (let i = 0; i < trace.len; i++) {
      const pc = trace.pcs[i]!;
      const flags = entryFlags(trace, i);
      const src = SOURCE_MARK[entrySource(trace, i)] ?? 'U';
      // The kernel stores and prints the raw 64-bit value, canonical or not.
      const address = hex64(trace.his[i]!, trace.los[i]!);
      entries.push({
        address,
        symbol: Number.isNaN(pc) ? address : machine.kallsyms.formatS(pc),
        source: `${src}${flags & FLAG_FGRAPH ? 'F' : ''}${flags & FLAG_KRETPROBE ? 'K' : ''}`,
        stack:
          entryStack(trace, i) === StackType.UNKNOWN
            ? null
            : STACK_TYPE_NAMES[entryStack(trace, i)]!,
      });
    }
    const failed = this.lastRet < 0;
    return {
      pid: st.task.pid,
      comm: st.task.comm,
      policy: this.policy.name,
      checks: this.lastChecks,
      walk: this.lastReliable ? 'reliable' : 'debug',
      reliable: this.lastReliable ? !failed : null,
      error: failed ? 'EINVAL' : null,
      reason: st.reason === null ? null : this.reasonOf(),
      trace: entries,
    };
  }

  private reasonOf(): WalkReason {
    const st = this.st;
    const code = st.reason!;
    const addr = st.reasonAddr;
    const where = Number.isNaN(addr) ? '' : ` (${formatAddr(addr)}${this.whereIs(addr)})`;
    return {
      code,
      frame: st.reasonFrame,
      address: Number.isNaN(addr) ? null : formatAddr(addr),
      message: `${REASON_TEXT[code]}${where}`,
    };
  }

  /** Cold path: a few words on where an address lies, for reason messages. */
  private whereIs(a: Addr): string {
    const m = this.machine;
    const task = this.st.task;
    if (a >= task.stack.low && a < task.stack.high)
      return `: task stack +0x${(a - task.stack.low).toString(16)}`;
    const sym = m.kallsyms.lookup(a);
    const sc = m.symCode.find(a);
    const parts = [];
    if (sym !== null) parts.push(m.kallsyms.formatS(a));
    parts.push(m.text.describe(a));
    if (sc !== undefined) parts.push(`sym_code ${sc.name} from ${sc.source}`);
    return `: ${parts.join(', ')}`;
  }
}

/** Fails when the policy does not fit the kernel (see `Policy.checkLayout`). */
export function walkerFor(
  machine: Machine,
  policy: Policy,
): { ok: true; value: Walker } | { ok: false; error: PolicyMismatch } {
  const mismatch = policy.checkLayout(machine);
  return mismatch === null
    ? { ok: true, value: new Walker(machine, policy) }
    : { ok: false, error: mismatch };
}

/** `arch_stack_walk`: the debug walk, crossing exception boundaries; its result has `reliable: null`. */
export function archStackWalk(
  walker: Walker,
  task: Task,
  options: Omit<WalkOptions, 'reliable'> = {},
): WalkResult {
  walker.walk(task, { ...options, reliable: false });
  return walker.result();
}

/**
 * `arch_stack_walk_reliable`: 0 or -EINVAL with the entries as far as it got.
 * Fails (as a value) for a policy whose kernel has no reliable walk.
 */
export function archStackWalkReliable(
  walker: Walker,
  task: Task,
  options: Omit<WalkOptions, 'reliable'> = {},
):
  | { ok: true; value: WalkResult }
  | { ok: false; error: { code: 'KLPSIM_NO_RELIABLE_WALK'; message: string } } {
  if (!walker.policy.hasReliableWalk) {
    return {
      ok: false,
      error: {
        code: 'KLPSIM_NO_RELIABLE_WALK',
        message: `${walker.policy.name} has no arch_stack_walk_reliable; use the debug walk`,
      },
    };
  }
  walker.walk(task, { ...options, reliable: true });
  return { ok: true, value: walker.result() };
}

/**
 * `stack_trace_save_tsk_reliable(task, store, size)`: the number of entries
 * stored, or -EINVAL. Allocation-free: the entries are in `walker.trace`.
 */
export function stackTraceSaveTskReliable(
  walker: Walker,
  task: Task,
  size = 100,
  checks?: readonly CheckName[],
): number {
  const ret = walker.walk(
    task,
    checks === undefined ? { reliable: true, size } : { reliable: true, size, checks },
  );
  return ret < 0 ? ret : walker.trace.len;
}

/*
 * The 2021 series' step API, over a Walker's state, for tools that drive a
 * walk themselves:
 *
 *     unwindStart(walker, task, { reliable: true });
 *     while (unwindConsume(walker)) unwindNext(walker);
 *     const ok = !unwindFailed(walker);
 *
 * The policy supplies each step, so the same loop runs any policy.
 */

/** `unwind_start`: empties the trace and initialises the walk of `task`; false if `from` cannot be read. */
export function unwindStart(walker: Walker, task: Task, options: WalkOptions): boolean {
  walker.trace.reset(options.size ?? (options.reliable ? 100 : DEBUG_SIZE));
  return walker.unwindStart(task, { ...options, fastPath: false });
}

/** `unwind_consume`: hands the current pc to the trace; false when the walk must stop. */
export function unwindConsume(walker: Walker): boolean {
  return walker.policy.consume(walker.st, walker.trace);
}

/** `unwind_next`: one step; 0, -ENOENT at the end of the stack, or -EINVAL. */
export function unwindNext(walker: Walker): number {
  return walker.policy.next(walker.st);
}

/** `unwind_failed`: whether a rule failed (the series' `failed`, or any reason recorded). */
export function unwindFailed(walker: Walker): boolean {
  return walker.st.failed || walker.st.reason !== null;
}

/** `unwind_is_reliable`: may the walk continue reliably from the current pc? */
export function unwindIsReliable(walker: Walker): boolean {
  return walker.policy.isReliable(walker.st);
}
