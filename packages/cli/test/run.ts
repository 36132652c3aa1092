import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { main } from '../src/main.js';

export const CAP61 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-6.1-arm64-plain/capture.json', import.meta.url),
);
export const CAP72 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-7.2-arm64-plain/capture.json', import.meta.url),
);

/** Runs the CLI in-process: exit code, stdout, stderr. */
export async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  let err = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  try {
    return { code: await main(argv, (s) => out.push(s)), out: out.join('\n'), err };
  } finally {
    spy.mockRestore();
  }
}
