import type { Addr } from '@klpsim/arm64';
import type { Task } from '@klpsim/kernel';
import type { LpTask } from '../model.js';
import type { SwitchVia } from '../transition.js';
import { grown } from './columns.js';
import type { ChainTemplate } from './environment.js';
import type { TaskSwitch } from './log.js';

/**
 * What the simulation knows of each task beyond what the kernel code sees
 * (its `LpTask`, in the transition core's lists), as columns indexed by the
 * task's id: a simulation of a million
 * tasks keeps no object per task of its own, so the garbage collector has
 * nothing to trace and an event touches a few dense arrays. Columns grow as
 * tasks fork.
 */

export const Phase = { SLEEP: 0, RUN: 1, USER: 2 } as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** Bits of `flags`. */
export const TaskFlag = {
  /** A signal ended the current system call: it returns at the end of this run. */
  INTERRUPTED: 1,
  /** TIF_NOTIFY_SIGNAL: set by the fake signal, cleared on the way back to user space. */
  NOTIFY_SIGNAL: 2,
  /** `klp_send_signals` reached it at least once. */
  SIGNALLED: 4,
} as const;

/** Bits of `lpFlags`: the kernel-visible booleans of a task's `LpTask`. */
export const LpFlag = {
  /** TIF_PATCH_PENDING. */
  PENDING: 1,
  /** `task_curr()`. */
  RUNNING: 2,
  IN_USER: 4,
  /** PF_KTHREAD. */
  KTHREAD: 8,
  /** An idle task. */
  IDLE: 16,
} as const;

/** Why a check refused a task, as the log counts it. */
export const BlockKind = { UNRELIABLE: 0, SLEEPING: 1 } as const;
export type BlockKind = (typeof BlockKind)[keyof typeof BlockKind];

const VIAS: readonly SwitchVia[] = [
  'stack-check',
  'kernel-exit',
  'idle-loop',
  'fork',
  'sched-hook',
  'offline-cpu',
  'force',
];
const VIA_INDEX = new Map(VIAS.map((v, i) => [v, i]));
const NO_SWITCHES: readonly TaskSwitch[] = Object.freeze([]);

export class TaskTable {
  private n = 0;
  /** The task group (the behaviour's index in the scenario), -1 for idle tasks. */
  group = new Int32Array(0);
  /** Bumped at every change of plan: an event carries the generation it was scheduled in. */
  generation = new Int32Array(0);
  phase = new Uint8Array(0);
  flags = new Uint8Array(0);
  /** `task->__state` of its current (or last) sleep. */
  sleepState = new Int32Array(0);
  /** Sleeps left in the current system call (Infinity: until a signal). */
  sleepsLeft = new Float64Array(0);
  /** When the current sleep ends by itself (ms), or Infinity. */
  wakeAt = new Float64Array(0);
  /** Attempts that found it running. */
  blockedRunning = new Int32Array(0);
  /** Its CPU (`LpTask.cpu`, which never changes), here so that dropping an event reads no object. */
  cpu = new Int32Array(0);
  /** The transition epoch (see Simulation.epoch) it last switched in; 0 for none. */
  switchEpoch = new Int32Array(0);
  /** `LpTask.pid`. */
  pid = new Int32Array(0);
  /** The task it was forked from, or -1 (its comm is the parent's with "-child"). */
  parent = new Int32Array(0);
  /** `LpTask.patchState`. */
  patchState = new Int8Array(0);
  /** `LpTask.state` (`task->__state`; 0 while it runs). */
  lpState = new Int32Array(0);
  /** LpFlag bits. */
  lpFlags = new Uint8Array(0);
  /** `LpTask.stack` and `LpTask.chain`: what the walker reads and the true chain. */
  stack: (Task | null)[] = [];
  chain: (readonly Addr[] | null)[] = [];
  /** A task's comm, made when asked (the simulation knows how its tasks are named). */
  commOf: (id: number) => string = () => '';
  /** The chain it sleeps (or runs) in now. */
  current: (ChainTemplate | null)[] = [];
  /** The true chain of the last stack a check refused (a reference: nothing is copied in the pass). */
  lastBlockedChain: (readonly Addr[] | null)[] = [];

  // Its first switch in columns (most tasks switch once; the time in ms); any later ones in `moreSwitches`.
  private firstSwitchMs = new Float64Array(0);
  private firstSwitchVia = new Int8Array(0);
  private firstSwitchTransition = new Int32Array(0);
  private readonly moreSwitches = new Map<number, TaskSwitch[]>();

  // Counts of refusals by (kind, interned reason or function): one linked list per task in
  // typed arrays, in first-seen order; nothing is allocated once a (task, key) pair exists.
  private countHead = new Int32Array(0);
  private countTail = new Int32Array(0);
  private countKey = new Int32Array(256);
  private countKind = new Uint8Array(256);
  private countN = new Int32Array(256);
  private countNext = new Int32Array(256);
  private counts = 0;
  private readonly keyIndex = new Map<string, number>();
  private readonly keys: string[] = [];

