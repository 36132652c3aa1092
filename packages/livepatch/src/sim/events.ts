/** What a simulation event is about: the `kind` of every event the queue holds. */
export const EventKind = {
  ACTION: 0,
  RETRY: 1,
  /** A sleep ends by itself (its timer, its wait queue). */
  WAKE: 2,
  /** A task's time on a CPU is over. */
  FINISH_RUN: 3,
  SYSCALL: 4,
  IDLE_LOOP: 5,
  FORK: 6,
  /** A running task calls `cond_resched()`. */
  COND_RESCHED: 7,
  /** The timer tick: a task running in user space passes the kernel exit. */
  TICK: 8,
  /** `kpatch load`'s waits run out (arg: the action). */
  KPATCH: 9,
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];
