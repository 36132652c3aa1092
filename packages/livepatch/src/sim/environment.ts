import { type Addr, parseAddr } from '@klpsim/arm64';
import {
  buildMachine,
  type InputError,
  type LoadedCapture,
  type Machine,
  type Result,
  type Task,
} from '@klpsim/kernel';
import { type Policy, policyByName } from '@klpsim/unwind';
import { NEWEST_VERSION, stateOf, TASK_FREEZABLE, TASK_INTERRUPTIBLE } from '../sched.js';
import type { ChainFrom, Scenario } from './schema.js';

/**
 * The machine a scenario runs on and the chains its tasks sleep in: the
 * stacks of a real capture (true chain: the kernel's own trace), or of a
 * built kernel (true chain: the builder's, frames a walk cannot see included).
 * Tasks asleep in the same chain share one stack image.
 */

/** A call chain a task can sleep in: the stack image the walker reads and the true pcs. */
export interface ChainTemplate {
  readonly task: Task;
  /** The true call chain, innermost first. */
  readonly chain: readonly Addr[];
  /** The functions of `chain`, innermost first (kallsyms names). */
  readonly names: readonly string[];
  /**
   * The task's identity, which it keeps for life: a kthread's thread
   * function and below, "system call" for a user task's entry, the idle
   * loop for an idle task.
   */
  readonly base: string;
  /** How many innermost frames lie above the base (the part a new sleep can change). */
  readonly above: number;
  /** `task->__state` of the captured sleep (TASK_INTERRUPTIBLE for a built one). */
  readonly state: number;
}

export interface SimEnvironment {
  readonly machine: Machine;
  readonly policy: Policy;
  /** The kernel version the scenario names ("7.2" when it names none). */
  readonly kernel: string;
  /** Resolves a behaviour's chain reference. */
  chainOf(ref: ChainFrom): ChainTemplate | null;
  /** The idle tasks' chain, or null (an idle task then always switches at the idle loop). */
  readonly idleChain: ChainTemplate | null;
}

/** Where a user task's kernel stack starts: the EL0 exception entry. */
const USER_ENTRY = /^el0t_(64|32)_(sync|irq|fiq|error)$/;

/** The base of a chain and how many frames lie above it (see `ChainTemplate.base`). */
export function chainBase(names: readonly string[]): { base: string; above: number } {
  const k = names.indexOf('kthread');
  if (k >= 1) return { base: names.slice(k - 1).join(' <- '), above: k - 1 };
  const user = names.findIndex((n) => USER_ENTRY.test(n));
  if (user >= 0) return { base: 'system call (el0t_64_sync)', above: names.length };
  const idle = names.indexOf('do_idle');
  if (idle >= 0) return { base: names.slice(idle).join(' <- '), above: idle };
  const last = names.length - 1;
  return { base: names[last] ?? '(empty)', above: Math.max(0, last) };
}

function template(
  machine: Machine,
  task: Task,
  chain: readonly Addr[],
  state: number,
): ChainTemplate {
  const names = chain.map((a) => machine.kallsyms.lookup(a)?.name ?? '?');
  return { task, chain, names, ...chainBase(names), state };
}

/** Loads a scenario's machine and chains; fails naming the field when the machine cannot be had. */
export function scenarioEnvironment(
  sc: Scenario,
  loadCaptureRef: (ref: string) => Result<LoadedCapture, InputError>,
): Result<SimEnvironment, InputError> {
  const byPid = new Map<number, ChainTemplate>();
  const byIndex: ChainTemplate[] = [];
  let machine: Machine;
  if (sc.machine.capture !== undefined) {
    const cap = loadCaptureRef(sc.machine.capture);
    if (!cap.ok) return cap;
    machine = cap.value.machine;
    for (const task of machine.tasks) {
      const trace = cap.value.oracle.get(task.pid)?.traceFull ?? [];
      const chain = trace.map((e) => parseAddr(e.address)).filter((a): a is Addr => a !== null);
      byPid.set(task.pid, template(machine, task, chain, stateOf(task.state, task.stateRaw)));
    }
  } else if (sc.machine.kernel !== undefined) {
    const built = buildMachine(sc.machine.kernel, 'machine.kernel');
    if (!built.ok) return built;
    machine = built.value.machine;
    for (const t of built.value.tasks)
      byIndex.push(template(machine, t.task, t.chain, TASK_INTERRUPTIBLE));
  } else {
    return {
      ok: false,
      error: {
        code: 'KLPSIM_INPUT_INVALID',
        message: 'a scenario needs machine.capture or machine.kernel',
        field: 'machine',
      },
    };
  }
  const name = sc.policy ?? (machine.config.ptRegs.meta !== null ? 'mainline' : 'symcode-v8');
  const policy = policyByName(name)!;
  const mismatch = policy.checkLayout(machine);
  if (mismatch !== null)
    return {
      ok: false,
      error: { code: 'KLPSIM_INPUT_INVALID', message: mismatch.message, field: 'policy' },
    };
  const chainOf = (ref: ChainFrom): ChainTemplate | null =>
    'capturePid' in ref ? (byPid.get(ref.capturePid) ?? null) : (byIndex[ref.builderTask] ?? null);
  const idleRef = sc.machine.idleChain?.from;
  const swapper = machine.tasks.find((t) => t.comm.startsWith('swapper/'));
  const idleChain =
    idleRef !== undefined
      ? chainOf(idleRef)
      : swapper !== undefined
        ? (byPid.get(swapper.pid) ?? null)
        : null;
  return {
    ok: true,
    value: { machine, policy, kernel: sc.kernel ?? NEWEST_VERSION, chainOf, idleChain },
  };
}

/** Whether a template's captured sleep was freezable. */
export const freezableOf = (t: ChainTemplate): boolean => (t.state & TASK_FREEZABLE) !== 0;
