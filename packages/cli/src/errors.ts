import { formatInputError, type InputError } from '@klpsim/kernel';

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
}

/** Exit codes: 0 done, 2 the user's input or arguments were wrong. */
export const EXIT_OK = 0;
export const EXIT_USAGE = 2;
