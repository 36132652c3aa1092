import type { Addr } from '@klpsim/arm64';
import type { Machine, Task } from '@klpsim/kernel';
import { type Policy, type ReasonCode, stackTraceSaveTskReliable, Walker } from '@klpsim/unwind';
import {
  KLP_TRANSITION_IDLE,
  KLP_TRANSITION_PATCHED,
  KLP_TRANSITION_UNPATCHED,
  type KlpFunc,
  type KlpObject,
  type KlpPatch,
} from './model.js';
import type { SchedHook } from './sched.js';
import type { KlpTasks } from './task-list.js';

/**
 * The consistency model (kernel/livepatch/transition.c): one transition at a
 * time; each task switches to the target state when its reliable stack walk
 * shows none of the functions being changed, or at a switch point (kernel
 * exit, the idle loop, fork, the scheduler hook, force).
 */

export const MAX_STACK_ENTRIES = 100;
export const SIGNALS_TIMEOUT = 15;
export const ENOENT = -2;
export const EBUSY = -16;
export const EINVAL = -22;
export const EADDRINUSE = -98;

/** Why a task could not switch in one `klp_try_switch_task`. */
export type SwitchBlock = 'running' | 'unreliable' | 'sleeping';

/** How a task took the target state. */
export type SwitchVia =
  | 'stack-check'
  | 'kernel-exit'
  | 'idle-loop'
  | 'fork'
  | 'sched-hook'
  | 'offline-cpu'
  | 'force';

/** printk levels of the messages livepatch prints (`pr_debug` only with dynamic debug on). */
export type MessageLevel = 'err' | 'warn' | 'notice' | 'info' | 'debug';

/** Which object callback ran (`struct klp_callbacks`). */
export type CallbackKind = 'pre_patch' | 'post_patch' | 'pre_unpatch' | 'post_unpatch';

/** What the engine tells its observer (the simulation, predict): kernel messages and switches. */
export interface KlpObserver {
  /** Whether pr_debug messages are wanted (they are built per task per retry, so only if asked). */
  readonly debug?: boolean;
  /** A line as the kernel prints it, prefix included ("livepatch: ..."). */
  message(text: string, level: MessageLevel): void;
  /** A task (its id in the core's `tasks`) took the target state. */
  switched(task: number, via: SwitchVia): void;
  /**
   * A task could not switch; `detail` is the walk's reason code (unreliable)
   * or the function (sleeping). Called per task per attempt, so it takes no
   * object: the pass allocates nothing.
   */
  blocked(task: number, why: SwitchBlock, detail: ReasonCode | string | null): void;
  /** An object callback of a patch module ran. */
  callback?(patch: KlpPatch, obj: KlpObject, kind: CallbackKind): void;
  /**
   * The kernel waits here for every CPU (`klp_synchronize_transition`) or,
   * unpatching, for ftrace to let go of the handler: time passes before the
   * next message. A simulation advances its clock; predict ignores it.
   */
  synchronize?(why: 'transition' | 'unpatch'): void;
}

/** The livepatch core's state for one kernel: `klp_patches`, `klp_transition_patch`, `klp_target_state`. */
export class KlpCore {
  readonly patches: KlpPatch[] = [];
  transitionPatch: KlpPatch | null = null;
  targetState = KLP_TRANSITION_IDLE;
  signalsCnt = 0;
  /** `klp_sched_try_switch_key` (6.4+): on from the start of a transition to its end. */
  schedHookEnabled = false;
  /** `klp_ops.func_stack` per patched function, newest first. */
  readonly funcStacks = new Map<Addr, KlpFunc[]>();
  /** Bumped whenever a func_stack changes, so callers can cache what they derive from them. */
  funcStacksGen = 0;
  /**
   * The ids of the task list's tasks with TIF_PATCH_PENDING, in task-list
   * order, plus some that have switched since (dropped at the next
   * `pendingTasks()`). The kernel's pass visits every thread and skips those
   * not pending; with a million tasks, 87 % of them switched at the first
   * attempt, so the engine visits only these, in the same order, with the
   * same result.
   */
  private pendingIds = new Int32Array(1024);
  private pendingCount = 0;
  readonly cpuOnline: boolean[] = [];
  private readonly walker: Walker;
  /** The ranges a pass checks (see `checkedRanges`), valid during one `klpTryCompleteTransition`. */
  passRanges: CheckedRanges | null = null;
  /** The name of the function the last `klpCheckStack` found, and the walk's reason. */
  lastOldName = '';
  lastReason: ReasonCode | null = null;
  /**
   * During one pass: each stack image's check, once. A walk depends only on
   * the image, the text and the policy, none of which a pass changes, and
   * thousands of tasks sleep in the same few images.
   */
  passChecks: Map<Task, PassCheck> | null = null;

