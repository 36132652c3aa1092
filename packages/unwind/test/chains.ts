import {
  type FrameDesc,
  KTHREAD_TAIL,
  SCHEDULE_TOP,
  SYSCALL_TAIL,
  type TaskDesc,
} from '@klpsim/kernel';

/** Chains that read like real backtraces, innermost first. */
export const USER_NANOSLEEP: FrameDesc[] = [
  ...SCHEDULE_TOP,
  { fn: 'do_nanosleep' },
  { fn: 'hrtimer_nanosleep' },
  { fn: 'common_nsleep' },
  { fn: '__arm64_sys_clock_nanosleep' },
  ...SYSCALL_TAIL,
];

export const KWORKER: FrameDesc[] = [...SCHEDULE_TOP, { fn: 'worker_thread' }, ...KTHREAD_TAIL];

/** A kthread preempted by an IRQ in `crc32_body`, which had pushed its frame (or not). */
export function irqPreempted(lr: 'saved' | 'unsaved'): FrameDesc[] {
  return [
    { fn: '__switch_to' },
    { fn: '__schedule' },
    { fn: 'preempt_schedule_irq' },
    { fn: 'arm64_preempt_schedule_irq' },
    { fn: 'el1_interrupt' },
    { fn: 'el1h_64_irq_handler' },
    { fn: 'el1h_64_irq' },
    { fn: 'crc32_body', at: lr === 'saved' ? 0x48 : 0x4, exception: { lr } },
    { fn: 'crc32_update' },
    { fn: 'worker_thread' },
    { fn: 'kthread' },
    { fn: 'ret_from_fork' },
  ];
}

export const task = (frames: FrameDesc[], extra: Partial<TaskDesc> = {}): TaskDesc => ({
  frames,
  ...extra,
});
