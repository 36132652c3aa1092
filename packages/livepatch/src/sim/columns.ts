/** The typed arrays the simulation keeps its per-task and per-event state in. */
export type Column = Float64Array | Int32Array | Uint32Array | Uint8Array | Int8Array;

/** A copy of `a` in a column of `size` entries (the rest zero): how every column grows. */
export function grown<T extends Column>(a: T, size: number): T {
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
}