  get size(): number {
    return this.n;
  }

  /** Makes room for `n` tasks at once (the scenario's count), so the columns grow once. */
  reserve(n: number): void {
    if (n <= this.group.length) return;
    this.grow(n);
    // The reference columns too: filled once, where a million pushes would copy them as they grow.
    this.stack = reserved(this.stack, n);
    this.chain = reserved(this.chain, n);
    this.current = reserved(this.current, n);
    this.lastBlockedChain = reserved(this.lastBlockedChain, n);
  }

  /** Adds a task; returns its id. */
  add(group: number, sleepState: number, cpu: number): number {
    const id = this.n++;
    if (id === this.group.length) this.grow(Math.max(1024, id * 2));
    this.group[id] = group;
    this.parent[id] = -1;
    this.stack[id] = null;
    this.chain[id] = null;
    this.sleepState[id] = sleepState;
    this.cpu[id] = cpu;
    this.wakeAt[id] = Number.POSITIVE_INFINITY;
    this.firstSwitchVia[id] = -1;
    this.countHead[id] = -1;
    this.countTail[id] = -1;
    this.current[id] = null;
    this.lastBlockedChain[id] = null;
    return id;
  }

  /** Sets or clears LpFlag bits. */
  setLp(id: number, flag: number, on: boolean): void {
    this.lpFlags[id] = on ? this.lpFlags[id]! | flag : this.lpFlags[id]! & ~flag;
  }

  has(id: number, flag: number): boolean {
    return (this.flags[id]! & flag) !== 0;
  }

  set(id: number, flag: number, on: boolean): void {
    this.flags[id] = on ? this.flags[id]! | flag : this.flags[id]! & ~flag;
  }

  /** A switch at `ms` (simulated milliseconds): the first goes in columns, so a pass allocates nothing for it. */
  recordSwitch(id: number, ms: number, via: SwitchVia, transition: number): void {
    if (this.firstSwitchVia[id] === -1) {
      this.firstSwitchMs[id] = ms;
      this.firstSwitchVia[id] = VIA_INDEX.get(via)!;
      this.firstSwitchTransition[id] = transition;
      return;
    }
    const sw: TaskSwitch = { t: ms / 1000, via, transition };
    const more = this.moreSwitches.get(id);
    if (more === undefined) this.moreSwitches.set(id, [sw]);
    else more.push(sw);
  }

  /**
   * Every switch of a task, oldest first, for the report. A million tasks
   * switch at a few dozen moments: a task that switched once gets the list
   * shared by every task that switched once at the same moment in the same
   * way (the log's lists are read-only), so the report costs no objects per
   * task for it.
   */
  switches(id: number): readonly TaskSwitch[] {
    if (this.firstSwitchVia[id] === -1) return NO_SWITCHES;
    const ms = this.firstSwitchMs[id]!;
    const t = ms / 1000;
    const via = this.firstSwitchVia[id]!;
    const transition = this.firstSwitchTransition[id]!;
    const more = this.moreSwitches.get(id);
    if (more !== undefined) return [{ t, via: VIAS[via]!, transition }, ...more];
    // Exact in a double: ms < 2^37 (a day), 3 bits of via, 16 of transition.
    const key = (ms * 8 + via) * 65536 + transition;
    let shared = this.sharedSwitches.get(key);
    if (shared === undefined) {
      shared = Object.freeze([Object.freeze({ t, via: VIAS[via]!, transition })]);
      this.sharedSwitches.set(key, shared);
    }
    return shared;
  }

  private readonly sharedSwitches = new Map<number, readonly TaskSwitch[]>();

  /** One more refusal of this kind for this reason (or function). */
  countBlock(id: number, kind: BlockKind, key: string): void {
    let k = this.keyIndex.get(key);
    if (k === undefined) {
      k = this.keys.length;
      this.keys.push(key);
      this.keyIndex.set(key, k);
    }
    for (let e = this.countHead[id]!; e !== -1; e = this.countNext[e]!) {
      if (this.countKey[e] === k && this.countKind[e] === kind) {
        this.countN[e]!++;
        return;
      }
    }
    if (this.counts === this.countKey.length) this.growCounts();
    const e = this.counts++;
    this.countKey[e] = k;
    this.countKind[e] = kind;
    this.countN[e] = 1;
    this.countNext[e] = -1;
    const tail = this.countTail[id]!;
    if (tail === -1) this.countHead[id] = e;
    else this.countNext[tail] = e;
    this.countTail[id] = e;
  }

