/** The typed arrays the simulation keeps its per-task and per-event state in, and their memory. */
export type Column = Float64Array | Int32Array | Uint32Array | Uint8Array | Int8Array;

/** A copy of `a` in a column of `size` entries (the rest zero): how every column grows. */
export function grown<T extends Column>(a: T, size: number): T {
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
}

/** A WebAssembly page: the unit a WasmMemory grows by. */
export const WASM_PAGE = 65536;

/** The part of WebAssembly.Memory used here (the project's TypeScript lib has no DOM types). */
export interface GrowableMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/**
 * WebAssembly.Memory: a growable ArrayBuffer whose start is page-aligned,
 * which a plain ArrayBuffer's is not (so rows of a power-of-two size never
 * straddle two cache lines). Growing it detaches the old buffer: views are
 * made again after each grow.
 */
export const WasmMemory = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number }) => GrowableMemory };
  }
).WebAssembly.Memory;
