/**
 * What the scheduler contributes to a transition, by kernel version: task
 * states (include/linux/sched.h), what wakes which sleep (`try_to_wake_up`
 * matches `p->__state & state`), and where the scheduler lets a task switch
 * itself (`klp_sched_try_switch`). The version differences live here and
 * nowhere else.
 */

export const TASK_RUNNING = 0x0;
export const TASK_INTERRUPTIBLE = 0x1;
export const TASK_UNINTERRUPTIBLE = 0x2;
export const __TASK_STOPPED = 0x4;
export const __TASK_TRACED = 0x8;
export const TASK_WAKEKILL = 0x100;
export const TASK_NOLOAD = 0x400;
/** 6.1+: a sleep the freezer may take the task out of (`wait_event_freezable`, `set_freezable` kthreads). */
export const TASK_FREEZABLE = 0x2000;
export const TASK_KILLABLE = TASK_WAKEKILL | TASK_UNINTERRUPTIBLE;
export const TASK_IDLE = TASK_UNINTERRUPTIBLE | TASK_NOLOAD;

/** The sleep states a scenario can name, as /proc shows them, plus killable. */
export const SLEEP_STATES = {
  S: TASK_INTERRUPTIBLE,
  D: TASK_UNINTERRUPTIBLE,
  I: TASK_IDLE,
  K: TASK_KILLABLE,
  T: __TASK_STOPPED,
  t: __TASK_TRACED,
} as const;
export type SleepStateName = keyof typeof SLEEP_STATES;

/** `task->__state` from a captured task: its raw value when recorded, else its /proc letter. */
export function stateOf(letter: string, raw: number | null): number {
  if (raw !== null) return raw;
  return letter in SLEEP_STATES ? SLEEP_STATES[letter as SleepStateName] : TASK_RUNNING;
}

/**
 * `wake_up_state(task, TASK_INTERRUPTIBLE)`, which both halves of
 * `klp_send_signals` come down to: `set_notify_signal` for a user task
 * (kernel/entry: it kicks a task that is running instead) and a plain
 * wake-up for a kthread. Only an interruptible sleep is woken: not D, not
 * killable (a fatal signal would be needed), not TASK_IDLE, not stopped or
 * traced.
 */
export function wokenByKlpSignal(state: number): boolean {
  return (state & TASK_INTERRUPTIBLE) !== 0;
}

/** Where the scheduler calls `klp_sched_try_switch()`, if anywhere. */
export type SchedHook = 'none' | 'cond-resched' | 'freezable-schedule';

/** A kernel version a scenario names: "6.1" ... "7.2" (major.minor). */
export interface KernelVersion {
  readonly major: number;
  readonly minor: number;
}

/** The newest version klpsim models, and the default of a scenario. */
export const NEWEST_VERSION = '7.2';

/**
 * The table (docs/livepatch.md has it with the commits):
 * - 6.1-6.3: no scheduler hook; a task that never sleeps outside a patched
 *   function switches only at kernel exit, or never (kthreads).
 * - 6.4-6.15: `cond_resched()` calls `klp_sched_try_switch()` (e3ff7c609f39
 *   "livepatch,sched: Add livepatch task switching to cond_resched()"; a
 *   static call under PREEMPT_DYNAMIC, a static key otherwise), so a
 *   CPU-bound kthread that calls `cond_resched()` with a clean stack switches.
 * - 6.16+: `__schedule()` calls it for a task going to sleep with
 *   TASK_FREEZABLE set (676e8cf70cb0 "sched,livepatch: Untangle
 *   cond_resched() and live-patching"); `cond_resched()` no longer does.
 */
export function schedHook(v: KernelVersion): SchedHook {
  if (v.major < 6 || (v.major === 6 && v.minor < 4)) return 'none';
  if (v.major === 6 && v.minor < 16) return 'cond-resched';
  return 'freezable-schedule';
}

/** Parses "6.4" or "7.2.13"; null if it is not a version klpsim models (6.1 and later). */
export function parseKernelVersion(s: string): KernelVersion | null {
  const m = /^(\d{1,2})\.(\d{1,3})(?:\.\d{1,4})?$/.exec(s);
  if (m === null) return null;
  const v = { major: Number(m[1]), minor: Number(m[2]) };
  return v.major > 6 || (v.major === 6 && v.minor >= 1) ? v : null;
}
