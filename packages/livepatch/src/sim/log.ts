import type { Policy } from '@klpsim/unwind';
import { KLP_TRANSITION_IDLE } from '../model.js';
import type { SchedHook } from '../sched.js';
import type { MessageLevel, SwitchVia } from '../transition.js';

/**
 * What a simulation reports (`TransitionLog`), and the questions one asks
 * of it afterwards: a task's patch_state and the sysfs view at a moment.
 */

export interface BlockedBy {
  readonly reason: 'running' | 'unreliable stack' | 'sleeping on function';
  readonly function: string | null;
  readonly count: number;
}

/** One switch of a task: when, how, and in which transition (index into `transitions`). */
export interface TaskSwitch {
  readonly t: number;
  readonly via: SwitchVia;
  readonly transition: number;
}

export interface TaskReport {
  readonly pid: number;
  readonly comm: string;
  readonly kthread: boolean;
  /** Simulated seconds of its last switch, or null if it never switched. */
  readonly switchedAt: number | null;
  readonly via: SwitchVia | null;
  readonly switches: readonly TaskSwitch[];
  /** The call chain (%pS, innermost first) of the last stack a check refused, or null. */
  readonly blockedIn: readonly string[] | null;
  readonly blockedBy: readonly BlockedBy[];
}

export interface TimelineEntry {
  readonly t: number;
  /** message (kernel log), action, signals, callback, kpatch, VIOLATION. */
  readonly event: string;
  /** The printk level of a kernel message. */
  readonly level?: MessageLevel;
  readonly text: string;
}

export interface Violation {
  readonly t: number;
  readonly pid: number;
  readonly comm: string;
  readonly function: string;
  readonly via: SwitchVia;
}

/** One transition of the run (a reversal continues the same one, in the other direction). */
export interface TransitionRecord {
  readonly patch: string;
  /** KLP_TRANSITION_PATCHED or KLP_TRANSITION_UNPATCHED at the start. */
  readonly target: number;
  readonly startedAt: number;
  /** When it was reversed (the target flipped), or null. */
  reversedAt: number | null;
  /** "... complete" (after the kernel's grace periods), or null. */
  completedAt: number | null;
  /** Attempts (`klp_try_complete_transition` calls) in this transition. */
  attempts: number;
  /** The attempt that found every task switched, or null. */
  completingAttempt: number | null;
  forcedAt: number | null;
  /** Retries after which signals went out (16, 31, ...). */
  signalRounds: number[];
}

/** The sysfs files of one patch (/sys/kernel/livepatch/<patch>/). */
export interface SysfsPatch {
  readonly name: string;
  readonly enabled: 0 | 1;
  readonly transition: 0 | 1;
  readonly replace: 0 | 1;
  readonly stack_order: number;
  /** `<object>/patched` for each object. */
  readonly objects: Readonly<Record<string, 0 | 1>>;
}

/** The sysfs view from time `t` until the next snapshot. */
export interface SysfsSnapshot {
  readonly t: number;
  readonly patches: readonly SysfsPatch[];
}

/** A task still pending when the run ended: who, why, and what would end its wait. */
export interface PendingTask {
  readonly pid: number;
  readonly comm: string;
  readonly reason: string;
  readonly function: string | null;
  readonly remedy: string;
  /** Nothing but force can end its wait (its thread function is patched, or it never sleeps). */
  readonly needsForce: boolean;
}

/** What `kpatch load` made of the transition, when the scenario used it. */
export interface KpatchOutcome {
  readonly patch: string;
  /** Completed within kpatch's window (15 s, then 60 s more). */
  readonly completedInWindow: boolean;
  /** kpatch gave up and disabled the patch. */
  readonly gaveUp: boolean;
}

export interface TransitionLog {
  readonly scenario: string;
  readonly policy: Policy['name'];
  readonly kernel: string;
  readonly schedHook: SchedHook;
  readonly seed: number;
  readonly timeLimit: number;
  /** Every transition that was started completed. */
  readonly completed: boolean;
  /** When the last transition completed (s), or null. */
  readonly completedAt: number | null;
  readonly attempts: number;
  /** Fake signals and kthread wake-ups sent (one per task per round). */
  readonly signalsSent: number;
  /** Distinct tasks that were signalled at least once. */
  readonly tasksSignalled: number;
  readonly forced: boolean;
  readonly violations: readonly Violation[];
  readonly transitions: readonly TransitionRecord[];
  /** Tasks still pending after each attempt: [seconds, count]. */
  readonly pending: readonly (readonly [number, number])[];
  readonly pendingAtEnd: readonly PendingTask[];
  readonly kpatch: KpatchOutcome | null;
  readonly sysfs: readonly SysfsSnapshot[];
  /**
   * Every task, in creation order, then the idle tasks. Made from the
   * simulation's columns when first read (a getter), then the same array.
   */
  readonly tasks: readonly TaskReport[];
  readonly timeline: readonly TimelineEntry[];
}

/**
 * The patch state a task shows in /proc/PID/patch_state at time `t`
 * (seconds), from a log; the task by pid or by its report (idle tasks all
 * have pid 0).
 */
export function patchStateAt(log: TransitionLog, who: number | TaskReport, t: number): number {
  const task = typeof who === 'number' ? log.tasks.find((x) => x.pid === who) : who;
  let tr = -1;
  for (let i = 0; i < log.transitions.length; i++) if (log.transitions[i]!.startedAt <= t) tr = i;
  if (tr < 0 || task === undefined) return KLP_TRANSITION_IDLE;
  const rec = log.transitions[tr]!;
  if (rec.completedAt !== null && rec.completedAt <= t) return KLP_TRANSITION_IDLE;
  // klp_init_transition puts everyone in the initial state; each switch takes the target of its moment.
  let state = 1 - rec.target;
  for (const s of task.switches) {
    if (s.transition !== tr || s.t > t) continue;
    state = rec.reversedAt !== null && s.t >= rec.reversedAt ? 1 - rec.target : rec.target;
  }
  return state;
}

/** The sysfs view at time `t` (seconds): the last snapshot at or before it. */
export function sysfsAt(log: TransitionLog, t: number): SysfsSnapshot {
  let snap: SysfsSnapshot = { t: 0, patches: [] };
  for (const s of log.sysfs) if (s.t <= t) snap = s;
  return snap;
}
