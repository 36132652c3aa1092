import { accessSync, constants, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CliError } from '../errors.js';

/**
 * Writes a report atomically: to a temporary file beside the target, then
 * renamed over it, so a failure leaves no half-written report behind.
 * `flag` names the option the path came from, for the error.
 */
export function writeFileAtomic(file: string, content: string, flag: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, content);
    renameSync(tmp, file);
    // Said on stderr, so stdout stays the result: where the page went.
    process.stderr.write(`klpsim: wrote ${file}\n`);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CliError(
      'KLPSIM_OUTPUT_UNWRITABLE',
      `${flag} ${file}: cannot write: ${(e as Error).message}`,
    );
  }
}

/** Checks, before any work, that `file` can be written: its folder exists and is writable. */
export function checkOutputPath(file: string, flag: string): void {
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new CliError(
      'KLPSIM_OUTPUT_UNWRITABLE',
      `${flag} ${file}: cannot write into ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  if (existsDir(file))
    throw new CliError(
      'KLPSIM_OUTPUT_UNWRITABLE',
      `${flag} ${file}: is a directory (expected a file name)`,
    );
}

function existsDir(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}
