import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ArenaViews } from './arena.js';
import { unwindPackageDir } from './assets.js';

/**
 * Loading and calling the WebAssembly core (walk-core.wat). The build
 * compiles the WAT with wabt (scripts/build-wasm.mjs) to
 * dist/flat/walk-core.wasm; without it the batch walks run the JavaScript
 * twin (flat/walk.ts), which gives the same outcomes, only slower. The
 * project's TypeScript lib has no DOM types, so the few parts of the
 * WebAssembly API used here are declared here.
 */

/** A WebAssembly.Memory, as far as it is used: shared, so workers walk it in place. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

const WASM = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** A shared memory of `pages` 64 KiB pages. */
export function sharedMemory(pages: number): WasmMemory {
  return new WASM.Memory({ initial: pages, maximum: pages, shared: true });
}

/** The core's export: walks tasks [first, first + count); returns the entries of the completed walks. */
type CoreWalk = (
  first: number,
  count: number,
  mode: number,
  size: number,
  tasks: number,
  kernel: number,
  verdicts: number,
  trace: number,
  starts: number,
  ends: number,
  pages: number,
) => number;

let core: object | null | undefined;

/** The compiled core, or null when the build has not made it. */
export function walkCoreModule(): object | null {
  if (core === undefined) {
    try {
      core = new WASM.Module(
        readFileSync(join(unwindPackageDir(), 'dist', 'flat', 'walk-core.wasm')),
      );
    } catch {
      core = null;
    }
  }
  return core;
}

/** Uses `bytes` as the core (a test that compiles the WAT itself). */
export function useWalkCore(bytes: Uint8Array): void {
  core = new WASM.Module(bytes);
}

const instances = new WeakMap<WasmMemory, CoreWalk>();

/** The core's walk over `a`'s memory, or null when there is no core. */
export function coreWalkOf(a: ArenaViews): CoreWalk | null {
  let walk = instances.get(a.memory);
  if (walk === undefined) {
    const module = walkCoreModule();
    if (module === null) return null;
    walk = new WASM.Instance(module, { env: { mem: a.memory } }).exports.walk as CoreWalk;
    instances.set(a.memory, walk);
  }
  return walk;
}