  constructor(
    readonly machine: Machine,
    readonly policy: Policy,
    /** The kernel's tasks, by id; the engine refers to a task by its id only. */
    readonly tasks: KlpTasks,
    readonly observer: KlpObserver,
    /** Where the scheduler lets a task switch itself (sched.ts). */
    readonly hook: SchedHook = 'freezable-schedule',
  ) {
    this.walker = new Walker(machine, policy);
  }

  /**
   * The ids of the tasks with TIF_PATCH_PENDING now, in task-list order
   * (idle tasks are not on the list). A view valid until the next call or
   * `flagPending`: nothing flags a task during a pass.
   */
  pendingTasks(): Int32Array {
    const ids = this.pendingIds;
    const tasks = this.tasks;
    let n = 0;
    for (let i = 0; i < this.pendingCount; i++) {
      const id = ids[i]!;
      if (tasks.pending(id)) ids[n++] = id;
    }
    this.pendingCount = n;
    return ids.subarray(0, n);
  }

  /** Sets TIF_PATCH_PENDING (`klp_copy_process`): the list follows the flag. */
  flagPending(task: number): void {
    this.tasks.setPending(task, true);
    if (this.pendingCount === this.pendingIds.length) this.growPending(this.pendingCount * 2);
    this.pendingIds[this.pendingCount++] = task;
  }

  /**
   * `klp_start_transition` flags tasks afresh: the list starts as the whole
   * task list; `pendingTasks()` drops those the start did not flag.
   */
  flagPendingStart(): void {
    const { first } = this.tasks;
    const n = this.tasks.end() - first;
    if (n > this.pendingIds.length) this.growPending(n);
    for (let i = 0; i < n; i++) this.pendingIds[i] = first + i;
    this.pendingCount = n;
  }

  private growPending(size: number): void {
    const ids = new Int32Array(size);
    ids.set(this.pendingIds.subarray(0, this.pendingCount));
    this.pendingIds = ids;
  }

  /** The walker the stack checks use (its trace holds the last check's entries). */
  get stackWalker(): Walker {
    return this.walker;
  }
}

/** Prints a line as livepatch does (`pr_fmt`: "livepatch: "). */
export function klpPrint(core: KlpCore, level: MessageLevel, text: string): void {
  if (level === 'debug' && core.observer.debug !== true) return;
  core.observer.message(`livepatch: ${text}`, level);
}

const stateName = (state: number): string =>
  state === KLP_TRANSITION_PATCHED ? 'patching' : 'unpatching';

/**
 * The range `klp_check_stack_func` must not find an entry in, as
 * `[start, size]`: unpatching, the func's own new code; patching, the
 * original if the func is alone on its func_stack, else the new code of the
 * func below it (stacked patches; a nop's is the replaced patch's).
 */
export function checkedRange(core: KlpCore, func: KlpFunc): [Addr, number] {
  if (core.targetState === KLP_TRANSITION_UNPATCHED) return [func.newFunc, func.newSize];
  const stack = core.funcStacks.get(func.oldFunc);
  if (stack === undefined || stack.length <= 1) return [func.oldFunc, func.oldSize];
  const prev = stack[stack.indexOf(func) + 1];
  return prev === undefined ? [func.oldFunc, func.oldSize] : [prev.newFunc, prev.newSize];
}

/** `klp_check_stack_func`: is any of `entries[0..n)` inside the func's checked range? */
export function klpCheckStackFunc(
  core: KlpCore,
  func: KlpFunc,
  entries: ArrayLike<number>,
  n: number,
): boolean {
  const [start, size] = checkedRange(core, func);
  for (let i = 0; i < n; i++) {
    const a = entries[i]!;
    if (a >= start && a < start + size) return true;
  }
  return false;
}

/** One image's `klp_check_stack` result in a pass. */
interface PassCheck {
  readonly ret: number;
  readonly oldName: string;
  readonly reason: ReasonCode | null;
}

/** Every range a stack check must not find an entry in, flattened, with the func each belongs to. */
export interface CheckedRanges {
  readonly bounds: Float64Array;
  readonly names: readonly string[];
}

