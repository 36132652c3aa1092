import { type Addr, parseAddr } from '@klpsim/arm64';
import {
  type BuiltMachine,
  type BuiltStart,
  buildMachine,
  type InputError,
  type Machine,
  machineFromRaw,
  type Result,
} from '@klpsim/kernel';
import { fail, ok } from '@klpsim/kernel/internal';
import type { WalkFrom } from '@klpsim/unwind';
import type { Vector, VectorFrom } from './schema.js';

/** A vector's machine, built from its recipe or its raw state. */
export interface VectorMachine {
  readonly kind: 'raw' | 'recipe';
  readonly machine: Machine;
  /** The recipe's own start per task (raw state has none). */
  readonly starts: readonly BuiltStart[] | null;
  /** What the builder made (its text's frame state, the true chains); null for raw state. */
  readonly built: BuiltMachine | null;
}

/** Builds every machine the vector describes; an error names the file and the field in the vector. */
export function vectorMachines(v: Vector, file: string): Result<VectorMachine[]> {
  const out: VectorMachine[] = [];
  if (v.raw !== undefined) {
    const m = machineFromRaw(v.raw, file, 'raw');
    if (!m.ok) return m;
    out.push({ kind: 'raw', machine: m.value, starts: null, built: null });
  }
  if (v.recipe !== undefined) {
    const b = buildMachine(v.recipe, file);
    if (!b.ok) return fail({ ...b.error, field: `recipe.${b.error.field ?? ''}` });
    out.push({
      kind: 'recipe',
      machine: b.value.machine,
      starts: b.value.tasks.map((t) => t.from),
      built: b.value,
    });
  }
  for (const [i, w] of v.walks.entries()) {
    for (const m of out) {
      if (w.task >= m.machine.tasks.length)
        return fail(
          bad(
            file,
            `walks[${i}].task`,
            `task ${w.task} does not exist in the ${m.kind} machine`,
            `less than ${m.machine.tasks.length}`,
          ),
        );
    }
    if (w.from !== undefined && fromOf(w.from) === null)
      return fail(
        bad(file, `walks[${i}].from`, 'an address is not canonical', 'kernel or user addresses'),
      );
  }
  return ok(out);
}

function bad(file: string, field: string, message: string, expected: string): InputError {
  return { code: 'KLPSIM_INPUT_INVALID', message, file, field, expected };
}

/** A vector's `from` as the walker takes it; null when an address is not canonical. */
export function fromOf(f: VectorFrom): WalkFrom | null {
  if (f.kind === 'task') return { kind: 'task' };
  const ctx = {
    nonPreemptible: f.nonPreemptible ?? false,
    inNmi: f.inNmi ?? false,
    ...(f.inEfi === true ? { inEfi: true } : {}),
  };
  const a = (s: string): Addr | null => {
    const x = parseAddr(s);
    return x === null || Number.isNaN(x) ? null : x;
  };
  if (f.kind === 'caller') {
    const fp = a(f.fp);
    const pc = a(f.pc);
    return fp === null || pc === null ? null : { kind: 'caller', fp, pc, ...ctx };
  }
  const regs = a(f.regs);
  return regs === null ? null : { kind: 'regs', regs, ...ctx };
}