  /** Whether any refusal (of any kind but running) was counted for the task. */
  hasAnyBlocks(id: number): boolean {
    return this.countHead[id] !== -1;
  }

  /** Whether any refusal of this kind was counted for the task. */
  hasBlocks(id: number, kind: BlockKind): boolean {
    for (let e = this.countHead[id]!; e !== -1; e = this.countNext[e]!)
      if (this.countKind[e] === kind) return true;
    return false;
  }

  /** The task's counts of one kind, in first-seen order: [reason or function, count]. */
  blocks(id: number, kind: BlockKind): [string, number][] {
    const out: [string, number][] = [];
    for (let e = this.countHead[id]!; e !== -1; e = this.countNext[e]!)
      if (this.countKind[e] === kind) out.push([this.keys[this.countKey[e]!]!, this.countN[e]!]);
    return out;
  }

  private grow(size: number): void {
    this.group = grown(this.group, size);
    this.generation = grown(this.generation, size);
    this.phase = grown(this.phase, size);
    this.flags = grown(this.flags, size);
    this.sleepState = grown(this.sleepState, size);
    this.sleepsLeft = grown(this.sleepsLeft, size);
    this.wakeAt = grown(this.wakeAt, size);
    this.blockedRunning = grown(this.blockedRunning, size);
    this.cpu = grown(this.cpu, size);
    this.switchEpoch = grown(this.switchEpoch, size);
    this.pid = grown(this.pid, size);
    this.parent = grown(this.parent, size);
    this.patchState = grown(this.patchState, size);
    this.lpState = grown(this.lpState, size);
    this.lpFlags = grown(this.lpFlags, size);
    this.firstSwitchMs = grown(this.firstSwitchMs, size);
    this.firstSwitchVia = grown(this.firstSwitchVia, size);
    this.firstSwitchTransition = grown(this.firstSwitchTransition, size);
    this.countHead = grown(this.countHead, size);
    this.countTail = grown(this.countTail, size);
  }

  private growCounts(): void {
    const size = this.countKey.length * 2;
    this.countKey = grown(this.countKey, size);
    this.countKind = grown(this.countKind, size);
    this.countN = grown(this.countN, size);
    this.countNext = grown(this.countNext, size);
  }
}

/** `a` in an array of `n` entries, the rest null (an array of references that need not grow). */
function reserved<T>(a: (T | null)[], n: number): (T | null)[] {
  const b = new Array<T | null>(n).fill(null);
  for (let i = 0; i < a.length; i++) b[i] = a[i]!;
  return b;
}

/**
 * A simulated task as the kernel code sees it (`LpTask`): a handle whose
 * fields are the TaskTable's columns, so a million tasks cost a million
 * two-field objects and no strings (the comm is made when asked).
 */
export class SimTask implements LpTask {
  constructor(
    private readonly t: TaskTable,
    readonly id: number,
  ) {}
  get pid(): number {
    return this.t.pid[this.id]!;
  }
  get comm(): string {
    return this.t.commOf(this.id);
  }
  get kthread(): boolean {
    return (this.t.lpFlags[this.id]! & LpFlag.KTHREAD) !== 0;
  }
  get idle(): boolean {
    return (this.t.lpFlags[this.id]! & LpFlag.IDLE) !== 0;
  }
  get cpu(): number {
    return this.t.cpu[this.id]!;
  }
  set cpu(cpu: number) {
    this.t.cpu[this.id] = cpu;
  }
  get patchState(): number {
    return this.t.patchState[this.id]!;
  }
  set patchState(state: number) {
    this.t.patchState[this.id] = state;
  }
  get pending(): boolean {
    return (this.t.lpFlags[this.id]! & LpFlag.PENDING) !== 0;
  }
  set pending(on: boolean) {
    this.t.setLp(this.id, LpFlag.PENDING, on);
  }
  get running(): boolean {
    return (this.t.lpFlags[this.id]! & LpFlag.RUNNING) !== 0;
  }
  set running(on: boolean) {
    this.t.setLp(this.id, LpFlag.RUNNING, on);
  }
  get inUser(): boolean {
    return (this.t.lpFlags[this.id]! & LpFlag.IN_USER) !== 0;
  }
  set inUser(on: boolean) {
    this.t.setLp(this.id, LpFlag.IN_USER, on);
  }
  get stack(): Task | null {
    return this.t.stack[this.id]!;
  }
  set stack(image: Task | null) {
    this.t.stack[this.id] = image;
  }
  get chain(): readonly Addr[] | null {
    return this.t.chain[this.id]!;
  }
  set chain(chain: readonly Addr[] | null) {
    this.t.chain[this.id] = chain;
  }
  get state(): number {
    return this.t.lpState[this.id]!;
  }
  set state(state: number) {
    this.t.lpState[this.id] = state;
  }
}