/**
 * The ranges of every func of every patched object of the transition patch,
 * in `klp_check_stack`'s order. They cannot change during a pass, so a pass
 * computes them once instead of looking up each func's func_stack per task.
 */
export function checkedRanges(core: KlpCore): CheckedRanges {
  const bounds: number[] = [];
  const names: string[] = [];
  const patch = core.transitionPatch;
  if (patch !== null) {
    for (const obj of patch.objects) {
      if (!obj.patched) continue;
      for (const func of obj.funcs) {
        const [start, size] = checkedRange(core, func);
        bounds.push(start, start + size);
        names.push(func.oldName);
      }
    }
  }
  return { bounds: Float64Array.from(bounds), names };
}

/** The index of the first range holding one of `pcs[0..n)`, or -1 (funcs in order, as `klp_check_stack`). */
export function rangeHit(ranges: CheckedRanges, pcs: ArrayLike<number>, n: number): number {
  const b = ranges.bounds;
  for (let r = 0; r < b.length; r += 2) {
    const start = b[r]!;
    const end = b[r + 1]!;
    for (let i = 0; i < n; i++) {
      const a = pcs[i]!;
      if (a >= start && a < end) return r >> 1;
    }
  }
  return -1;
}

/**
 * `klp_check_stack`: a reliable walk of at most 100 entries with the chosen
 * policy (no shortcut), then the range check of every func of every patched
 * object. 0, -EINVAL (unreliable) or -EADDRINUSE (sleeping on a function;
 * the message names `func->old_name` in both directions).
 */
export function klpCheckStack(core: KlpCore, task: number): number {
  core.lastReason = null;
  const stack = core.tasks.stack(task);
  if (stack === null) return 0;
  const cached = core.passChecks?.get(stack);
  if (cached !== undefined) {
    core.lastOldName = cached.oldName;
    core.lastReason = cached.reason;
    return cached.ret;
  }
  const ret = walkAndCheck(core, stack);
  core.passChecks?.set(stack, { ret, oldName: core.lastOldName, reason: core.lastReason });
  return ret;
}

function walkAndCheck(core: KlpCore, image: Task): number {
  const w = core.stackWalker;
  const n = stackTraceSaveTskReliable(w, image, MAX_STACK_ENTRIES);
  if (n < 0) {
    core.lastReason = w.st.reason;
    return EINVAL;
  }
  const ranges = core.passRanges ?? checkedRanges(core);
  const hit = rangeHit(ranges, w.trace.pcs, n);
  if (hit < 0) return 0;
  core.lastOldName = ranges.names[hit]!;
  return EADDRINUSE;
}

/**
 * `klp_try_switch_task`: already switched; no reliable stack trace at all
 * (`klp_have_reliable_stack`), false and silent; running elsewhere
 * (`task_curr`, -EBUSY); else the stack check. `current` is the task doing
 * the check itself (the scheduler hook): it is on a CPU, but its own stack
 * can be walked. On success TIF_PATCH_PENDING is cleared and the task takes
 * the target state.
 */
export function klpTrySwitchTask(
  core: KlpCore,
  task: number,
  current = false,
  via: SwitchVia = 'stack-check',
): boolean {
  const tasks = core.tasks;
  if (tasks.patchState(task) === core.targetState) return true;
  if (!core.policy.hasReliableWalk) return false;
  if (tasks.running(task) && !current) {
    switchDebug(core, task, 'is running');
    core.observer.blocked(task, 'running', null);
    return false;
  }
  const ret = klpCheckStack(core, task);
  if (ret === EINVAL) {
    switchDebug(core, task, 'has an unreliable stack');
    core.observer.blocked(task, 'unreliable', core.lastReason);
    return false;
  }
  if (ret === EADDRINUSE) {
    switchDebug(core, task, 'is sleeping on function ', core.lastOldName);
    core.observer.blocked(task, 'sleeping', core.lastOldName);
    return false;
  }
  tasks.setPending(task, false);
  tasks.setPatchState(task, core.targetState);
  core.observer.switched(task, via);
  return true;
}

/**
 * `klp_try_switch_task`'s pr_debug line. It runs per blocked task per
 * attempt, so the text is built only when dynamic debug is on: the pass
 * allocates nothing otherwise.
 */
