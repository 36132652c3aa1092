import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The real captures that ship with klpsim (fixtures/captures, copied from the
 * project's shared ground truth), so a fresh clone has them.
 */
const ROOT = fileURLToPath(new URL('../../../fixtures/captures/', import.meta.url));

export const BUNDLED_CAPTURES = [
  `${ROOT}linux-6.1-arm64-plain/capture.json`,
  `${ROOT}linux-7.2-arm64-plain/capture.json`,
  // Tracers on, kretprobes, a sleeping kernel fault, IRQ preemption (gzipped).
  `${ROOT}linux-7.2-arm64-hard/capture.json.gz`,
] as const;

export const DEFAULT_BENCH_CAPTURE = BUNDLED_CAPTURES[0];

/** The bundled captures that are present (all of them in a checkout). */
export function bundledCaptures(): string[] {
  return BUNDLED_CAPTURES.filter((f) => existsSync(f));
}
