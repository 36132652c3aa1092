import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * WebAssembly is an optimisation, never a requirement: under `node
 * --jitless` (no WebAssembly at all) the simulation keeps its tables in
 * plain ArrayBuffers (RowMemory) and must print the same bytes.
 */
describe('without WebAssembly', () => {
  it('the CLI gives the same transition without WebAssembly (node --jitless)', () => {
    const bin = fileURLToPath(new URL('../bin/klpsim.js', import.meta.url));
    const scenario = fileURLToPath(
      new URL('../../../examples/cond-resched.scenario.json', import.meta.url),
    );
    const run = (flags: string[]) =>
      spawnSync(process.execPath, [...flags, bin, 'transition', scenario, '--json'], {
        encoding: 'utf8',
      });
    const plain = run([]);
    const jitless = run(['--jitless']);
    expect(plain.status).toBe(0);
    expect(jitless.status).toBe(plain.status);
    expect(jitless.stdout).toBe(plain.stdout);
  }, 60_000);
});
