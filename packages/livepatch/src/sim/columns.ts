/** The typed arrays the simulation keeps its per-task and per-event state in, and their memory. */
export type Column = Float64Array | Int32Array | Uint32Array | Uint8Array | Int8Array;

/** A copy of `a` in a column of `size` entries (the rest zero): how every column grows. */
export function grown<T extends Column>(a: T, size: number): T {
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
}

/** A WebAssembly page: the unit a WebAssembly memory grows by. */
const WASM_PAGE = 65536;

/** From this size on, rows go in page-aligned memory (below it they fit the caches anyway). */
const ALIGNED_FROM = 4 << 20;

/** The part of WebAssembly.Memory used here (the project's TypeScript lib has no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

type WasmMemoryConstructor = new (d: { initial: number }) => WasmMemory;

const WasmMemoryClass = (globalThis as { WebAssembly?: { Memory: WasmMemoryConstructor } })
  .WebAssembly?.Memory;

/** A WebAssembly memory of `bytes` (whole pages), or null where there is none to have. */
function wasmMemory(bytes: number): WasmMemory | null {
  if (WasmMemoryClass === undefined) return null;
  try {
    return new WasmMemoryClass({ initial: Math.ceil(bytes / WASM_PAGE) });
  } catch {
    // V8 reserves gigabytes of address space per memory: under an address-space limit
    // (ulimit -v), or with thousands of them alive, it refuses.
    return null;
  }
}

/**
 * The memory of a table of rows (the task table, the event queue's chunks):
 * once large, a WebAssembly memory, whose start is page-aligned where a plain
 * ArrayBuffer's is not, so that rows of a power-of-two size never straddle
 * two cache lines; small, or where WebAssembly memory cannot be had (no
 * WebAssembly, `node --jitless`, an address-space limit), a plain
 * ArrayBuffer, which only costs alignment. Growing gives a new `buffer`
 * (the old one is detached or dropped): views are made again after each
 * `ensure` that grows. New bytes are zero.
 */
export class RowMemory {
  buffer: ArrayBuffer;
  private wasm: WasmMemory | null = null;

  constructor(bytes: number) {
    this.buffer = new ArrayBuffer(0);
    this.ensure(bytes);
  }

  /** Makes `buffer` at least `bytes` long; whether it changed. */
  ensure(bytes: number): boolean {
    const have = this.buffer.byteLength;
    if (bytes <= have) return false;
    if (this.wasm !== null) {
      try {
        this.wasm.grow(Math.ceil((bytes - have) / WASM_PAGE));
        this.buffer = this.wasm.buffer;
        return true;
      } catch {
        // Past what the memory may reserve: a plain buffer, copied.
        this.wasm = null;
      }
    }
    const wasm = bytes >= ALIGNED_FROM ? wasmMemory(bytes) : null;
    const next = wasm?.buffer ?? new ArrayBuffer(bytes);
    new Uint8Array(next).set(new Uint8Array(this.buffer));
    this.wasm = wasm;
    this.buffer = next;
    return true;
  }
}
