import type { InputError } from '@klpsim/kernel';
// From the internal entry, which loads only the kernel's errors.ts: main imports this module
// before any command, and the public index would bring zod and the whole simulator.
import { formatInputError, InputFault } from '@klpsim/kernel/internal';

/** A failure the user can fix (bad arguments, bad input file): printed as one line, exit code 2. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  static fromInput(e: InputError): CliError {
    return new CliError(e.code, formatInputError(e));
  }

  /** An input failure thrown where no Result could carry it (an `InputFault`), else null. */
  static fromFault(e: unknown): CliError | null {
    return e instanceof InputFault ? CliError.fromInput(e.error) : null;
  }
}

/**
 * The exit codes, the same for every command (docs/cli.md). Scripts tell a
 * verdict they asked to fail on (1) from a mistake in what they passed (2)
 * and from the one thing that must never happen, a task switched with a
 * patched function on its stack (3).
 */
export const EXIT_OK = 0;
/** A verdict the user asked to fail on: `--fail-on-unreliable`, a transition that did not complete. */
export const EXIT_VERDICT = 1;
/** Bad arguments or bad input. */
export const EXIT_USAGE = 2;
/** The consistency checker saw a violation. */
export const EXIT_VIOLATION = 3;

/** The table above as rows, for `--help` and the CLI reference. */
export const EXIT_CODES: readonly (readonly [number, string])[] = [
  [EXIT_OK, 'done, whatever the verdicts (and a closed output pipe, as `cat` does)'],
  [
    EXIT_VERDICT,
    'a verdict that is a failure: `walk --fail-on-unreliable`; a transition that does not complete, a patch the kernel refuses, kpatch giving up (`transition`, `predict`); an unsound mutation (`vectors mutate`)',
  ],
  [EXIT_USAGE, 'bad arguments or bad input: one line on stderr names the flag or file'],
  [EXIT_VIOLATION, 'a consistency violation: a task switched with a changed function on its stack'],
];
