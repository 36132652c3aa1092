import { join } from 'node:path';
import type { ArenaViews } from './arena.js';
import { unwindPackageDir } from './assets.js';

/**
 * The stack arena as one file, for klpsim's C reference walker
 * (bench/walk-reference.c), which `klpsim bench walk` builds with the system
 * C compiler and runs on the same inputs as the flat walks: a header of
 * little-endian int32s (magic, version, tasks, SYM_CODE ranges, flat mode,
 * buffer size, then the layout's offsets: tasks, SYM_CODE, pages, page
 * count, stacks, bytes), then the arena's bytes as they are in memory.
 */

const MAGIC = 0x41504c4b; // "KLPA"
const VERSION = 2;

/** The C reference walker's source, in the repository beside the package's dist/ (not in the published package). */
export function cReferenceSource(): string {
  return join(unwindPackageDir(), 'bench', 'walk-reference.c');
}

/** The parts of the file, in order (write them one after the other). */
export function stackArenaFileParts(a: ArenaViews, mode: number, size: number): Uint8Array[] {
  const l = a.layout;
  const header = Int32Array.of(
    MAGIC,
    VERSION,
    a.ntasks,
    l.nsym,
    mode,
    size,
    l.tasks,
    l.symCode,
    l.pages,
    l.npages,
    l.words,
    l.bytes,
  );
  // A copy: the arena is shared memory, which file writes do not take.
  return [new Uint8Array(header.buffer), a.m8.slice(0, l.bytes)];
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
