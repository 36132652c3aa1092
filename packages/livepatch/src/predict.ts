import type { InputError, Machine, Result } from '@klpsim/kernel';
import type { Policy, WalkReason } from '@klpsim/unwind';
import { klpEnablePatch } from './core.js';
import { KLP_TRANSITION_IDLE, type LpTask, type PatchSpec, resolvePatch } from './model.js';
import {
  KlpCore,
  type KlpObserver,
  klpInitTransition,
  klpStartTransition,
  klpTrySwitchTask,
  patchObject,
  type SwitchBlock,
} from './transition.js';

/** One task's fate in the first pass. */
export interface PredictedTask {
  readonly pid: number;
  readonly comm: string;
  readonly result: 'switches' | 'sleeping' | 'unreliable' | 'running';
  /** The patched function it sleeps on, or null. */
  readonly function: string | null;
  /** The walk's structured reason when its stack is unreliable, else null. */
  readonly reason: WalkReason | null;
}

export interface Prediction {
  readonly policy: Policy['name'];
  readonly patch: {
    readonly name: string;
    readonly functions: readonly string[];
    readonly unpatch: boolean;
  };
  readonly tasks: readonly PredictedTask[];
}

/** Livepatch's view of a machine's tasks: captured ones blocked on their stacks, running ones running. */
export function tasksOf(machine: Machine): LpTask[] {
  const tasks: LpTask[] = machine.tasks.map((t) => ({
    pid: t.pid,
    comm: t.comm,
    kthread: t.kthread,
    idle: t.comm.startsWith('swapper/'),
    cpu: t.cpu,
    patchState: KLP_TRANSITION_IDLE,
    pending: false,
    running: t.onCpu,
    inUser: false,
    stack: t,
    chain: null,
    interruptible: t.state === 'S' || t.state === 'I',
  }));
  for (const s of machine.skippedTasks) {
    tasks.push({
      pid: s.pid,
      comm: s.comm,
      kthread: false,
      idle: s.comm.startsWith('swapper/'),
      cpu: s.cpu ?? 0,
      patchState: KLP_TRANSITION_IDLE,
      pending: false,
      running: true,
      inUser: false,
      stack: null,
      chain: null,
      interruptible: false,
    });
  }
  return tasks.sort((a, b) => a.pid - b.pid);
}

/**
 * One `klp_try_complete_transition` pass over a machine as if the patch
 * were enabled now (or, with `unpatch`, as if the applied patch were being
 * disabled): for each task, whether it switches and if not, why.
 */
export function predictTransition(
  machine: Machine,
  policy: Policy,
  spec: PatchSpec,
  unpatch: boolean,
): Result<Prediction, InputError> {
  const outcome = new Map<
    LpTask,
    { kind: SwitchBlock | 'switches'; fn: string | null; reason: WalkReason | null }
  >();
  let core: KlpCore;
  const observer: KlpObserver = {
    message: () => {},
    switched: (task) => outcome.set(task, { kind: 'switches', fn: null, reason: null }),
    blocked: (task, why, detail) =>
      outcome.set(task, {
        kind: why,
        fn: why === 'sleeping' ? detail : null,
        reason: why === 'unreliable' ? core.stackWalker.result().reason : null,
      }),
  };
  core = new KlpCore(machine, policy, observer);
  core.tasks.push(...tasksOf(machine));
  const patch = resolvePatch(machine, spec, 0);
  if (!patch.ok) return patch;
  if (unpatch) {
    // The patch has been applied and every task switched: disabling checks its new code.
    core.patches.push(patch.value);
    for (const obj of patch.value.objects) patchObject(core, obj);
    patch.value.enabled = true;
    klpInitTransition(core, patch.value, 0);
    klpStartTransition(core);
    patch.value.enabled = false;
  } else {
    klpEnablePatch(core, patch.value);
  }
  for (const t of core.tasks) klpTrySwitchTask(core, t);
  const tasks: PredictedTask[] = core.tasks.map((t) => {
    const o = outcome.get(t) ?? { kind: 'switches' as const, fn: null, reason: null };
    return { pid: t.pid, comm: t.comm, result: o.kind, function: o.fn, reason: o.reason };
  });
  return {
    ok: true,
    value: {
      policy: policy.name,
      patch: { name: spec.name, functions: spec.funcs.map((f) => f.oldName), unpatch },
      tasks,
    },
  };
}
