import type { LoadedCapture, Machine, Task } from '@klpsim/kernel';
import { loadCapture } from '@klpsim/kernel';
import {
  CHECK_NAMES,
  type CheckName,
  POLICY_NAMES,
  type Policy,
  policyByName,
} from '@klpsim/unwind';
import { CliError } from './errors.js';

/**
 * Loads a capture or throws a CliError naming file, field and expectation.
 * The text dump is read at its first use (a walk never reads it); it is
 * checked now all the same.
 */
export function openCapture(file: string, text: string | undefined): LoadedCapture {
  const r = loadCapture(
    file,
    text === undefined ? { lazyText: true } : { textFile: text, lazyText: true },
  );
  if (!r.ok) throw CliError.fromInput(r.error);
  return r.value;
}

/** The policy asked for, or the one that fits the kernel: mainline where it has meta records, else linux-6.1. */
export function choosePolicy(machine: Machine, name: string | undefined): Policy {
  const chosen = name ?? (machine.config.ptRegs.meta !== null ? 'mainline' : 'linux-6.1');
  const policy = policyByName(chosen);
  if (policy === undefined) {
    throw new CliError(
      'KLPSIM_USAGE',
      `--policy: unknown policy "${chosen}" (expected one of ${POLICY_NAMES.join(', ')})`,
    );
  }
  const mismatch = policy.checkLayout(machine);
  if (mismatch !== null) throw new CliError(mismatch.code, mismatch.message);
  return policy;
}

export function chooseChecks(names: readonly string[] | undefined): CheckName[] {
  const out: CheckName[] = [];
  for (const n of names ?? []) {
    if (!(CHECK_NAMES as readonly string[]).includes(n)) {
      throw new CliError(
        'KLPSIM_USAGE',
        `--check: unknown check "${n}" (expected one of ${CHECK_NAMES.join(', ')})`,
      );
    }
    out.push(n as CheckName);
  }
  return out;
}

/** The capture's pids as a short range, for an error message. */
function pidRange(machine: Machine): string {
  const pids = machine.tasks.map((t) => t.pid).sort((a, b) => a - b);
  return pids.length === 0 ? 'none' : `${pids[0]}-${pids[pids.length - 1]}, ${pids.length} tasks`;
}

/** The tasks named by --pid, in the order given, or every captured task. */
export function chooseTasks(machine: Machine, pids: readonly number[] | undefined): Task[] {
  if (pids === undefined || pids.length === 0) return [...machine.tasks];
  return pids.map((pid) => {
    const task = machine.tasks.find((t) => t.pid === pid);
    if (task !== undefined) return task;
    const skipped = machine.skippedTasks.find((t) => t.pid === pid);
    throw new CliError(
      'KLPSIM_NO_SUCH_TASK',
      skipped !== undefined
        ? `--pid ${pid}: ${skipped.comm} was not captured (${skipped.reason})`
        : `--pid ${pid}: no such task in the capture (pids ${pidRange(machine)}; \`klpsim walk <capture>\` lists every task)`,
    );
  });
}
