import { vi } from 'vitest';
import { main } from '../src/main.js';

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
