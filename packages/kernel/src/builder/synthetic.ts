import { KTHREAD_TAIL, SCHEDULE_TOP, SYSCALL_TAIL } from './catalogue.js';
import type { FrameDesc, KernelDesc, TaskDesc } from './describe.js';

/**
 * A large, deterministic kernel for benchmarks: `tasks` blocked tasks whose
 * chains climb a fixed random call graph, so every function is called from a
 * handful of sites, as in a real kernel, and chain depths average `meanDepth`.
 */
export interface SyntheticOptions {
  readonly tasks: number;
  readonly meanDepth?: number;
  readonly seed?: number;
  readonly layout?: 'mainline' | 'linux-6.1';
  /** Functions in the call graph. */
  readonly functions?: number;
}

/** A small, fast, seeded PRNG (mulberry32): same seed, same kernel, on any machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The description of a synthetic kernel (build it with `buildMachine`). */
export function syntheticKernelDesc(options: SyntheticOptions): KernelDesc {
  const rand = mulberry32(options.seed ?? 1);
  const nfn = options.functions ?? 400;
  const meanDepth = options.meanDepth ?? 16;
  const names = Array.from({ length: nfn }, (_, i) => `synth_fn_${i.toString().padStart(3, '0')}`);
  // Each function calls one of four fixed children, so each has at most five call sites.
  const children = names.map(() => Array.from({ length: 4 }, () => Math.floor(rand() * nfn)));
  const entryChildren = (n: number) =>
    Array.from({ length: n }, () => Array.from({ length: 4 }, () => Math.floor(rand() * nfn)));
  const threadChildren = entryChildren(8);
  const syscallChildren = entryChildren(16);
  const tasks: TaskDesc[] = [];
  for (let t = 0; t < options.tasks; t++) {
    const user = rand() < 0.4;
    const tail = user ? SYSCALL_TAIL : KTHREAD_TAIL;
    // The outermost C function is one of a few thread functions or syscalls, as in a real kernel.
    const top = Math.floor(rand() * (user ? 16 : 8));
    const topName = user ? `__arm64_sys_synth_${top}` : `synth_thread_fn_${top}`;
    const fixed = SCHEDULE_TOP.length + tail.length + 1;
    // Middle frames so that depths spread evenly around the mean.
    const middle = Math.max(1, Math.round((meanDepth - fixed) * (0.5 + rand())));
    const outward: FrameDesc[] = [];
    let fn = (user ? syscallChildren : threadChildren)[top]![Math.floor(rand() * 4)]!;
    for (let i = 0; i < middle; i++) {
      outward.push({ fn: names[fn]!, frameSize: 32 + 16 * Math.floor(rand() * 4) });
      fn = children[fn]![Math.floor(rand() * 4)]!;
    }
    const chain: FrameDesc[] = [...SCHEDULE_TOP, ...outward.reverse(), { fn: topName }, ...tail];
    tasks.push({
      pid: 100 + t,
      comm: user ? `synth-user-${t}` : `synth-kthread-${t}`,
      frames: chain,
    });
  }
  return {
    release: `klpsim-synthetic-${options.tasks}`,
    layout: options.layout ?? 'mainline',
    functions: names.map((name) => ({ name, size: 0x400 })),
    tasks,
  };
}
