import type { Addr } from '@klpsim/arm64';
import type { Machine } from '@klpsim/kernel';
import { type Policy, type ReasonCode, stackTraceSaveTskReliable, Walker } from '@klpsim/unwind';
import {
  KLP_TRANSITION_IDLE,
  KLP_TRANSITION_PATCHED,
  KLP_TRANSITION_UNPATCHED,
  type KlpFunc,
  type KlpPatch,
  type LpTask,
} from './model.js';

/**
 * The consistency model (kernel/livepatch/transition.c): one transition at a
 * time; each task switches to the target state when its reliable stack walk
 * shows none of the functions being changed, or at a switch point (kernel
 * exit, the idle loop, fork, force).
 */

export const MAX_STACK_ENTRIES = 100;
export const SIGNALS_TIMEOUT = 15;
export const EBUSY = -16;
export const EINVAL = -22;
export const EADDRINUSE = -98;

/** Why a task could not switch in one `klp_try_switch_task`. */
export type SwitchBlock = 'running' | 'unreliable' | 'sleeping';

/** How a task took the target state. */
export type SwitchVia = 'stack-check' | 'kernel-exit' | 'idle-loop' | 'fork' | 'force';

/** What the engine tells its observer (the simulation, predict): kernel messages and switches. */
export interface KlpObserver {
  /** Whether pr_debug messages are wanted (they are built per task per retry, so only if asked). */
  readonly debug?: boolean;
  /** A kernel message; `debug` ones are pr_debug (per-task, per-retry). */
  message(text: string, level?: 'notice' | 'debug' | 'warn'): void;
  switched(task: LpTask, via: SwitchVia): void;
  /**
   * A task could not switch; `detail` is the walk's reason code (unreliable)
   * or the function (sleeping). Called per task per attempt, so it takes no
   * object: the pass allocates nothing.
   */
  blocked(task: LpTask, why: SwitchBlock, detail: ReasonCode | string | null): void;
}

/** The livepatch core's state for one kernel: `klp_patches`, `klp_transition_patch`, `klp_target_state`. */
export class KlpCore {
  readonly patches: KlpPatch[] = [];
  transitionPatch: KlpPatch | null = null;
  targetState = KLP_TRANSITION_IDLE;
  signalsCnt = 0;
  /** `klp_ops.func_stack` per patched function, newest first. */
  readonly funcStacks = new Map<Addr, KlpFunc[]>();
  readonly tasks: LpTask[] = [];
  /** `idle_task(cpu)`, one per CPU. */
  readonly idleTasks: LpTask[] = [];
  readonly cpuOnline: boolean[] = [];
  private readonly walker: Walker;
  /** The ranges a pass checks (see `checkedRanges`), valid during one `klpTryCompleteTransition`. */
  passRanges: CheckedRanges | null = null;
  /** The name of the function the last `klpCheckStack` found, and the walk's reason. */
  lastOldName = '';
  lastReason: ReasonCode | null = null;

  constructor(
    readonly machine: Machine,
    readonly policy: Policy,
    readonly observer: KlpObserver,
  ) {
    this.walker = new Walker(machine, policy);
  }

  /** The walker the stack checks use (its trace holds the last check's entries). */
  get stackWalker(): Walker {
    return this.walker;
  }
}

/**
 * `klp_check_stack_func`: is any entry inside the range that must not be on
 * the stack? Unpatching checks the func's own new code; patching checks the
 * original, or the previous patch's new code when functions are stacked.
 */
export function klpCheckStackFunc(
  core: KlpCore,
  func: KlpFunc,
  entries: Float64Array,
  n: number,
): boolean {
  let start: Addr;
  let size: number;
  if (core.targetState === KLP_TRANSITION_UNPATCHED) {
    start = func.newFunc;
    size = func.newSize;
  } else {
    const stack = core.funcStacks.get(func.oldFunc);
    const i = stack === undefined ? -1 : stack.indexOf(func);
    const prev = stack !== undefined && i >= 0 && i + 1 < stack.length ? stack[i + 1]! : null;
    start = prev === null ? func.oldFunc : prev.newFunc;
    size = prev === null ? func.oldSize : prev.newSize;
  }
  for (let i = 0; i < n; i++) {
    const a = entries[i]!;
    if (a >= start && a < start + size) return true;
  }
  return false;
}

/** Every range a stack check must not find an entry in, flattened, with the func each belongs to. */
export interface CheckedRanges {
  readonly bounds: Float64Array;
  readonly names: readonly string[];
}

