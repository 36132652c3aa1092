import {
  cloneMachine,
  type InputError,
  loadModule,
  type Machine,
  type Result,
} from '@klpsim/kernel';
import type { Policy, WalkReason } from '@klpsim/unwind';
import { klpEnablePatch } from './core.js';
import { buildPatch, KLP_TRANSITION_IDLE, type LpTask, type PatchSpec } from './model.js';
import { LpTaskList } from './task-list.js';
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
  /** The patched function it sleeps on (`func->old_name`, as the kernel prints it), or null. */
  readonly function: string | null;
  /** The walk's structured reason when its stack is unreliable, else null. */
  readonly reason: WalkReason | null;
  /** Why, in words, when it does not switch. */
  readonly why: string | null;
  /** The reliable walk's entries (%pS) when its stack was walked, else empty. */
  readonly trace: readonly string[];
}

export interface Prediction {
  readonly policy: Policy['name'];
  readonly patch: {
    readonly name: string;
    readonly functions: readonly string[];
    readonly unpatch: boolean;
  };
  /** What the kernel printed on the way (an enable that fails says why here). */
  readonly messages: readonly string[];
  /** 0, or the -errno the enable returned (the prediction then has no tasks). */
  readonly enableResult: number;
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
    stack: t,
    chain: null,
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
      stack: null,
      chain: null,
    });
  }
  return tasks.sort((a, b) => a.pid - b.pid);
}

/**
 * One `klp_try_complete_transition` pass over a machine as if the patch
 * were enabled now (or, with `unpatch`, as if the applied patch were being
 * disabled): for each task, whether it switches and if not, why. Under a
 * policy with no reliable stack trace (`linux-6.1`) `klp_try_switch_task`
 * refuses every task: none switches by a stack check. The caller's machine
 * is not changed.
 */
export function predictTransition(
  original: Machine,
  policy: Policy,
  spec: PatchSpec,
  unpatch: boolean,
): Result<Prediction, InputError> {
  const machine = cloneMachine(original);
  const outcome = new Map<
    number,
    { kind: SwitchBlock | 'switches'; fn: string | null; reason: WalkReason | null }
  >();
  const messages: string[] = [];
  let core: KlpCore;
  const observer: KlpObserver = {
    message: (text) => messages.push(text),
    switched: (task) => outcome.set(task, { kind: 'switches', fn: null, reason: null }),
    blocked: (task, why, detail) =>
      outcome.set(task, {
        kind: why,
        fn: why === 'sleeping' ? detail : null,
        reason: why === 'unreliable' ? core.stackWalker.result().reason : null,
      }),
  };
  const list = new LpTaskList(tasksOf(machine));
  core = new KlpCore(machine, policy, list, observer);
  const patch = buildPatch(machine, spec, 0);
  const loaded = loadModule(machine, patch.module);
  if (!loaded.ok) return loaded;
  let ret: number;
  if (unpatch) {
    // The patch has been applied and every task switched: disabling checks its new code.
    ret = klpEnablePatch(core, patch);
    if (ret === 0) {
      core.transitionPatch = null;
      for (const obj of patch.objects) patchObject(core, obj);
      for (const obj of patch.objects) for (const f of obj.funcs) f.transition = false;
      for (const t of list.all) t.pending = false;
      messages.length = 0;
      klpInitTransition(core, patch, 0);
      klpStartTransition(core);
      patch.enabled = false;
    }
  } else {
    ret = klpEnablePatch(core, patch);
  }
  const tasks: PredictedTask[] =
    ret !== 0
      ? []
      : list.all.map((t, id) => {
          const walks = policy.hasReliableWalk && !t.running && t.stack !== null;
          klpTrySwitchTask(core, id);
          const trace = walks ? core.stackWalker.result().trace.map((e) => e.symbol) : [];
          const o = outcome.get(id);
          if (o === undefined) {
            // klp_have_reliable_stack() is false: the task stays pending, silently.
            return {
              pid: t.pid,
              comm: t.comm,
              result: policy.hasReliableWalk ? 'switches' : 'unreliable',
              function: null,
              reason: null,
              why: policy.hasReliableWalk
                ? null
                : `${policy.name} has no reliable stack trace (klp_have_reliable_stack() is false)`,
              trace,
            };
          }
          return {
            pid: t.pid,
            comm: t.comm,
            result: o.kind,
            function: o.fn,
            reason: o.reason,
            why:
              o.kind === 'sleeping'
                ? `is sleeping on function ${o.fn}`
                : o.kind === 'running'
                  ? 'is running'
                  : o.kind === 'unreliable'
                    ? 'has an unreliable stack'
                    : null,
            trace,
          };
        });
  return {
    ok: true,
    value: {
      policy: policy.name,
      patch: { name: spec.name, functions: spec.funcs.map((f) => f.oldName), unpatch },
      messages,
      enableResult: ret,
      tasks,
    },
  };
}
