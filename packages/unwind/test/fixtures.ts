import { fileURLToPath } from 'node:url';
import { formatInputError, type LoadedCapture, loadCapture } from '@klpsim/kernel';

/** The real captures bundled with the repo (copied from the project's shared captures; the hard one gzipped). */
export const CAPTURE_61 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-6.1-arm64-plain/capture.json', import.meta.url),
);
export const CAPTURE_72 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-7.2-arm64-plain/capture.json', import.meta.url),
);

export const CAPTURE_72_HARD = fileURLToPath(
  new URL('../../../fixtures/captures/linux-7.2-arm64-hard/capture.json.gz', import.meta.url),
);

const cache = new Map<string, LoadedCapture>();

/** Loads a capture once per test file. */
export function capture(file: string): LoadedCapture {
  let c = cache.get(file);
  if (c === undefined) {
    const r = loadCapture(file);
    if (!r.ok) throw new Error(formatInputError(r.error));
    c = r.value;
    cache.set(file, c);
  }
  return c;
}

/** A trace as `address symbol` lines, the form the kernel's own traces are compared in. */
export const strip = (t: readonly { address: string; symbol: string }[]) =>
  t.map((e) => `${e.address} ${e.symbol}`);
