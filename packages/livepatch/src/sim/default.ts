import type { ScenarioInput } from './schema.js';

/**
 * The built-in scenario: a modelled 64-CPU Linux 7.2 server of about 2,000
 * tasks whose stacks are those of the bundled 7.2 capture, replicated by
 * kind, each task keeping its base for life. Patched at 1 s on five
 * functions, one of which, `kthread_worker_fn`, is the thread function of
 * the kthread workers (pool_workqueue_, rcu_exp_gp_kthr, rcu_exp_par_gp_,
 * watchdogd): it is on every stack they will ever have, so no stack check,
 * signal or scheduler hook can switch them, and the transition never
 * completes without `force`. That is the answer the kernel gives, and so
 * the answer this scenario gives.
 */
export function defaultScenario(): ScenarioInput {
  const pid = (capturePid: number, weight = 1) => ({ from: { capturePid }, weight });
  // Tasks of the bundled 7.2 capture, by pid (`klpsim walk fixtures/captures/linux-7.2-arm64-plain/capture.json`).
  const WORKERS = [9, 10, 11, 12, 23, 24, 26, 44, 45, 51, 108].map((p) => pid(p));
  const RESCUERS = [
    4, 5, 6, 7, 8, 13, 28, 35, 39, 40, 41, 42, 46, 50, 52, 53, 54, 55, 56, 57, 58, 59,
  ];
  const SMPBOOT = [14, 18, 19, 20, 21, 22].map((p) => pid(p));
  return {
    name: 'default: 64-CPU Linux 7.2 server, ~2,000 tasks, 5 functions',
    seed: 1,
    kernel: '7.2',
    timeLimit: 180,
    machine: { cpus: 64, capture: 'bundled:linux-7.2' },
    tasks: [
      {
        // ksoftirqd, migration, cpuhp: smpboot_thread_fn, three per CPU.
        comm: 'percpu-kthread',
        count: 3 * 64,
        kthread: true,
        behaviour: { chains: SMPBOOT, sleep: { exp: 4000 }, run: { const: 1 } },
      },
      {
        // Workqueue workers: work items come and go above worker_thread; TASK_IDLE between them.
        comm: 'kworker',
        count: 3 * 64,
        kthread: true,
        behaviour: { chains: WORKERS, sleep: { exp: 2000 }, run: { uniform: [1, 5] } },
      },
      ...RESCUERS.map((p) => ({
        comm: `kworker/R-${p}`,
        count: 1,
        kthread: true,
        behaviour: { chains: [pid(p)], sleep: 'forever' as const },
      })),
      ...[3, 16, 17, 43].map((p) => ({
        // The kthread workers: asleep in kthread_worker_fn, their thread function, between works.
        comm: `kthread_worker-${p}`,
        count: 1,
        kthread: true,
        behaviour: {
          chains: [pid(p)],
          sleep: { uniform: [5000, 40000] as [number, number] },
          run: { uniform: [5, 50] as [number, number] },
        },
      })),
      {
        // CPU-bound kthreads (ksmd-like): long runs calling cond_resched(), short freezable sleeps.
        comm: 'ksmd',
        count: 2,
        kthread: true,
        behaviour: {
          chains: [pid(37)],
          sleep: { const: 20 },
          run: { uniform: [500, 3000] },
          condResched: { const: 1 },
        },
      },
      {
        // vCPU threads: in KVM_RUN on a CPU for seconds at a time, rarely through the kernel exit.
        comm: 'vcpu',
        count: 8,
        behaviour: {
          chains: [pid(115)],
          sleep: { exp: 2 },
          run: { uniform: [5000, 30000] },
          condResched: { const: 1 },
          pollsSignals: true,
          user: true,
          userTime: { const: 0.05 },
        },
      },
      {
        // User tasks in uninterruptible sleep (D) until their I/O completes: signals do not reach them.
        comm: 'io-reader',
        count: 20,
        behaviour: {
          chains: [pid(114)],
          state: 'D',
          sleep: { exp: 400 },
          user: true,
          userTime: { exp: 50 },
        },
      },
      {
        comm: 'nanosleeper',
        count: 400,
        behaviour: {
          chains: [pid(113), pid(118), pid(120)],
          sleep: { exp: 3000 },
          user: true,
          userTime: { exp: 20 },
        },
      },
      {
        comm: 'pipe-reader',
        count: 250,
        behaviour: {
          chains: [pid(114), pid(123)],
          sleep: { exp: 20000 },
          user: true,
          userTime: { exp: 5 },
        },
      },
      {
        comm: 'poller',
        count: 450,
        behaviour: {
          chains: [pid(115), pid(116), pid(117)],
          sleep: { exp: 8000 },
          user: true,
          userTime: { exp: 10 },
        },
      },
      {
        comm: 'futex-waiter',
        count: 300,
        behaviour: { chains: [pid(125)], sleep: 'forever', user: true, syscall: 'until-signal' },
      },
      {
        comm: 'shell',
        count: 50,
        behaviour: { chains: [pid(1), pid(119)], sleep: { exp: 60000 }, user: true },
      },
    ],
    patches: [
      {
        name: 'livepatch_default',
        funcs: [
          { oldName: 'kthread_worker_fn' },
          { oldName: 'do_nanosleep' },
          { oldName: 'anon_pipe_read' },
          { oldName: 'do_epoll_wait' },
          { oldName: 'futex_wait' },
        ],
      },
    ],
    actions: [{ at: 1, do: 'enable', patch: 'livepatch_default' }],
  };
}
