import { describe, expect, it } from 'vitest';
import { RowMemory } from '../src/sim/columns.js';

/**
 * The task table's and the event queue's memory: a plain ArrayBuffer while
 * small, a page-aligned WebAssembly memory once large, a plain ArrayBuffer
 * again where no WebAssembly memory can be had. Whichever it is, growing
 * keeps every byte and adds zeros (and the simulation's output is the same
 * without WebAssembly: packages/cli/test/jitless.test.ts).
 */
describe('RowMemory', () => {
  it('keeps its bytes and adds zeros as it grows past the aligned threshold and on', () => {
    const m = new RowMemory(64);
    const fill = (from: number, to: number) => {
      const b = new Uint8Array(m.buffer);
      for (let i = from; i < to; i++) b[i] = (i * 7 + 3) & 0xff;
    };
    const check = (to: number) => {
      const b = new Uint8Array(m.buffer);
      for (let i = 0; i < to; i += 4093) expect(b[i]).toBe((i * 7 + 3) & 0xff);
      for (let i = to; i < b.length; i += 4093) expect(b[i]).toBe(0);
    };
    fill(0, 64);
    let size = 64;
    // 64 B, 1 MiB (plain), 8 MiB (past 4 MiB: WebAssembly where it can), 20 MiB (grown in place).
    for (const next of [1 << 20, 8 << 20, 20 << 20]) {
      expect(m.ensure(next)).toBe(true);
      expect(m.buffer.byteLength).toBeGreaterThanOrEqual(next);
      check(size);
      fill(size, next);
      size = next;
    }
    expect(m.ensure(size)).toBe(false);
    check(size);
  });
});
