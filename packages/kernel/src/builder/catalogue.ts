import type { FrameDesc, FunctionDesc } from './describe.js';

/** The top of every blocked task's chain: the context switch. */
export const SCHEDULE_TOP: readonly FrameDesc[] = [
  { fn: '__switch_to' },
  { fn: '__schedule' },
  { fn: 'schedule' },
];

/** The bottom of a kernel thread's chain. */
export const KTHREAD_TAIL: readonly FrameDesc[] = [{ fn: 'kthread' }, { fn: 'ret_from_fork' }];

/** The bottom of a user task's chain in a system call. */
export const SYSCALL_TAIL: readonly FrameDesc[] = [
  { fn: 'invoke_syscall' },
  { fn: 'el0_svc_common' },
  { fn: 'do_el0_svc' },
  { fn: 'el0_svc' },
  { fn: 'el0t_64_sync_handler' },
  { fn: 'el0t_64_sync' },
];

/** A user task asleep in clock_nanosleep. */
export const USER_NANOSLEEP: readonly FrameDesc[] = [
  ...SCHEDULE_TOP,
  { fn: 'do_nanosleep' },
  { fn: 'hrtimer_nanosleep' },
  { fn: 'common_nsleep' },
  { fn: '__arm64_sys_clock_nanosleep' },
  ...SYSCALL_TAIL,
];

/** A workqueue kthread waiting for work. */
export const KWORKER: readonly FrameDesc[] = [
  ...SCHEDULE_TOP,
  { fn: 'worker_thread' },
  ...KTHREAD_TAIL,
];

/** The boot CPU's idle task (init_task), whose chain runs into init text. */
export const IDLE_TASK: readonly FrameDesc[] = [
  ...SCHEDULE_TOP.slice(0, 2),
  { fn: 'schedule_idle' },
  { fn: 'do_idle' },
  { fn: 'cpu_startup_entry' },
  { fn: 'rest_init' },
  { fn: 'start_kernel' },
  { fn: '__primary_switched' },
];

/**
 * A kthread preempted by an IRQ in `crc32_body`, which had pushed its frame
 * record (`saved`) or had not yet (`unsaved`: its caller lives only in LR).
 */
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

/**
 * The functions every built kernel has, with the sections the real arm64
 * kernel puts them in, so chains read like real backtraces and the
 * predicates (entry text, sched text, SYM_CODE) see them where they are.
 * A chain may name any other function: it lands in ordinary text.
 */
export const CATALOGUE: readonly FunctionDesc[] = [
  // arch/arm64/kernel/entry.S: vectors and exception entry (all SYM_CODE, in .entry.text).
  { name: 'vectors', section: 'entry', size: 0x800, symCode: true },
  { name: 'el1h_64_sync', section: 'entry', symCode: true },
  { name: 'el1h_64_irq', section: 'entry', symCode: true },
  { name: 'el1h_64_fiq', section: 'entry', symCode: true },
  { name: 'el1h_64_error', section: 'entry', symCode: true },
  { name: 'el0t_64_sync', section: 'entry', size: 0x200, symCode: true },
  { name: 'el0t_64_irq', section: 'entry', symCode: true },
  { name: 'ret_to_kernel', section: 'entry', symCode: true },
  { name: 'ret_to_user', section: 'entry', symCode: true },
  // SYM_CODE in ordinary text.
  { name: 'ret_from_fork', symCode: true },
  { name: 'return_to_handler', symCode: true },
  { name: '__kretprobe_trampoline', symCode: true },
  { name: 'ftrace_caller', symCode: true },
  // The context switch and the scheduler.
  { name: 'cpu_switch_to' },
  { name: '__switch_to', size: 0x180 },
  { name: '__schedule', section: 'sched', size: 0x900 },
  { name: 'schedule', section: 'sched' },
  { name: 'schedule_timeout', section: 'sched' },
  { name: 'schedule_idle', section: 'sched' },
  { name: 'schedule_hrtimeout_range_clock', section: 'sched' },
  { name: 'preempt_schedule_irq', section: 'sched' },
  { name: 'io_schedule', section: 'sched' },
  { name: '__mutex_lock_slowpath', section: 'lock' },
  { name: 'mutex_lock', section: 'lock' },
  // Exception handling in C.
  { name: 'el0t_64_sync_handler' },
  { name: 'el0_svc' },
  { name: 'do_el0_svc' },
  { name: 'el0_svc_common' },
  { name: 'invoke_syscall' },
  { name: 'el1h_64_irq_handler' },
  { name: 'el1h_64_sync_handler' },
  { name: 'el1_interrupt' },
  { name: 'el1_abort' },
  { name: 'do_mem_abort' },
  { name: 'do_page_fault' },
  { name: 'handle_mm_fault' },
  { name: 'arm64_preempt_schedule_irq' },
  { name: 'call_on_irq_stack' },
  { name: 'arch_stack_walk' },
  // Common sleepers.
  { name: 'kthread' },
  { name: 'worker_thread' },
  { name: 'smpboot_thread_fn' },
  { name: 'rcu_gp_kthread' },
  { name: 'do_nanosleep' },
  { name: 'hrtimer_nanosleep' },
  { name: 'common_nsleep' },
  { name: '__arm64_sys_clock_nanosleep' },
  { name: 'do_idle' },
  { name: 'cpu_startup_entry' },
  { name: 'rest_init' },
  // Init text: freed after boot, still in saved traces of the boot task.
  { name: 'start_kernel', section: 'init', size: 0x900 },
  { name: '__primary_switched', section: 'init' },
];
