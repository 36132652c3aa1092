import { type Addr, parseAddr } from '@klpsim/arm64';
import { buildMachine, type InputError, type LoadedCapture, type Result } from '@klpsim/kernel';
import { policyByName } from '@klpsim/unwind';
import type { ChainTemplate, SimEnvironment } from './run.js';
import type { Scenario } from './schema.js';

/**
 * The machine a scenario runs on and the chains its tasks sleep in: the
 * stacks of a real capture (true chain: the kernel's own trace), or of a
 * built kernel (true chain: the builder's, frames a walk cannot see included).
 * Tasks asleep in the same chain share one stack image.
 */
export function scenarioEnvironment(
  sc: Scenario,
  loadCaptureRef: (ref: string) => Result<LoadedCapture, InputError>,
): Result<SimEnvironment, InputError> {
  const byPid = new Map<number, ChainTemplate>();
  const byIndex: ChainTemplate[] = [];
  let machine: SimEnvironment['machine'];
  if (sc.machine.capture !== undefined) {
    const cap = loadCaptureRef(sc.machine.capture);
    if (!cap.ok) return cap;
    machine = cap.value.machine;
    for (const task of machine.tasks) {
      const trace = cap.value.oracle.get(task.pid)?.traceFull ?? [];
      const chain = trace.map((e) => parseAddr(e.address)).filter((a): a is Addr => a !== null);
      byPid.set(task.pid, { task, chain });
    }
  } else if (sc.machine.kernel !== undefined) {
    const built = buildMachine(sc.machine.kernel, 'machine.kernel');
    if (!built.ok) return built;
    machine = built.value.machine;
    for (const t of built.value.tasks) byIndex.push({ task: t.task, chain: t.chain });
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
  const chainOf = (ref: { capturePid: number } | { builderTask: number }): ChainTemplate | null =>
    'capturePid' in ref ? (byPid.get(ref.capturePid) ?? null) : (byIndex[ref.builderTask] ?? null);
  const idleRef = sc.machine.idleChain?.from;
  const swapper = machine.tasks.find((t) => t.comm.startsWith('swapper/'));
  const idleChain =
    idleRef !== undefined
      ? chainOf(idleRef)
      : swapper !== undefined
        ? (byPid.get(swapper.pid) ?? null)
        : null;
  return { ok: true, value: { machine, policy, chainOf, idleChain } };
}
