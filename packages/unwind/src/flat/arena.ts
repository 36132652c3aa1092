import { addrHi, addrLo, TWO_32 } from '@klpsim/arm64';
import type { Machine, Task } from '@klpsim/kernel';
import { sharedMemory, type WasmMemory } from './wasm.js';

/**
 * A snapshot of every task stack of one machine in one arena, for the flat
 * walks (the WebAssembly core, walk-core.wat, and its JavaScript twin,
 * flat/walk.ts), the batch API, its worker threads and the C reference.
 *
 * The object model (Task -> stack -> region -> Uint32Array) costs a chain of
 * dependent loads before a walk's first record, and keeps fp and pc as
 * doubles. Here everything lives in one shared WebAssembly memory (its
 * buffer a SharedArrayBuffer, so worker threads walk it in place): a kernel
 * block, one 48-byte row per task, the SYM_CODE ranges, every task stack one
 * after the other, and room for outcomes and traces. Addresses are exact
 * 64-bit little-endian values: the core reads them as i64, JavaScript as
 * two int32 halves (low word first). A stack or core text that straddles a
 * 4 GiB boundary is not flat: its walks go to the reference code.
 *
 * A snapshot: memory written after `buildStackArena` is not seen; build a
 * new arena after changing stacks.
 */

/** Byte offsets inside a task row (TASK_BYTES each, from `layout.tasks`). */
export const T_FLAT = 0; // i32 1: the flat walk may start here; 0: hand every walk back
export const T_BASE = 4; // i32 byte offset of the stack's lowest byte in the arena
export const T_SIZE = 8; // i32 stack size in bytes
export const T_STACK = 16; // i64 the stack's low address
export const T_FP = 24; // i64 `thread.cpu_context.fp`
export const T_PC = 32; // i64 `thread.cpu_context.pc`
export const T_FINAL = 40; // i64 `&task_pt_regs(task)->stackframe`; 0 when the task has none
export const TASK_BYTES = 48;

/** Byte offsets inside the kernel block (at 0): what every walk of this kernel compares against. */
export const K_KMASK = 0; // i64 PAC bits set in a kernel return address, already shifted (0 without kernel PAC)
export const K_RTH = 8; // i64 return_to_handler (0 when absent: no kernel address is 0)
export const K_KR = 16; // i64 __kretprobe_trampoline
export const K_META_TYPE = 24; // i32 byte offset of the meta record's type (-1: no meta records)
export const K_META_FINAL = 32; // i64 FRAME_META_TYPE_FINAL
export const K_META_SIZE = 40; // i32 bytes of a meta record
export const K_TEXT_OK = 44; // i32 1: core text lies under one high half and below 2 GiB
export const K_TEXT = 48; // i64 _stext
export const K_TEXT_SIZE = 56; // i32 _etext - _stext
export const K_SYMCODE_N = 60; // i32 SYM_CODE ranges (their union) inside core text
export const KERNEL_BYTES = 64;

/** Trace scratch per thread (the main thread's and each worker's), in entries. */
export const TRACE_ENTRIES = 4096;
/** Threads that may walk one arena at once: the main thread and up to 8 workers. */
export const MAX_THREADS = 9;

const PAGE_SHIFT = 12;
const WASM_PAGE = 65536;

/** Where each part of the arena starts, in bytes. */
export interface ArenaLayout {
  readonly tasks: number;
  /** SYM_CODE starts then ends, i32 offsets from `_stext`; `nsym` of each. */
  readonly symCode: number;
  readonly nsym: number;
  /** One byte per 4 KiB page of core text: 1 where some SYM_CODE range touches it. */
  readonly pages: number;
  readonly npages: number;
  /** One i32 outcome per task. */
  readonly verdicts: number;
  /** MAX_THREADS slots of TRACE_ENTRIES i64 entries. */
  readonly traces: number;
  /** The task stacks. */
  readonly words: number;
  readonly bytes: number;
}

/** What a worker thread receives: the shared memory and where things are in it. */
export interface SharedStackArena {
  readonly ntasks: number;
  readonly memory: WasmMemory;
  readonly layout: ArenaLayout;
}

/** The arena as a walk reads it (in the main thread or a worker). */
export interface ArenaViews extends SharedStackArena {
  /** The whole arena as int32 words (an i64 is two: low, then high). */
  readonly m32: Int32Array;
  readonly m8: Uint8Array;
  /** Each task's outcome from the last batch walk: entries, or HANDED_BACK. */
  readonly verdicts: Int32Array;
}

export interface StackArena extends ArenaViews {
  /** The machine this is a snapshot of (not shared with workers). */
  readonly machine: Machine;
}

/** True when `[low, high)` is 8-aligned, in the kernel half, under one high half, and below 2 GiB long. */
function isFlatRange(low: number, high: number): boolean {
  return (
    Number.isFinite(low) &&
    Number.isFinite(high) &&
    low >= 0 &&
    high > low &&
    low % 8 === 0 &&
    high % 8 === 0 &&
    high - low < 2 ** 31 &&
    Math.floor(low / TWO_32) === Math.floor((high - 1) / TWO_32)
  );
}

