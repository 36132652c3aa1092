import type { Addr } from '@klpsim/arm64';
import type { Task } from '@klpsim/kernel';
import type { KlpTasks } from '../task-list.js';
import type { SwitchVia } from '../transition.js';
import { grown, RowMemory } from './columns.js';
import type { ChainTemplate } from './environment.js';
import type { TaskSwitch } from './log.js';

/**
 * What the simulation knows of each task, and what the livepatch engine
 * reads and writes of it (the table is the engine's `KlpTasks`), by the
 * task's id: the fields an event reads in one row per task, the rest in
 * columns. A simulation of a million tasks keeps no object per task, so the
 * garbage collector has nothing to trace, and an event touches one cache
 * line of task state. The table grows as tasks fork.
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

/** Bits of `lpFlags`: the kernel-visible booleans of a task (`KlpTasks`, and PF_KTHREAD). */
export const LpFlag = {
  /** TIF_PATCH_PENDING. */
  PENDING: 1,
  /** `task_curr()`. */
  RUNNING: 2,
  /** PF_KTHREAD. */
  KTHREAD: 4,
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

/**
 * The hot part of a task's state, one 64-byte row (a cache line) per task
 * in a RowMemory, whose start is page-aligned once it is large, so that a
 * row never straddles two lines. An event of a million-task run touches a task the
 * caches have long forgotten; with a column per field it paid a miss per
 * field read (about ten), with a row it pays one. Offsets in int32 words:
 */
const ROW_WORDS = 16;
const GENERATION = 0;
const GROUP = 1;
const SLEEP_STATE = 2;
// Word 3 is free.
const CPU = 4;
const SWITCH_EPOCH = 5;
/** Two words: the task's random streams (see Simulation.rand). */
const STREAMS_AT = 6;
/** Interned references (see `ref`): 0 is null. */
const CURRENT = 8;
const STACK = 9;
const CHAIN = 10;
/** Bytes of word 11. */
const PHASE_BYTE = 44;
const FLAGS_BYTE = 45;
const LP_FLAGS_BYTE = 46;
const PATCH_STATE_BYTE = 47;
/** Offsets in float64 words. */
const SLEEPS_LEFT_F64 = 6;
const WAKE_AT_F64 = 7;
const ROW_BYTES = ROW_WORDS * 4;

/** How many random streams a task has (the row holds that many words). */
export const TASK_STREAMS = 2;

/** The first pid given to a task that is not an idle task (idle tasks are pid 0). */
export const FIRST_PID = 1000;

export class TaskTable implements KlpTasks {
  private n = 0;
  private capacity = 0;
  private readonly memory = new RowMemory(0);
  // Views of the rows; made again when the memory grows (growing detaches the old buffer).
  private i32 = new Int32Array(0);
  private u32 = new Uint32Array(0);
  private u8 = new Uint8Array(0);
  private i8 = new Int8Array(0);
  private f64 = new Float64Array(0);
  /**
   * What the rows refer to (stack images, chains, chain templates), by
   * index: a handful of distinct objects that a million tasks share, so a
   * reference costs a row word and no pointer store per task.
   */
  private readonly refs: unknown[] = [null];
  private readonly refIndex = new Map<object, number>();

  // Columns the hot path never reads: written when a task is made, read by the report.
  /** The task each forked task was forked from (its comm is the parent's with "-child"). */
  private readonly parents = new Map<number, number>();
  /** Attempts that found it running. */
  private runningCounts = new Int32Array(0);
  /** The true chain of the last stack a check refused (an interned reference). */
  private lastBlocked = new Int32Array(0);
  /** A task's comm, made when asked (the simulation knows how its tasks are named). */
  commOf: (id: number) => string = () => '';

  // Its first switch in columns (most tasks switch once), any later ones in `moreSwitches`: the
  // time in whole ms (an event's: within the day a scenario may last), and transition * 8 + via
  // (-1: none yet).
  private firstSwitchMs = new Int32Array(0);
  private firstSwitchHow = new Int32Array(0);
  private readonly moreSwitches = new Map<number, TaskSwitch[]>();

  // Counts of refusals by (kind, interned reason or function): one linked list per task in
  // typed arrays, in first-seen order; nothing is allocated once a (task, key) pair exists.
  private countHead = new Int32Array(0);
  private countKey = new Int32Array(256);
  private countKind = new Uint8Array(256);
  private countN = new Int32Array(256);
  private countNext = new Int32Array(256);
  private counts = 0;
  private readonly keyIndex = new Map<string, number>();
  private readonly keys: string[] = [];

  /**
   * @param cpus the idle tasks, ids 0 to cpus - 1 (CPU n's is id n); the
   *   task list follows them in creation order.
   */
  constructor(readonly cpus: number) {
    this.first = cpus;
    this.views();
  }

  get size(): number {
    return this.n;
  }

  // KlpTasks: what the livepatch engine reads and writes.
  readonly first: number;

  end(): number {
    return this.n;
  }

  idle(cpu: number): number {
    return cpu;
  }

  comm(id: number): string {
    return this.commOf(id);
  }

  /** TIF_PATCH_PENDING. */
  pending(id: number): boolean {
    return (this.u8[id * ROW_BYTES + LP_FLAGS_BYTE]! & LpFlag.PENDING) !== 0;
  }

  setPending(id: number, on: boolean): void {
    this.setLp(id, LpFlag.PENDING, on);
  }

  /** `task_curr()`. */
  running(id: number): boolean {
    return (this.u8[id * ROW_BYTES + LP_FLAGS_BYTE]! & LpFlag.RUNNING) !== 0;
  }

  /** Makes room for `n` tasks at once (the scenario's count), so the table grows once. */
  reserve(n: number): void {
    if (n > this.capacity) this.grow(n);
  }

  /** Adds a task; returns its id. Its row starts zeroed: no references, generation 0. */
  add(group: number, sleepState: number, cpu: number): number {
    const id = this.n++;
    if (id === this.capacity) this.grow(Math.max(1024, id * 2));
    const w = id * ROW_WORDS;
    this.i32[w + GROUP] = group;
    this.i32[w + SLEEP_STATE] = sleepState;
    this.i32[w + CPU] = cpu;
    this.f64[id * 8 + WAKE_AT_F64] = Number.POSITIVE_INFINITY;
    this.lastBlocked[id] = 0;
    this.firstSwitchHow[id] = -1;
    this.countHead[id] = -1;
    return id;
  }

  /** The task group (the behaviour's index in the scenario), -1 for idle tasks. */
  group(id: number): number {
    return this.i32[id * ROW_WORDS + GROUP]!;
  }

  /** Bumped at every change of plan: an event carries the generation it was scheduled in. */
  generation(id: number): number {
    return this.i32[id * ROW_WORDS + GENERATION]!;
  }

  /** A new plan for the task: the events of the old one are stale. */
  bumpGeneration(id: number): void {
    this.i32[id * ROW_WORDS + GENERATION]!++;
  }

  phase(id: number): Phase {
    return this.u8[id * ROW_BYTES + PHASE_BYTE]! as Phase;
  }

  setPhase(id: number, phase: Phase): void {
    this.u8[id * ROW_BYTES + PHASE_BYTE] = phase;
  }

  /** `task->__state` of its current (or last) sleep. */
  sleepState(id: number): number {
    return this.i32[id * ROW_WORDS + SLEEP_STATE]!;
  }

  setSleepState(id: number, state: number): void {
    this.i32[id * ROW_WORDS + SLEEP_STATE] = state;
  }

  /** `task_cpu()`. */
  cpu(id: number): number {
    return this.i32[id * ROW_WORDS + CPU]!;
  }

  /** The transition epoch (see Simulation.epoch) it last switched in; 0 for none. */
  switchEpoch(id: number): number {
    return this.i32[id * ROW_WORDS + SWITCH_EPOCH]!;
  }

  setSwitchEpoch(id: number, epoch: number): void {
    this.i32[id * ROW_WORDS + SWITCH_EPOCH] = epoch;
  }

  /** The state of random stream `s` (0 <= s < TASK_STREAMS). */
  streamState(id: number, s: number): number {
    return this.u32[id * ROW_WORDS + STREAMS_AT + s]!;
  }

  setStreamState(id: number, s: number, state: number): void {
    this.u32[id * ROW_WORDS + STREAMS_AT + s] = state;
  }

  /** Sleeps left in the current system call (Infinity: until a signal). */
  sleepsLeft(id: number): number {
    return this.f64[id * 8 + SLEEPS_LEFT_F64]!;
  }

  setSleepsLeft(id: number, n: number): void {
    this.f64[id * 8 + SLEEPS_LEFT_F64] = n;
  }

  /** When the current sleep ends by itself (ms), or Infinity. */
  wakeAt(id: number): number {
    return this.f64[id * 8 + WAKE_AT_F64]!;
  }

  setWakeAt(id: number, ms: number): void {
    this.f64[id * 8 + WAKE_AT_F64] = ms;
  }

  /** `task->patch_state`. */
  patchState(id: number): number {
    return this.i8[id * ROW_BYTES + PATCH_STATE_BYTE]!;
  }

  setPatchState(id: number, state: number): void {
    this.i8[id * ROW_BYTES + PATCH_STATE_BYTE] = state;
  }

  /** The chain it sleeps (or runs) in now. */
  current(id: number): ChainTemplate | null {
    return this.refs[this.i32[id * ROW_WORDS + CURRENT]!] as ChainTemplate | null;
  }

  setCurrent(id: number, c: ChainTemplate | null): void {
    this.i32[id * ROW_WORDS + CURRENT] = this.ref(c);
  }

  /** The stack image a walk of the task reads (`KlpTasks.stack`). */
  stack(id: number): Task | null {
    return this.refs[this.i32[id * ROW_WORDS + STACK]!] as Task | null;
  }

  setStack(id: number, stack: Task | null): void {
    this.i32[id * ROW_WORDS + STACK] = this.ref(stack);
  }

  /** The true call chain of that stack, innermost first: what the consistency checker reads. */
  chain(id: number): readonly Addr[] | null {
    return this.refs[this.i32[id * ROW_WORDS + CHAIN]!] as readonly Addr[] | null;
  }

  setChain(id: number, chain: readonly Addr[] | null): void {
    this.i32[id * ROW_WORDS + CHAIN] = this.ref(chain);
  }

  /** LpFlag bits. */
  lpFlags(id: number): number {
    return this.u8[id * ROW_BYTES + LP_FLAGS_BYTE]!;
  }

  /** Whether any of the LpFlag bits `flag` is set. */
  hasLp(id: number, flag: number): boolean {
    return (this.u8[id * ROW_BYTES + LP_FLAGS_BYTE]! & flag) !== 0;
  }

  /** Sets or clears LpFlag bits. */
  setLp(id: number, flag: number, on: boolean): void {
    const i = id * ROW_BYTES + LP_FLAGS_BYTE;
    this.u8[i] = on ? this.u8[i]! | flag : this.u8[i]! & ~flag;
  }

  /** Whether any of the TaskFlag bits `flag` is set. */
  has(id: number, flag: number): boolean {
    return (this.u8[id * ROW_BYTES + FLAGS_BYTE]! & flag) !== 0;
  }

  /** Sets or clears TaskFlag bits. */
  set(id: number, flag: number, on: boolean): void {
    const i = id * ROW_BYTES + FLAGS_BYTE;
    this.u8[i] = on ? this.u8[i]! | flag : this.u8[i]! & ~flag;
  }

  /** `task->pid`: 0 for the idle tasks, then FIRST_PID on in creation order. */
  pid(id: number): number {
    return id < this.cpus ? 0 : FIRST_PID + id - this.cpus;
  }

  /** The task it was forked from, or -1. */
  parent(id: number): number {
    return this.parents.get(id) ?? -1;
  }

  setParent(id: number, parent: number): void {
    this.parents.set(id, parent);
  }

  /** Attempts that found it running. */
  blockedRunning(id: number): number {
    return this.runningCounts[id]!;
  }

  countRunning(id: number): void {
    this.runningCounts[id]!++;
  }

  /** The true chain of the last stack a check refused, or null. */
  lastBlockedChain(id: number): readonly Addr[] | null {
    return this.refs[this.lastBlocked[id]!] as readonly Addr[] | null;
  }

  setLastBlockedChain(id: number, chain: readonly Addr[] | null): void {
    this.lastBlocked[id] = this.ref(chain);
  }

  /** The index of `x` in `refs` (0 for null), interned at first sight. */
  private ref(x: object | null): number {
    if (x === null) return 0;
    let i = this.refIndex.get(x);
    if (i === undefined) {
      i = this.refs.length;
      this.refs.push(x);
      this.refIndex.set(x, i);
    }
    return i;
  }

  /** A switch at `ms` (simulated milliseconds): the first goes in columns, so a pass allocates nothing for it. */
  recordSwitch(id: number, ms: number, via: SwitchVia, transition: number): void {
    if (this.firstSwitchHow[id] === -1) {
      this.firstSwitchMs[id] = ms;
      this.firstSwitchHow[id] = transition * 8 + VIA_INDEX.get(via)!;
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
    const how = this.firstSwitchHow[id]!;
    if (how === -1) return NO_SWITCHES;
    const ms = this.firstSwitchMs[id]!;
    const t = ms / 1000;
    const via = how & 7;
    const transition = how >>> 3;
    const more = this.moreSwitches.get(id);
    if (more !== undefined) return [{ t, via: VIAS[via]!, transition }, ...more];
    // Exact in a double: ms < 2^27 (a day), 3 bits of via, 17 of transition (at most 100,000
    // actions, so fewer transitions).
    const key = (ms * 8 + via) * 131072 + transition;
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
    // Appended at the end of the task's list (a few entries: the walk above found its end).
    let tail = this.countHead[id]!;
    if (tail === -1) this.countHead[id] = e;
    else {
      while (this.countNext[tail] !== -1) tail = this.countNext[tail]!;
      this.countNext[tail] = e;
    }
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
    this.memory.ensure(size * ROW_BYTES);
    this.views();
    this.capacity = Math.floor(this.memory.buffer.byteLength / ROW_BYTES);
    const cold = this.capacity;
    this.runningCounts = grown(this.runningCounts, cold);
    this.lastBlocked = grown(this.lastBlocked, cold);
    this.firstSwitchMs = grown(this.firstSwitchMs, cold);
    this.firstSwitchHow = grown(this.firstSwitchHow, cold);
    this.countHead = grown(this.countHead, cold);
  }

  private views(): void {
    const b = this.memory.buffer;
    this.i32 = new Int32Array(b);
    this.u32 = new Uint32Array(b);
    this.u8 = new Uint8Array(b);
    this.i8 = new Int8Array(b);
    this.f64 = new Float64Array(b);
  }

  private growCounts(): void {
    const size = this.countKey.length * 2;
    this.countKey = grown(this.countKey, size);
    this.countKind = grown(this.countKind, size);
    this.countN = grown(this.countN, size);
    this.countNext = grown(this.countNext, size);
  }
}