/**
 * The ranges of every func of every patched object, as `klp_check_stack_func`
 * chooses them. They cannot change during a pass, so a pass computes them
 * once instead of looking up each func's func_stack for every task.
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

function checkedRange(core: KlpCore, func: KlpFunc): [Addr, number] {
  if (core.targetState === KLP_TRANSITION_UNPATCHED) return [func.newFunc, func.newSize];
  const stack = core.funcStacks.get(func.oldFunc);
  const i = stack === undefined ? -1 : stack.indexOf(func);
  const prev = stack !== undefined && i >= 0 && i + 1 < stack.length ? stack[i + 1]! : null;
  return prev === null ? [func.oldFunc, func.oldSize] : [prev.newFunc, prev.newSize];
}

/** The index of the first range holding one of `pcs[0..n)`, or -1. */
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
 * object. 0, -EINVAL (unreliable) or -EADDRINUSE (sleeping on a function).
 */
export function klpCheckStack(core: KlpCore, task: LpTask): number {
  core.lastReason = null;
  if (task.stack === null) return 0;
  const w = core.stackWalker;
  const n = stackTraceSaveTskReliable(w, task.stack, MAX_STACK_ENTRIES);
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
 * `klp_try_switch_task`: already switched, running elsewhere (-EBUSY), or
 * the stack check; on success clear TIF_PATCH_PENDING and take the target.
 */
export function klpTrySwitchTask(core: KlpCore, task: LpTask): boolean {
  if (task.patchState === core.targetState) return true;
  // klp_have_reliable_stack(): without one, tasks switch only at the other switch points.
  if (!core.policy.hasReliableWalk) return false;
  if (task.running) {
    core.observer.blocked(task, 'running', null);
    return false;
  }
  const ret = klpCheckStack(core, task);
  if (ret === EINVAL) {
    if (core.observer.debug === true)
      core.observer.message(`${task.comm}:${task.pid} has an unreliable stack`, 'debug');
    core.observer.blocked(task, 'unreliable', core.lastReason);
    return false;
  }
  if (ret === EADDRINUSE) {
    if (core.observer.debug === true) {
      core.observer.message(
        `${task.comm}:${task.pid} is sleeping on function ${core.lastOldName}`,
        'debug',
      );
    }
    core.observer.blocked(task, 'sleeping', core.lastOldName);
    return false;
  }
  task.pending = false;
  task.patchState = core.targetState;
  core.observer.switched(task, 'stack-check');
  return true;
}

/** `klp_update_patch_state`: at a switch point, a pending task takes the target state. */
export function klpUpdatePatchState(core: KlpCore, task: LpTask, via: SwitchVia): void {
  if (task.pending) {
    task.pending = false;
    task.patchState = core.targetState;
    core.observer.switched(task, via);
  }
}

/** `klp_init_transition`: every task and idle task starts in the initial state; every func is in transition. */
export function klpInitTransition(core: KlpCore, patch: KlpPatch, state: number): void {
  core.transitionPatch = patch;
  core.targetState = state;
  const initial =
    state === KLP_TRANSITION_PATCHED ? KLP_TRANSITION_UNPATCHED : KLP_TRANSITION_PATCHED;
  for (const t of core.tasks) t.patchState = initial;
  for (const t of core.idleTasks) t.patchState = initial;
  for (const obj of patch.objects) for (const func of obj.funcs) func.transition = true;
}

/** `klp_start_transition`: set TIF_PATCH_PENDING on every task not yet in the target state. */
export function klpStartTransition(core: KlpCore): void {
  const patch = core.transitionPatch!;
  core.observer.message(
    `'${patch.name}': starting ${core.targetState === KLP_TRANSITION_PATCHED ? 'patching' : 'unpatching'} transition`,
  );
  for (const t of core.tasks) if (t.patchState !== core.targetState) t.pending = true;
  for (const t of core.idleTasks) if (t.patchState !== core.targetState) t.pending = true;
  core.signalsCnt = 0;
}

/**
 * `klp_send_signals`: a fake signal to every pending user task, a wake-up of
 * every pending kthread in interruptible sleep. The observer (the
 * simulation) decides what each task does when woken.
 */
export function klpSendSignals(core: KlpCore, wake: (task: LpTask) => void): void {
  if (core.signalsCnt === SIGNALS_TIMEOUT) core.observer.message('signaling remaining tasks');
  for (const t of core.tasks) {
    if (!t.pending) continue;
    if (!t.kthread || t.interruptible) wake(t);
  }
}

/**
 * `klp_try_complete_transition`: try every task, then every CPU's idle task
 * (an offline CPU's switches at once; an online one that fails is woken);
 * if any remain, signal at every 15th retry and retry later. Returns true
 * when the transition completed.
 */
export function klpTryCompleteTransition(
  core: KlpCore,
  hooks: { wake(task: LpTask): void; wakeIdle(cpu: number): void },
): boolean {
  let complete = true;
  core.passRanges = checkedRanges(core);
  for (const t of core.tasks) if (!klpTrySwitchTask(core, t)) complete = false;
  for (const idle of core.idleTasks) {
    if (core.cpuOnline[idle.cpu] !== false) {
      if (!klpTrySwitchTask(core, idle)) {
        complete = false;
        hooks.wakeIdle(idle.cpu);
      }
    } else if (idle.patchState !== core.targetState) {
      idle.pending = false;
      idle.patchState = core.targetState;
      core.observer.switched(idle, 'idle-loop');
    }
  }
  core.passRanges = null;
  if (!complete) {
    if (core.signalsCnt !== 0 && core.signalsCnt % SIGNALS_TIMEOUT === 0)
      klpSendSignals(core, hooks.wake);
    core.signalsCnt++;
    return false;
  }
  klpCompleteTransition(core);
  return true;
}

/**
 * `klp_complete_transition`: atomic replace unpatches the replaced patches
 * and drops the nops; unpatching takes the funcs off their func_stacks;
 * every task goes back to IDLE.
 */
export function klpCompleteTransition(core: KlpCore): void {
  const patch = core.transitionPatch!;
  const patching = core.targetState === KLP_TRANSITION_PATCHED;
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
  if (!patching) for (const obj of patch.objects) unpatchObject(core, obj);
  for (const obj of patch.objects) for (const f of obj.funcs) f.transition = false;
  for (const t of core.tasks) t.patchState = KLP_TRANSITION_IDLE;
  for (const t of core.idleTasks) t.patchState = KLP_TRANSITION_IDLE;
  core.observer.message(`'${patch.name}': ${patching ? 'patching' : 'unpatching'} complete`);
  if (!patching) core.patches.splice(core.patches.indexOf(patch), 1);
  core.targetState = KLP_TRANSITION_IDLE;
  core.transitionPatch = null;
}

/**
 * `klp_cancel_transition`: an enable that failed after `klp_init_transition`
 * (a pre-patch callback, say) goes straight back: target UNPATCHED, complete.
 */
export function klpCancelTransition(core: KlpCore): void {
  if (core.targetState !== KLP_TRANSITION_PATCHED) return;
  core.observer.message(
    `'${core.transitionPatch!.name}': canceling patching transition, going to unpatch`,
    'debug',
  );
  core.targetState = KLP_TRANSITION_UNPATCHED;
  klpCompleteTransition(core);
}

/** `klp_reverse_transition`: clear every flag, flip the target, start again. */
export function klpReverseTransition(core: KlpCore): void {
  const patch = core.transitionPatch!;
  for (const t of core.tasks) t.pending = false;
  for (const t of core.idleTasks) t.pending = false;
  patch.enabled = !patch.enabled;
  core.targetState =
    core.targetState === KLP_TRANSITION_PATCHED ? KLP_TRANSITION_UNPATCHED : KLP_TRANSITION_PATCHED;
  klpStartTransition(core);
}

/** `klp_force_transition`: every task takes the target state now; the patches involved can never be removed. */
export function klpForceTransition(core: KlpCore): void {
  core.observer.message('forcing remaining tasks to the patched state', 'warn');
  for (const t of core.tasks) klpUpdatePatchState(core, t, 'force');
  for (const t of core.idleTasks) klpUpdatePatchState(core, t, 'force');
  const patch = core.transitionPatch!;
  if (core.targetState === KLP_TRANSITION_UNPATCHED) patch.forced = true;
  else if (patch.replace) for (const p of core.patches) if (p !== patch) p.forced = true;
}

/** `klp_copy_process`: a child inherits its parent's flag and state. */
export function klpCopyProcess(parent: LpTask, child: LpTask): void {
  child.pending = parent.pending;
  child.patchState = parent.patchState;
}

/** `klp_patch_object`: every func of a loaded object goes on top of its func_stack. */
export function patchObject(core: KlpCore, obj: KlpPatch['objects'][number]): void {
  for (const f of obj.funcs) {
    if (Number.isNaN(f.oldFunc) || f.patched) continue;
    const stack = core.funcStacks.get(f.oldFunc) ?? [];
    stack.unshift(f);
    core.funcStacks.set(f.oldFunc, stack);
    f.patched = true;
  }
  obj.patched = true;
}

/** `klp_unpatch_object`. */
export function unpatchObject(core: KlpCore, obj: KlpPatch['objects'][number]): void {
  for (const f of obj.funcs) if (f.patched) removeFromFuncStack(core, f);
  obj.patched = false;
}

function removeFromFuncStack(core: KlpCore, f: KlpFunc): void {
  const stack = core.funcStacks.get(f.oldFunc);
  if (stack !== undefined) {
    const i = stack.indexOf(f);
    if (i >= 0) stack.splice(i, 1);
    if (stack.length === 0) core.funcStacks.delete(f.oldFunc);
  }
  f.patched = false;
}