function switchDebug(core: KlpCore, task: number, what: string, fn = ''): void {
  if (core.observer.debug !== true) return;
  const tasks = core.tasks;
  klpPrint(
    core,
    'debug',
    `klp_try_switch_task: ${tasks.comm(task)}:${tasks.pid(task)} ${what}${fn}`,
  );
}

/**
 * `__klp_sched_try_switch`: the scheduler hook, for `current` (the task
 * calling `cond_resched()`, or going to sleep freezable in `__schedule()`,
 * by version: sched.ts). Only while a transition has the key on and the
 * task still has TIF_PATCH_PENDING. Returns whether it switched.
 */
export function klpSchedTrySwitch(core: KlpCore, task: number): boolean {
  if (!core.schedHookEnabled || !core.tasks.pending(task)) return false;
  return klpTrySwitchTask(core, task, true, 'sched-hook');
}

/** `klp_update_patch_state`: at a switch point, a pending task takes the target state. */
export function klpUpdatePatchState(core: KlpCore, task: number, via: SwitchVia): void {
  const tasks = core.tasks;
  if (tasks.pending(task)) {
    tasks.setPending(task, false);
    tasks.setPatchState(task, core.targetState);
    core.observer.switched(task, via);
  }
}

/**
 * Every id on the task list, then every idle task's, in that order: the
 * loops of kernel/livepatch/transition.c that visit each thread
 * (`for_each_process_thread`) and then each CPU's `idle_task`.
 */
function forEachTaskThenIdle(core: KlpCore, fn: (task: number) => void): void {
  const tasks = core.tasks;
  for (let id = tasks.first; id < tasks.end(); id++) fn(id);
  for (let cpu = 0; cpu < tasks.cpus; cpu++) fn(tasks.idle(cpu));
}

/** `klp_init_transition`: every task and idle task starts in the initial state; every func is in transition. */
export function klpInitTransition(core: KlpCore, patch: KlpPatch, state: number): void {
  klpPrint(core, 'debug', `'${patch.name}': initializing ${stateName(state)} transition`);
  core.transitionPatch = patch;
  core.targetState = state;
  const initial =
    state === KLP_TRANSITION_PATCHED ? KLP_TRANSITION_UNPATCHED : KLP_TRANSITION_PATCHED;
  const tasks = core.tasks;
  forEachTaskThenIdle(core, (t) => tasks.setPatchState(t, initial));
  for (const obj of patch.objects) for (const func of obj.funcs) func.transition = true;
}

/** `klp_start_transition`: set TIF_PATCH_PENDING on every task not yet in the target state; the scheduler hook on. */
export function klpStartTransition(core: KlpCore): void {
  const patch = core.transitionPatch!;
  klpPrint(core, 'notice', `'${patch.name}': starting ${stateName(core.targetState)} transition`);
  const tasks = core.tasks;
  const target = core.targetState;
  forEachTaskThenIdle(core, (t) => {
    if (tasks.patchState(t) !== target) tasks.setPending(t, true);
  });
  core.flagPendingStart();
  core.schedHookEnabled = core.hook !== 'none';
  core.signalsCnt = 0;
}

/**
 * `klp_send_signals`: a fake signal to every pending user task
 * (`set_notify_signal`), `wake_up_state(TASK_INTERRUPTIBLE)` for every
 * pending kthread. What each does when signalled is the simulation's (the
 * observer's) business; idle tasks are not in the task list.
 */
export function klpSendSignals(core: KlpCore, signal: (task: number) => void): void {
  if (core.signalsCnt === SIGNALS_TIMEOUT) klpPrint(core, 'notice', 'signaling remaining tasks');
  const pending = core.pendingTasks();
  for (let i = 0; i < pending.length; i++) signal(pending[i]!);
}

/** What `klpTryCompleteTransition` asks of the world around it. */
export interface TransitionHooks {
  /** A fake signal (user task) or interruptible wake-up (kthread), from `klp_send_signals`. */
  signal(task: number): void;
  /** `wake_up_if_idle(cpu)`: make an idle CPU's idle task go round its loop. */
  wakeIdle(cpu: number): void;
}

/**
 * `klp_try_complete_transition`: try every task, then every CPU's idle task
 * (an offline CPU's switches at once; an online one that fails is woken);
 * if any remain, signal at every 15th retry and let the caller retry later
 * (the delayed work). Returns true when the transition completed.
 */
