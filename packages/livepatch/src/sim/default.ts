import type { ScenarioInput } from './schema.js';

/**
 * The built-in scenario: a modelled 64-CPU server of about 2,000 tasks whose
 * call chains are the stacks of the bundled Linux 7.2 capture, replicated by
 * kind (per-CPU kthreads per CPU, workqueue rescuers, user sleepers in
 * nanosleep, pipes, poll, select, epoll, futexes and wait4), patched on five
 * functions. `kthread_worker_fn` is one of them: the four kthread workers
 * that sleep in it (like `rcu_exp_gp_kthr` and `rcu_exp_par_gp_`) block the
 * transition until a burst of work finds them asleep elsewhere (modelled by
 * `rcu_sched`'s stack), as busy kthreads do in the field.
 */
export function defaultScenario(): ScenarioInput {
  const pid = (capturePid: number, weight = 1) => ({ from: { capturePid }, weight });
  // Captured tasks of the 7.2 capture, by pid (see `klpsim walk ... --json`).
  const KWORKER_IDLE = [9, 10, 11, 12, 23, 24, 26, 44, 45, 51, 108].map((p) => pid(p));
  const RESCUERS = [
    4, 5, 6, 7, 8, 13, 28, 35, 39, 40, 41, 42, 46, 50, 52, 53, 54, 55, 56, 57, 58, 59,
  ].map((p) => pid(p));
  const PER_CPU = [14, 18, 19, 20, 21, 22].map((p) => pid(p));
  return {
    name: 'default: 64-CPU server, ~2000 tasks, 5 functions',
    seed: 1,
    timeLimit: 180,
    machine: { cpus: 64, capture: 'bundled:linux-7.2' },
    tasks: [
      {
        comm: 'percpu-kthread',
        count: 6 * 64,
        kthread: true,
        behaviour: { chains: PER_CPU, sleep: { exp: 4000 }, run: { const: 1 } },
      },
      {
        comm: 'kworker',
        count: 2 * 64 + 64,
        kthread: true,
        behaviour: { chains: KWORKER_IDLE, sleep: { exp: 2000 }, run: { uniform: [1, 5] } },
      },
      {
        comm: 'kworker/R',
        count: 22,
        kthread: true,
        behaviour: { chains: RESCUERS, sleep: 'forever' },
      },
      {
        // The busy kthread workers: asleep in kthread_worker_fn between bursts of work that take them elsewhere.
        comm: 'kthread_worker',
        count: 4,
        kthread: true,
        behaviour: {
          chains: [pid(17, 3), pid(16, 3), pid(15, 1)],
          sleep: { uniform: [5000, 40000] },
          run: { uniform: [5, 50] },
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
        behaviour: { chains: [pid(125)], sleep: 'forever', user: true },
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
