import { cloneMachine, loadModule, type Machine } from '@klpsim/kernel';
import type { Policy } from '@klpsim/unwind';
import { klpEnablePatch } from './core.js';
import { buildPatch, KLP_TRANSITION_IDLE, type LpTask, type PatchSpec } from './model.js';
import type { Scenario, ScenarioInput } from './sim/schema.js';
import { LpTaskList } from './task-list.js';
import { KlpCore, type KlpObserver, klpTryCompleteTransition } from './transition.js';

const silent: KlpObserver = { message: () => {}, switched: () => {}, blocked: () => {} };

/**
 * Times one `klp_try_complete_transition` pass over `n` tasks asleep in the
 * machine's captured stacks (task i in stack i mod the number captured):
 * every task's reliable walk and range check, as the kernel does it.
 */
export function measurePass(
  original: Machine,
  policy: Policy,
  n: number,
  patch: PatchSpec,
): { seconds: number; switched: number; blocked: number } {
  const machine = cloneMachine(original);
  const stacks = machine.tasks.filter((t) => !t.onCpu);
  // Plain LpTask objects, as a caller of the engine builds them.
  const list = new LpTaskList([]);
  for (let i = 0; i < n; i++) {
    const stack = stacks[i % stacks.length]!;
    const lp: LpTask = {
      pid: 1000 + i,
      comm: stack.comm,
      kthread: stack.kthread,
      idle: false,
      cpu: i % 64,
      patchState: KLP_TRANSITION_IDLE,
      pending: false,
      running: false,
      stack,
      chain: null,
    };
    list.add(lp);
  }
  const core = new KlpCore(machine, policy, list, silent);
  const p = buildPatch(machine, patch, 0);
  const loaded = loadModule(machine, p.module);
  if (!loaded.ok) throw new Error(loaded.error.message);
  const ret = klpEnablePatch(core, p);
  if (ret !== 0) throw new Error(`enabling ${patch.name} failed: ${ret}`);
  const t0 = performance.now();
  klpTryCompleteTransition(core, { signal: () => {}, wakeIdle: () => {} });
  const seconds = (performance.now() - t0) / 1000;
  let switched = 0;
  for (let id = 0; id < list.all.length; id++) if (!list.all[id]!.pending) switched++;
  return { seconds, switched, blocked: n - switched };
}

/**
 * A scenario with its groups scaled so the total is about `n` tasks. Groups
 * of fewer than ten tasks ("a few kthreads") stay as they are: a bigger
 * system does not have proportionally more of them.
 */
export function scaleScenario(sc: ScenarioInput | Scenario, n: number): ScenarioInput {
  const fixed = sc.tasks.reduce((a, g) => a + (g.count < 10 ? g.count : 0), 0);
  const total = sc.tasks.reduce((a, g) => a + (g.count < 10 ? 0 : g.count), 0);
  return {
    ...(sc as ScenarioInput),
    name: `${sc.name ?? 'scenario'} scaled to ${n} tasks`,
    tasks: sc.tasks.map((g) => ({
      ...g,
      count: g.count < 10 ? g.count : Math.max(1, Math.round((g.count * (n - fixed)) / total)),
    })) as ScenarioInput['tasks'],
  };
}
