import { type Addr, addrHi, addrLo, foldAddress } from '@klpsim/arm64';
import { type Machine, ptrauthStripInsnPac, type Task } from '@klpsim/kernel';
import type { ChainTemplate } from './environment.js';

/**
 * Stack images of chains whose functions run in patched code. A task that
 * enters a patched function after it switched runs the version the ftrace
 * handler gives it, so its stack holds return addresses into the new
 * function, not the old one (the real `unuser` transition blocks on
 * exactly that). Such an image is the template's stack copied to an
 * address range of its own, every pointer into the old stack moved with
 * it, and the return addresses of the relocated frames rewritten (left
 * unsigned: stripping PAC from an unsigned kernel address changes nothing).
 * Images are made once per (template, versions) and shared.
 */
export class StackImages {
  private next: Addr;
  private readonly cache = new Map<string, ChainTemplate>();

  constructor(private readonly machine: Machine) {
    const regions = machine.memory.list();
    const top = regions.length === 0 ? 0 : regions[regions.length - 1]!.end;
    // Well above everything mapped, aligned like a VMAP stack (THREAD_ALIGN = 2 * THREAD_SIZE).
    const align = 2 * machine.config.threadSize;
    this.next = Math.ceil(top / align) * align + 64 * align;
  }

  /**
   * `t` with frame i's pc replaced by `pcs[i]` where that is not undefined.
   * `key` names the combination (the caller's cache key). Frames that are
   * not plain frame records (a tracer's rewrite, an exception boundary) stay
   * as they are.
   */
  variant(t: ChainTemplate, pcs: readonly (Addr | undefined)[], key: string): ChainTemplate {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const made = this.make(t, pcs);
    this.cache.set(key, made);
    return made;
  }

  private make(t: ChainTemplate, pcs: readonly (Addr | undefined)[]): ChainTemplate {
    const old = t.task.stack;
    if (old.region === null) return t;
    const size = old.high - old.low;
    const align = 2 * this.machine.config.threadSize;
    const low = this.next;
    this.next += Math.ceil(size / align) * align + align;
    const delta = low - old.low;
    const mapped = this.machine.memory.map(
      `livepatch image of ${t.task.comm}:${t.task.pid}`,
      low,
      old.region.bytes.subarray(0, size),
    );
    if (!mapped.ok) return t;
    const w = mapped.value.words;
    const move = (a: Addr): Addr => (a >= old.low && a < old.high ? a + delta : a);
    for (let i = 0; i + 1 < w.length; i += 2) {
      const a = foldAddress(w[i + 1]!, w[i]!);
      if (a >= old.low && a < old.high) {
        w[i] = addrLo(a + delta);
        w[i + 1] = addrHi(a + delta);
      }
    }
    const chain = t.chain.slice();
    const cfg = this.machine.config;
    let fp = move(t.task.cpuContext.fp);
    for (let i = 1; i < chain.length && fp >= low && fp + 16 <= low + size; i++) {
      const k = (fp - low) / 4;
      const lr = ptrauthStripInsnPac(cfg, w[k + 3]!, w[k + 2]!);
      if (lr !== t.chain[i]) break;
      const pc = pcs[i];
      if (pc !== undefined) {
        w[k + 2] = addrLo(pc);
        w[k + 3] = addrHi(pc);
        chain[i] = pc;
      }
      fp = foldAddress(w[k + 1]!, w[k]!);
    }
    const task: Task = {
      ...t.task,
      cpuContext: {
        ...t.task.cpuContext,
        fp: move(t.task.cpuContext.fp),
        sp: move(t.task.cpuContext.sp),
      },
      stack: { low, high: low + size, region: mapped.value },
      ptRegs: move(t.task.ptRegs),
      finalFrame: move(t.task.finalFrame),
      retStack:
        t.task.retStack === null
          ? null
          : {
              ...t.task.retStack,
              entries: t.task.retStack.entries.map((e) => ({ ...e, retp: move(e.retp) })),
            },
      kretprobes: t.task.kretprobes.map((k) => ({ ...k, fp: move(k.fp) })),
    };
    // The base is the task's identity: only frames above it are ever relocated.
    const names = chain.map((a) => this.machine.kallsyms.lookup(a)?.name ?? '?');
    return { ...t, task, chain, names };
  }
}
