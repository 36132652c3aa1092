import { fileURLToPath } from 'node:url';
import { type ArenaViews, K_SYMCODE_N, KERNEL_SLOTS, TASK_STRIDE } from './arena.js';

/**
 * The stack arena as one file, for klpsim's C reference walker
 * (bench/walk-reference.c), which `klpsim bench walk` builds with the system
 * C compiler and runs on the same inputs as the flat walk. Little-endian
 * int32s: a header (magic, version, tasks, arena words, SYM_CODE ranges,
 * text pages, flat mode, buffer size), the kernel slots, the task table,
 * the SYM_CODE starts and ends, the page map (padded to 4 bytes), the arena.
 */

const MAGIC = 0x41504c4b; // "KLPA"
const VERSION = 1;

/** The C reference walker's source, in the repository beside the package's dist/ (not in the published package). */
export const C_REFERENCE_SOURCE = fileURLToPath(
  new URL('../../bench/walk-reference.c', import.meta.url),
);

/** The parts of the file, in order (write them one after the other). */
export function stackArenaFileParts(a: ArenaViews, mode: number, size: number): Uint8Array[] {
  const nsym = a.kernel[K_SYMCODE_N]!;
  const header = Int32Array.of(
    MAGIC,
    VERSION,
    a.ntasks,
    a.words.length,
    nsym,
    a.symCodePages.length,
    mode,
    size,
  );
  const bytes = (v: Int32Array | Uint8Array, n: number) =>
    new Uint8Array(v.buffer, v.byteOffset, n);
  const pages = new Uint8Array((a.symCodePages.length + 3) & ~3);
  pages.set(a.symCodePages);
  return [
    bytes(header, header.byteLength),
    bytes(a.kernel, KERNEL_SLOTS * 4),
    bytes(a.tasks, a.ntasks * TASK_STRIDE * 4),
    bytes(a.symCodeStarts, nsym * 4),
    bytes(a.symCodeEnds, nsym * 4),
    pages,
    bytes(a.words, a.words.length * 4),
  ];
}

/** FNV-1a over the little-endian bytes of `verdicts`: how the bench and the C reference compare outcomes. */
export function outcomeHash(verdicts: Int32Array, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < count; i++) {
    const v = verdicts[i]!;
    for (let b = 0; b < 4; b++) {
      h ^= (v >>> (8 * b)) & 0xff;
      h = Math.imul(h, 16777619) >>> 0;
    }
  }
  return h >>> 0;
}
