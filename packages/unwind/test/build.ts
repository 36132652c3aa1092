import { type BuiltMachine, buildMachine, formatInputError, type KernelDesc } from '@klpsim/kernel';

/** Builds a machine for a test; a description error fails the test with its message. */
export function build(desc: KernelDesc): BuiltMachine {
  const r = buildMachine(desc);
  if (!r.ok) throw new Error(formatInputError(r.error));
  return r.value;
}