export function klpTryCompleteTransition(core: KlpCore, hooks: TransitionHooks): boolean {
  let complete = true;
  core.passRanges = checkedRanges(core);
  core.passChecks = new Map();
  const pending = core.pendingTasks();
  for (let i = 0; i < pending.length; i++)
    if (!klpTrySwitchTask(core, pending[i]!)) complete = false;
  const tasks = core.tasks;
  for (let cpu = 0; cpu < tasks.cpus; cpu++) {
    const idle = tasks.idle(cpu);
    if (core.cpuOnline[cpu] !== false) {
      if (!klpTrySwitchTask(core, idle)) {
        complete = false;
        hooks.wakeIdle(cpu);
      }
    } else if (tasks.patchState(idle) !== core.targetState) {
      tasks.setPending(idle, false);
      tasks.setPatchState(idle, core.targetState);
      core.observer.switched(idle, 'offline-cpu');
    }
  }
  core.passRanges = null;
  core.passChecks = null;
  if (!complete) {
    if (core.signalsCnt !== 0 && core.signalsCnt % SIGNALS_TIMEOUT === 0)
      klpSendSignals(core, hooks.signal);
    core.signalsCnt++;
    return false;
  }
  core.schedHookEnabled = false;
  klpCompleteTransition(core);
  return true;
}

function callback(core: KlpCore, obj: KlpObject, kind: CallbackKind): void {
  core.observer.callback?.(obj.patch, obj, kind);
}

/** `klp_pre_patch_callback`: its return value; a success arms the post-unpatch callback. */
export function klpPrePatchCallback(core: KlpCore, obj: KlpObject): number {
  const ret = obj.callbacks.prePatch ?? 0;
  if (obj.callbacks.prePatch !== null) callback(core, obj, 'pre_patch');
  obj.postUnpatchEnabled = ret === 0;
  return ret;
}

export function klpPostPatchCallback(core: KlpCore, obj: KlpObject): void {
  if (obj.callbacks.postPatch) callback(core, obj, 'post_patch');
}

export function klpPreUnpatchCallback(core: KlpCore, obj: KlpObject): void {
  if (obj.callbacks.preUnpatch) callback(core, obj, 'pre_unpatch');
}

/** `klp_post_unpatch_callback`: only after a pre-patch callback that succeeded, and only once. */
export function klpPostUnpatchCallback(core: KlpCore, obj: KlpObject): void {
  if (obj.postUnpatchEnabled && obj.callbacks.postUnpatch) callback(core, obj, 'post_unpatch');
  obj.postUnpatchEnabled = false;
}

/** Whether an object's code is in the running kernel (vmlinux always, a module once loaded). */
export function klpIsObjectLoaded(core: KlpCore, obj: KlpObject): boolean {
  return obj.name === null || core.machine.text.loadedModules().some((m) => m.name === obj.name);
}

/**
 * `klp_complete_transition`: atomic replace unpatches the replaced patches
 * and drops the nops; unpatching takes the funcs off their func_stacks;
 * every task goes back to IDLE; the post callbacks run; "%s complete".
 */
export function klpCompleteTransition(core: KlpCore): void {
  const patch = core.transitionPatch!;
  const patching = core.targetState === KLP_TRANSITION_PATCHED;
  klpPrint(core, 'debug', `'${patch.name}': completing ${stateName(core.targetState)} transition`);
  if (patch.replace && patching) {
    for (const old of core.patches.slice()) {
      if (old === patch) continue;
      for (const obj of old.objects) unpatchObject(core, obj);
      old.enabled = false;
      core.patches.splice(core.patches.indexOf(old), 1);
    }
    for (const obj of patch.objects) {
      for (const f of obj.funcs.filter((x) => x.nop)) {
        removeFromFuncStack(core, f);
        obj.funcs.splice(obj.funcs.indexOf(f), 1);
      }
    }
  }
  if (!patching) {
    for (const obj of patch.objects) unpatchObject(core, obj);
    core.observer.synchronize?.('unpatch');
  }
  for (const obj of patch.objects) for (const f of obj.funcs) f.transition = false;
  if (patching) core.observer.synchronize?.('transition');
  const tasks = core.tasks;
  forEachTaskThenIdle(core, (t) => tasks.setPatchState(t, KLP_TRANSITION_IDLE));
  for (const obj of patch.objects) {
    if (!klpIsObjectLoaded(core, obj)) continue;
    if (patching) klpPostPatchCallback(core, obj);
    else klpPostUnpatchCallback(core, obj);
  }
  klpPrint(core, 'notice', `'${patch.name}': ${stateName(core.targetState)} complete`);
  if (!patching) {
    const i = core.patches.indexOf(patch);
    if (i >= 0) core.patches.splice(i, 1);
  }
  core.targetState = KLP_TRANSITION_IDLE;
  core.transitionPatch = null;
  core.schedHookEnabled = false;
}

