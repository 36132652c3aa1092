import { kernelDescSchema } from '@klpsim/kernel';
import { POLICY_NAMES } from '@klpsim/unwind';
import { z } from 'zod';
import { patchSpecSchema } from '../model.js';
import { NEWEST_VERSION, parseKernelVersion, SLEEP_STATES } from '../sched.js';

/**
 * A transition scenario: the machine, the tasks and how they behave, the
 * patches and what is done to them over simulated time. Zod first; the
 * JSON Schema in docs/ is generated from this (`scenarioJsonSchema`).
 */

/** A day of simulated time: the bound of every duration and time in a scenario. */
const DAY_MS = 86_400_000;
const ms = z.number().nonnegative().max(DAY_MS);

/** Milliseconds drawn from a distribution. */
export const durationSchema = z.union([
  z.strictObject({ const: ms }),
  z.strictObject({ exp: z.number().positive().max(DAY_MS).describe('mean') }),
  z
    .strictObject({ uniform: z.tuple([ms, ms]) })
    .refine((d) => d.uniform[0] <= d.uniform[1], 'uniform: [low, high] with low <= high'),
  z.literal('forever'),
]);

const chainFromSchema = z.union([
  z.strictObject({ capturePid: z.number().int().nonnegative().max(4_194_304) }),
  z.strictObject({ builderTask: z.number().int().nonnegative().max(10_000_000) }),
]);

/** A call chain a task sleeps in: a captured task's stack, or a builder task's. */
export const chainRefSchema = z.strictObject({
  /** The pid of a task of the capture, or the index of a task of `machine.kernel`. */
  from: chainFromSchema,
  weight: z.number().positive().max(1e9).default(1),
});

export const behaviourSchema = z.strictObject({
  /**
   * The chains its sleeps are in (each sleep draws one by weight). They share
   * the task's base: a kthread's thread function, a worker's
   * `worker_thread`, a user task's system-call entry.
   */
  chains: z.array(chainRefSchema).min(1).max(1000),
  /**
   * `task->__state` of its sleeps: S interruptible, D uninterruptible, I
   * TASK_IDLE, K killable, T stopped, t traced. Default: the captured task's
   * state for a capture chain, else S.
   */
  state: z.enum(Object.keys(SLEEP_STATES) as [keyof typeof SLEEP_STATES]).optional(),
  /** TASK_FREEZABLE sleeps (`wait_event_freezable`, a `set_freezable` kthread). Default: as captured. */
  freezable: z.boolean().optional(),
  /** How long each sleep lasts before it ends by itself (ms). */
  sleep: durationSchema,
  /** Time on a CPU after waking (ms), during which its stack cannot be checked. */
  run: durationSchema.default({ const: 1 }),
  /** While on a CPU, `cond_resched()` this often (ms): CPU-bound kthreads and vCPU loops. */
  condResched: durationSchema.optional(),
  /**
   * While on a CPU in a system call it polls `signal_pending()` (as KVM_RUN
   * does between guest entries): a fake signal ends the call at once. Else
   * the call goes on to its next interruptible sleep or its end.
   */
  pollsSignals: z.boolean().default(false),
  /** The stack while on a CPU, when `cond_resched()` checks it (default: the sleep chain). */
  runChain: chainFromSchema.optional(),
  /** A user task: its system calls return to user space, where it switches at the kernel exit. */
  user: z.boolean().default(false),
  /**
   * How many sleeps one system call goes through before it returns
   * ("until-signal": it loops until a signal interrupts it, as an ioctl
   * calling `msleep_interruptible` until done, or a blocking read).
   */
  syscall: z.union([z.literal('until-signal'), z.number().int().positive().max(1e6)]).default(1),
  /** Time in user space before its next system call (ms). */
  userTime: durationSchema.default({ const: 5 }),
  /** Where the task starts: asleep in this chain until `until` ms (the busy kthread of the selftests). */
  initial: z.strictObject({ chain: chainFromSchema, until: ms }).optional(),
  /** Forks a child with the same behaviour this often (ms). */
  forkEvery: durationSchema.optional(),
});

