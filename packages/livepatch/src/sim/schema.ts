import { kernelDescSchema } from '@klpsim/kernel';
import { z } from 'zod';
import { patchSpecSchema } from '../model.js';

/**
 * A transition scenario: the machine, the tasks and how they behave, the
 * patches and what is done to them over simulated time. Zod first; the
 * JSON Schema in docs/ is generated from this (`scenarioJsonSchema`).
 */

/** Milliseconds drawn from a distribution. */
export const durationSchema = z.union([
  z.strictObject({ const: z.number().nonnegative() }),
  z.strictObject({ exp: z.number().positive().describe('mean') }),
  z.strictObject({ uniform: z.tuple([z.number().nonnegative(), z.number().nonnegative()]) }),
  z.literal('forever'),
]);

/** A call chain a task sleeps in: a captured task's stack, or a builder task's. */
export const chainRefSchema = z.strictObject({
  /** The pid of a task of the capture, or the index of a task of `machine.kernel`. */
  from: z.union([
    z.strictObject({ capturePid: z.number().int().nonnegative() }),
    z.strictObject({ builderTask: z.number().int().nonnegative() }),
  ]),
  weight: z.number().positive().default(1),
});

export const behaviourSchema = z.strictObject({
  /** Each sleep picks one of these chains (by weight). */
  chains: z.array(chainRefSchema).min(1),
  /** How long each sleep lasts (ms). */
  sleep: durationSchema,
  /** Time on a CPU after waking (ms), during which its stack cannot be checked. */
  run: durationSchema.default({ const: 1 }),
  /** A user task returns to user space after running, and switches at that kernel exit. */
  user: z.boolean().default(false),
  /** Time in user space before its next system call (ms). */
  userTime: durationSchema.default({ const: 5 }),
  /** TASK_INTERRUPTIBLE: the fake signal (user) or wake-up (kthread) ends the sleep. */
  interruptible: z.boolean().default(true),
  /** Where the task starts: asleep in this chain until `until` ms (the busy kthread of the selftests). */
  initial: z
    .strictObject({ chain: chainRefSchema.shape.from, until: z.number().nonnegative() })
    .optional(),
  /** Forks a child with the same behaviour this often (ms). */
  forkEvery: durationSchema.optional(),
});

export const taskGroupSchema = z.strictObject({
  comm: z.string().min(1),
  count: z.number().int().positive().max(10_000_000),
  kthread: z.boolean().default(false),
  behaviour: behaviourSchema,
});

export const actionSchema = z.strictObject({
  /** Seconds of simulated time. */
  at: z.number().nonnegative(),
  do: z.enum(['enable', 'disable', 'force', 'load-module', 'unload-module']),
  patch: z.string().optional(),
  module: z.string().optional(),
});

export const scenarioSchema = z.strictObject({
  name: z.string().default('scenario'),
  seed: z.number().int().default(1),
  policy: z.enum(['mainline', 'linux-6.1', 'symcode-v8']).optional(),
  /** Also log the kernel's pr_debug messages (per task, per attempt), as dynamic debug would. */
  debug: z.boolean().default(false),
  /** Seconds of simulated time after which the simulation stops. */
  timeLimit: z.number().positive().default(120),
  machine: z.strictObject({
    cpus: z.number().int().positive().max(4096).default(2),
    offlineCpus: z.array(z.number().int().nonnegative()).default([]),
    /** A capture file (relative to the scenario), or "bundled:linux-6.1" / "bundled:linux-7.2". */
    capture: z.string().optional(),
    /** A built kernel whose tasks are the chains. */
    kernel: kernelDescSchema.optional(),
    /** The idle tasks' chain (default: the capture's swapper, or none). */
    idleChain: chainRefSchema.optional(),
  }),
  tasks: z.array(taskGroupSchema).min(1),
  patches: z.array(patchSpecSchema).default([]),
  actions: z.array(actionSchema).default([]),
});

export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Behaviour = z.output<typeof behaviourSchema>;
export type Duration = z.output<typeof durationSchema>;

/** The published JSON Schema of the scenario format. */
export function scenarioJsonSchema(): unknown {
  return z.toJSONSchema(scenarioSchema, { io: 'input' });
}