/** Whether a task's walk can start flat: a kernel fp and pc, and its whole stack in memory. */
function flatTask(t: Task): boolean {
  const s = t.stack;
  return (
    isFlatRange(s.low, s.high) &&
    s.region !== null &&
    s.region.start <= s.low &&
    s.region.end >= s.high &&
    t.cpuContext.fp >= 0 &&
    t.cpuContext.pc >= 0
  );
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** The union of `machine`'s SYM_CODE ranges clipped to core text, as offsets from `_stext`. */
function symCodeOffsets(machine: Machine): { starts: number[]; ends: number[] } {
  const core = machine.text.core;
  const starts: number[] = [];
  const ends: number[] = [];
  // `ranges` is sorted by start.
  for (const r of machine.symCode.ranges) {
    const s = Math.max(r.start, core.start) - core.start;
    const e = Math.min(r.end, core.end) - core.start;
    if (e <= s) continue;
    const last = ends.length - 1;
    if (last >= 0 && s <= ends[last]!) ends[last] = Math.max(ends[last]!, e);
    else {
      starts.push(s);
      ends.push(e);
    }
  }
  return { starts, ends };
}

/** Stores the 64-bit value a folded kernel address stands for at byte `at`. */
function put64(m32: Int32Array, at: number, a: number): void {
  m32[at >> 2] = addrLo(a) | 0;
  m32[(at >> 2) + 1] = addrHi(a) | 0;
}

/** Copies every task stack of `machine` into one shared arena. Never fails: a task that does not fit is marked not flat. */
export function buildStackArena(machine: Machine): StackArena {
  const list = machine.tasks;
  const core = machine.text.core;
  const textOk = isFlatRange(core.start, core.end);
  const sym = textOk ? symCodeOffsets(machine) : { starts: [], ends: [] };
  const npages = textOk ? Math.ceil((core.end - core.start) / 2 ** PAGE_SHIFT) : 0;
  let stackBytes = 0;
  for (const t of list) if (flatTask(t)) stackBytes += t.stack.high - t.stack.low;
  const tasks = KERNEL_BYTES;
  const symCode = tasks + list.length * TASK_BYTES;
  const pages = symCode + sym.starts.length * 8;
  const verdicts = align8(pages + npages);
  const traces = align8(verdicts + list.length * 4);
  const words = traces + MAX_THREADS * TRACE_ENTRIES * 8;
  const bytes = words + stackBytes;
  const layout: ArenaLayout = {
    tasks,
    symCode,
    nsym: sym.starts.length,
    pages,
    npages,
    verdicts,
    traces,
    words,
    bytes,
  };
  const size = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  const memory = sharedMemory(size);
  const m32 = new Int32Array(memory.buffer);
  const m8 = new Uint8Array(memory.buffer);

  let next = words;
  list.forEach((t, i) => {
    if (!flatTask(t)) return;
    const row = tasks + i * TASK_BYTES;
    const s = t.stack;
    const region = s.region!;
    const n = s.high - s.low;
    m8.set(region.bytes.subarray(s.low - region.start, s.low - region.start + n), next);
    m32[(row + T_FLAT) >> 2] = 1;
    m32[(row + T_BASE) >> 2] = next;
    m32[(row + T_SIZE) >> 2] = n;
    put64(m32, row + T_STACK, s.low);
    put64(m32, row + T_FP, t.cpuContext.fp);
    put64(m32, row + T_PC, t.cpuContext.pc);
    if (t.finalFrame >= 0) put64(m32, row + T_FINAL, t.finalFrame);
    next += n;
  });

  const cfg = machine.config;
  m32[(K_KMASK >> 2) + 1] = cfg.kernelPacEnabled ? cfg.pacKernelMask | 0 : 0;
  const rth = machine.special.returnToHandler;
  const kr = machine.special.kretprobeTrampoline;
  if (rth !== null && rth >= 0) put64(m32, K_RTH, rth);
  if (kr !== null && kr >= 0) put64(m32, K_KR, kr);
  const meta = cfg.ptRegs.meta;
  m32[K_META_TYPE >> 2] = meta === null ? -1 : meta.typeOffset;
  m32[K_META_FINAL >> 2] = meta === null ? -1 : meta.typeFinal;
  m32[K_META_SIZE >> 2] = meta === null ? 0 : meta.size;
  m32[K_TEXT_OK >> 2] = textOk ? 1 : 0;
  if (textOk) {
    put64(m32, K_TEXT, core.start);
    m32[K_TEXT_SIZE >> 2] = core.end - core.start;
  }
  m32[K_SYMCODE_N >> 2] = sym.starts.length;
  for (let i = 0; i < sym.starts.length; i++) {
    m32[(symCode >> 2) + i] = sym.starts[i]!;
    m32[(symCode >> 2) + sym.starts.length + i] = sym.ends[i]!;
    for (let p = sym.starts[i]! >>> PAGE_SHIFT; p << PAGE_SHIFT < sym.ends[i]!; p++)
      m8[pages + p] = 1;
  }
  return { machine, ...viewsOf({ ntasks: list.length, memory, layout }) };
}

/** The arena's shared parts, to post to a worker thread (nothing is copied). */
export function shareStackArena(a: StackArena): SharedStackArena {
  return { ntasks: a.ntasks, memory: a.memory, layout: a.layout };
}

/** Views over a shared arena (in a worker, or for `buildStackArena`). */
export function viewsOf(s: SharedStackArena): ArenaViews {
  const buffer = s.memory.buffer;
  return {
    ...s,
    m32: new Int32Array(buffer),
    m8: new Uint8Array(buffer),
    verdicts: new Int32Array(buffer, s.layout.verdicts, s.ntasks),
  };
}
