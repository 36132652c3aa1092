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
  pcs: Float64Array = new Float64Array(0);
  /** `Source` of each entry. */
  sources: Uint8Array = new Uint8Array(0);
  /** FLAG_FGRAPH / FLAG_KRETPROBE of each entry. */
  flags: Uint8Array = new Uint8Array(0);
  /** `StackType` of the stack the entry's record was read from (0 for the starting pc). */
  stacks: Uint8Array = new Uint8Array(0);

  /** Empties the buffer, growing it to `size` slots if needed. */
  reset(size: number): void {
    if (this.pcs.length < size) {
      this.pcs = new Float64Array(size);
      this.sources = new Uint8Array(size);
      this.flags = new Uint8Array(size);
      this.stacks = new Uint8Array(size);
    }
    this.size = size;
    this.len = 0;
  }

  /** `stack_trace_consume_entry`: false when the entry could not be stored or filled the buffer. */
  store(pc: Addr, source: number, flags: number, stack: number): boolean {
    const n = this.len;
    if (n >= this.size) return false;
    this.pcs[n] = pc;
    this.sources[n] = source;
    this.flags[n] = flags;
    this.stacks[n] = stack;
    this.len = n + 1;
    return n + 1 < this.size;
  }
}
