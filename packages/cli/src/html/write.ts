import { renameSync, rmSync, writeFileSync } from 'node:fs';
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
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CliError(
      'KLPSIM_OUTPUT_UNWRITABLE',
      `${flag} ${file}: cannot write: ${(e as Error).message}`,
    );
  }
}
