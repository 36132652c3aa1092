/**
 * Expected failures are values, not exceptions: a function that can fail on
 * its input returns a `Result`, and the error carries a stable `code` that
 * callers and tests match on, plus where it happened.
 */

export type KernelErrorCode =
  | 'KLPSIM_FILE_UNREADABLE'
  | 'KLPSIM_INPUT_INVALID'
  | 'KLPSIM_TEXT_DUMP_MISMATCH'
  | 'KLPSIM_MEMORY_OVERLAP'
  | 'KLPSIM_BUILD_INVALID';

/** A failure caused by input: names the file, the field and what was expected. */
export interface InputError {
  readonly code: KernelErrorCode;
  readonly message: string;
  /** The file the problem is in, when there is one. */
  readonly file?: string;
  /** The path of the offending field, e.g. `tasks[3].stack.base64`. */
  readonly field?: string;
  /** What was expected there. */
  readonly expected?: string;
}

export type Result<T, E = InputError> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

/**
 * An input that failed where no Result can carry it: the text dump a capture
 * maps lazily (`LoadCaptureOptions.lazyText`), found changed or gone when it
 * is first read, after it was checked at load. Thrown, because it happens
 * inside a read of memory, and rare: the file changed while klpsim ran. The
 * CLI reports it as it reports any input error.
 */
export class InputFault extends Error {
  constructor(readonly error: InputError) {
    super(formatInputError(error));
  }
}

/** One line for people: `file: field: message (expected ...)`. */
export function formatInputError(e: InputError): string {
  const where = [e.file, e.field].filter((s) => s !== undefined && s !== '').join(': ');
  const expected = e.expected !== undefined ? ` (expected ${e.expected})` : '';
  return `${where !== '' ? `${where}: ` : ''}${e.message}${expected}`;
}
