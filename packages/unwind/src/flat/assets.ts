import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let dir: string | undefined;

/**
 * The @klpsim/unwind package's folder, where its built assets live
 * (dist/flat/walk-core.wasm, dist/flat/worker.js, and in a checkout
 * bench/walk-reference.c). From this package's own src/ or dist/ it is two
 * folders up; when a bundler has copied this code into another package's
 * bundle (the klpsim command is one), import.meta.url names the bundle, so
 * the package is found the way the bundle's own imports would find it.
 */
export function unwindPackageDir(): string {
  if (dir !== undefined) return dir;
  const here = fileURLToPath(new URL('../../', import.meta.url));
  if (isUnwindPackage(here)) {
    dir = here;
    return dir;
  }
  // The entry point (dist/index.js) resolved from the bundle: its folder's parent is the package.
  dir = dirname(dirname(createRequire(import.meta.url).resolve('@klpsim/unwind')));
  return dir;
}

function isUnwindPackage(d: string): boolean {
  const pkg = join(d, 'package.json');
  if (!existsSync(pkg)) return false;
  try {
    return (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === '@klpsim/unwind';
  } catch {
    return false;
  }
}