/**
 * `klp_cancel_transition`: an enable that failed after `klp_init_transition`
 * (a pre-patch callback, a function ftrace cannot patch) goes straight back:
 * target UNPATCHED, complete ("unpatching complete" is what the log shows).
 */
export function klpCancelTransition(core: KlpCore): void {
  if (core.targetState !== KLP_TRANSITION_PATCHED) return;
  klpPrint(
    core,
    'debug',
    `'${core.transitionPatch!.name}': canceling patching transition, going to unpatch`,
  );
  core.targetState = KLP_TRANSITION_UNPATCHED;
  klpCompleteTransition(core);
}

/** `klp_reverse_transition`: clear every flag, flip `enabled` and the target, start again. */
export function klpReverseTransition(core: KlpCore): void {
  const patch = core.transitionPatch!;
  klpPrint(
    core,
    'debug',
    `'${patch.name}': reversing transition from ${
      core.targetState === KLP_TRANSITION_PATCHED
        ? 'patching to unpatching'
        : 'unpatching to patching'
    }`,
  );
  const tasks = core.tasks;
  forEachTaskThenIdle(core, (t) => tasks.setPending(t, false));
  core.observer.synchronize?.('transition');
  patch.enabled = !patch.enabled;
  core.targetState =
    core.targetState === KLP_TRANSITION_PATCHED ? KLP_TRANSITION_UNPATCHED : KLP_TRANSITION_PATCHED;
  klpStartTransition(core);
}

/**
 * `klp_force_transition`: every pending task takes the target state now
 * (the message says "patched" in both directions, as the kernel's does);
 * the patches being removed are marked `forced`, so their modules can
 * never be unloaded. The transition still completes at the next attempt.
 */
export function klpForceTransition(core: KlpCore): void {
  klpPrint(core, 'warn', 'forcing remaining tasks to the patched state');
  const pending = core.pendingTasks();
  for (let i = 0; i < pending.length; i++) klpUpdatePatchState(core, pending[i]!, 'force');
  const tasks = core.tasks;
  for (let cpu = 0; cpu < tasks.cpus; cpu++) klpUpdatePatchState(core, tasks.idle(cpu), 'force');
  const patch = core.transitionPatch!;
  if (core.targetState === KLP_TRANSITION_UNPATCHED) patch.forced = true;
  else if (patch.replace) for (const p of core.patches) if (p !== patch) p.forced = true;
}

/** `klp_copy_process`: a child inherits its parent's flag and state. */
export function klpCopyProcess(core: KlpCore, parent: number, child: number): void {
  const tasks = core.tasks;
  tasks.setPatchState(child, tasks.patchState(parent));
  if (tasks.pending(parent)) core.flagPending(child);
  else tasks.setPending(child, false);
}

/** `klp_patch_object` without the ftrace part (see ftrace.ts): every func goes on top of its func_stack. */
export function patchObject(core: KlpCore, obj: KlpObject): void {
  for (const f of obj.funcs) pushFunc(core, f);
  obj.patched = true;
}

/** Puts one func on top of its func_stack (the ftrace handler sees it from now on). */
export function pushFunc(core: KlpCore, f: KlpFunc): void {
  if (Number.isNaN(f.oldFunc) || f.patched) return;
  const stack = core.funcStacks.get(f.oldFunc) ?? [];
  stack.unshift(f);
  core.funcStacks.set(f.oldFunc, stack);
  core.funcStacksGen++;
  f.patched = true;
}

/** `klp_unpatch_object`. */
export function unpatchObject(core: KlpCore, obj: KlpObject): void {
  for (const f of obj.funcs) if (f.patched) removeFromFuncStack(core, f);
  obj.patched = false;
}

function removeFromFuncStack(core: KlpCore, f: KlpFunc): void {
  const stack = core.funcStacks.get(f.oldFunc);
  if (stack !== undefined) {
    const i = stack.indexOf(f);
    if (i >= 0) stack.splice(i, 1);
    if (stack.length === 0) core.funcStacks.delete(f.oldFunc);
    core.funcStacksGen++;
  }
  f.patched = false;
}