export const taskGroupSchema = z.strictObject({
  comm: z.string().min(1).max(64),
  count: z.number().int().positive().max(10_000_000),
  kthread: z.boolean().default(false),
  behaviour: behaviourSchema,
});

export const ACTIONS = [
  'enable',
  'disable',
  're-enable',
  'force',
  'load-module',
  'unload-module',
  'kpatch-load',
] as const;

export const actionSchema = z.strictObject({
  /** Seconds of simulated time. */
  at: z
    .number()
    .nonnegative()
    .max(DAY_MS / 1000),
  /**
   * enable: insmod of the patch module; disable / re-enable: `echo 0 / 1 >
   * enabled`; force: `echo 1 > force`; kpatch-load: `kpatch load` (enable,
   * wait 15 s, signal stalled user tasks, wait 60 s more, else disable).
   */
  do: z.enum(ACTIONS),
  patch: z.string().optional(),
  module: z.string().optional(),
});

export const scenarioSchema = z
  .strictObject({
    name: z.string().max(200).default('scenario'),
    seed: z.number().int().min(0).max(0xffffffff).default(1),
    /** Any policy in the unwinder's policy index. */
    policy: z.enum(POLICY_NAMES).optional(),
    /** The kernel version whose scheduler hook applies (sched.ts): "6.1" to "7.2". */
    kernel: z
      .string()
      .refine((s) => parseKernelVersion(s) !== null, 'a kernel version from 6.1, e.g. "6.12"')
      .default(NEWEST_VERSION),
    /** CONFIG_HZ: the tick that brings a running user task back through the kernel exit. */
    hz: z.number().int().min(100).max(1000).default(250),
    /** Also log the kernel's pr_debug messages (per task, per attempt), as dynamic debug would. */
    debug: z.boolean().default(false),
    /** Seconds of simulated time after which the simulation stops. */
    timeLimit: z
      .number()
      .positive()
      .max(DAY_MS / 1000)
      .default(120),
    machine: z.strictObject({
      cpus: z.number().int().positive().max(4096).default(2),
      offlineCpus: z.array(z.number().int().nonnegative().max(4095)).max(4096).default([]),
      /** A capture file (relative to the scenario), or "bundled:linux-6.1" / "bundled:linux-7.2". */
      capture: z.string().optional(),
      /** A built kernel whose tasks are the chains. */
      kernel: kernelDescSchema.optional(),
      /** The idle tasks' chain (default: the capture's swapper, or none). */
      idleChain: chainRefSchema.optional(),
      /** Functions ftrace cannot patch on a built kernel (a capture's text says which it has). */
      notrace: z.array(z.string().min(1)).max(100_000).default([]),
      /** Functions another FTRACE_OPS_FL_IPMODIFY user holds: a kprobe with a post_handler, say. */
      ipmodify: z.array(z.string().min(1)).max(100_000).default([]),
      /** How long `klp_synchronize_transition` keeps "completing" from "complete" (ms). */
      syncMs: ms.default(10),
      /** How long unpatching's ftrace unregistration and grace periods take (ms). */
      unpatchSyncMs: ms.default(385),
    }),
    tasks: z.array(taskGroupSchema).min(1).max(10_000),
    patches: z.array(patchSpecSchema).max(1000).default([]),
    actions: z.array(actionSchema).max(100_000).default([]),
  })
  .superRefine((sc, ctx) => {
    // A scenario in which nothing can happen is a mistake, not a transition that "did not complete".
    if (sc.actions.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['actions'],
        message: 'no action: nothing would ever happen (add {"at": 1, "do": "enable", ...})',
      });
    for (const [i, a] of sc.actions.entries()) {
      if (a.at > sc.timeLimit)
        ctx.addIssue({
          code: 'custom',
          path: ['actions', i, 'at'],
          message: `at ${a.at} s is after the time limit (${sc.timeLimit} s): it would never happen`,
        });
    }
  });

export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Behaviour = z.output<typeof behaviourSchema>;
export type Duration = z.output<typeof durationSchema>;
export type ChainFrom = z.output<typeof chainFromSchema>;

/** The published JSON Schema of the scenario format. */
export function scenarioJsonSchema(): unknown {
  return z.toJSONSchema(scenarioSchema, { io: 'input' });
}
