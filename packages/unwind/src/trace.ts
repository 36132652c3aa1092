import type { Addr } from '@klpsim/arm64';

/**
 * The trace buffer behind `stack_trace_save_tsk_reliable` and friends
 * (kernel/stacktrace.c, `stack_trace_consume_entry`): entries are stored
 * until the buffer is full, and storing the last slot already refuses the
 * next, so a reliable walk that fills the buffer fails.
 */
export class TraceBuffer {
  size = 0;
  len = 0;
  /** Each entry's pc folded (NaN when not canonical), for range checks and symbols. */
  pcs: Float64Array = new Float64Array(0);
  /** Each entry's pc exactly, as the kernel stores it: high and low 32 bits. */
  his: Uint32Array = new Uint32Array(0);
  los: Uint32Array = new Uint32Array(0);
  /** Each entry's `Source`, flags and stack type in one byte (`entryKind`): one store per entry. */
  kinds: Uint8Array = new Uint8Array(0);

  /** Empties the buffer, growing it to `size` slots if needed. */
  reset(size: number): void {
    if (this.pcs.length < size) {
      this.pcs = new Float64Array(size);
      this.his = new Uint32Array(size);
      this.los = new Uint32Array(size);
      this.kinds = new Uint8Array(size);
    }
    this.size = size;
    this.len = 0;
  }

  /** `stack_trace_consume_entry`: false when the entry could not be stored or filled the buffer. */
  store(pc: Addr, hi: number, lo: number, source: number, flags: number, stack: number): boolean {
    const n = this.len;
    if (n >= this.size) return false;
    this.pcs[n] = pc;
    this.his[n] = hi;
    this.los[n] = lo;
    this.kinds[n] = entryKind(source, flags, stack);
    this.len = n + 1;
    return n + 1 < this.size;
  }
}

/**
 * One byte for an entry's `Source` (bits 0-2), FLAG_FGRAPH / FLAG_KRETPROBE
 * (bits 3-4) and the `StackType` its record was read from (bits 5-7; 0 for
 * the starting pc).
 */
export function entryKind(source: number, flags: number, stack: number): number {
  return source | (flags << 3) | (stack << 5);
}

/** The `Source` of entry `i`. */
export function entrySource(t: TraceBuffer, i: number): number {
  return t.kinds[i]! & 7;
}

/** The flags of entry `i`. */
export function entryFlags(t: TraceBuffer, i: number): number {
  return (t.kinds[i]! >> 3) & 3;
}

/** The `StackType` of entry `i`. */
export function entryStack(t: TraceBuffer, i: number): number {
  return t.kinds[i]! >> 5;
}
