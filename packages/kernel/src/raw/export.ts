import { type Addr, formatAddr, hex64 } from '@klpsim/arm64';
import type { CpuStack, Machine } from '../machine.js';
import type { MemoryRegion } from '../memory.js';
import type { Task } from '../task.js';
import type { TextRange } from '../text.js';
import type { RawState } from './schema.js';

/** What `rawFromMachine` keeps. */
export interface RawExportOptions {
  /** The tasks to keep (default: all). */
  readonly tasks?: readonly Task[];
  /**
   * `all`: every mapped region and every symbol (a built machine is small).
   * `stacks`: only the tasks' stacks, and only the symbols that name the
   * given addresses, with their successors so that `%pS` sizes them right
   * (a real capture's text dump and kallsyms are megabytes).
   */
  readonly scope?: 'all' | { readonly symbolize: readonly Addr[] };
}

const range = (r: TextRange) => ({
  name: r.name,
  start: formatAddr(r.start),
  end: formatAddr(r.end),
});
const stack = (s: CpuStack | null) =>
  s === null ? null : { low: formatAddr(s.low), high: formatAddr(s.high) };
/** A region as its size and its runs of non-zero 8-byte words. */
function region(r: MemoryRegion): RawState['memory'][number] {
  const chunks: { offset: number; base64: string }[] = [];
  const w = r.words;
  let i = 0;
  while (i < w.length) {
    if ((w[i]! | w[i + 1]!) === 0) {
      i += 2;
      continue;
    }
    // A run ends at four zero words in a row (shorter gaps stay inside it).
    let j = i + 2;
    while (
      j < w.length &&
      !(j + 3 < w.length
        ? (w[j]! | w[j + 1]! | w[j + 2]! | w[j + 3]!) === 0
        : (w[j]! | w[j + 1]!) === 0)
    )
      j += 2;
    chunks.push({
      offset: i * 4,
      base64: Buffer.from(r.bytes.subarray(i * 4, j * 4)).toString('base64'),
    });
    i = j;
  }
  return { name: r.name, start: formatAddr(r.start), size: r.end - r.start, chunks };
}

/** A Machine as raw state (see schema.ts); the inverse of `machineFromRaw` for what it keeps. */
export function rawFromMachine(machine: Machine, options: RawExportOptions = {}): RawState {
  const tasks = options.tasks ?? machine.tasks;
  const scope = options.scope ?? 'all';
  const m = machine;
  const memory =
    scope === 'all'
      ? m.memory.list().map(region)
      : tasks.flatMap((t) => (t.stack.region === null ? [] : [region(t.stack.region)]));
  const core = m.kallsyms.coreSymbols();
  let keep: Set<number>;
  if (scope === 'all') keep = new Set(core.map((_, i) => i));
  else keep = symbolsFor(core, scope.symbolize);
  const symbols: RawState['symbols'] = core
    .filter((_, i) => keep.has(i))
    .map((s) => ({ name: s.name, address: formatAddr(s.address) }));
  for (const mod of m.text.loadedModules())
    for (const s of m.kallsyms.moduleSymbols(mod.name))
      symbols.push({ name: s.name, address: formatAddr(s.address), module: mod.name });
  const meta = m.config.ptRegs.meta;
  return {
    release: m.config.release,
    vaBits: m.config.vaBits,
    kernelPacEnabled: m.config.kernelPacEnabled,
    threadSize: m.config.threadSize,
    ptRegs: {
      size: m.config.ptRegs.size,
      stackframeOffset: m.config.ptRegs.stackframeOffset,
      pcOffset: m.config.ptRegs.pcOffset,
      regs29Offset: m.config.ptRegs.regs29Offset,
      meta: meta === null ? null : { ...meta },
    },
    memory,
    text: {
      core: range(m.text.core),
      init: m.text.init === null ? null : range(m.text.init),
      initFreed: m.text.initFreed,
      sections: m.text.sections.map(range),
      modules: m.text.loadedModules().map(range),
      generated: m.text.generatedAreas().map((g) => ({ ...range(g), kind: g.kind })),
    },
    symCode: m.symCode.ranges.map(range),
    symbols,
    special: {
      returnToHandler: opt(m.special.returnToHandler),
      kretprobeTrampoline: opt(m.special.kretprobeTrampoline),
      retFromFork: opt(m.special.retFromFork),
      switchTo: m.special.switchTo === null ? null : range(m.special.switchTo),
      schedule: m.special.schedule === null ? null : range(m.special.schedule),
    },
    cpus: m.cpus.map((c) => ({
      irqStack: stack(c.irqStack),
      overflowStack: stack(c.overflowStack),
      sdeiNormalStack: stack(c.sdeiNormalStack),
      sdeiCriticalStack: stack(c.sdeiCriticalStack),
      ...(c.efiStack !== null ? { efiStack: stack(c.efiStack) } : {}),
    })),
    tasks: tasks.map((t) => ({
      pid: t.pid,
      comm: t.comm,
      kthread: t.kthread,
      state: t.state,
      cpu: t.cpu,
      cpuContext: {
        fp: formatAddr(t.cpuContext.fp),
        sp: formatAddr(t.cpuContext.sp),
        pc: formatAddr(t.cpuContext.pc),
      },
      stack: { low: formatAddr(t.stack.low), high: formatAddr(t.stack.high) },
      ptRegs: formatAddr(t.ptRegs),
      finalFrame: formatAddr(t.finalFrame),
      fgraph:
        t.retStack === null
          ? null
          : {
              layout: t.retStack.layout,
              curr: t.retStack.curr,
              entries: t.retStack.entries.map((e) => ({
                pos: e.pos,
                ret: hex64(e.retHi, e.retLo),
                func: formatAddr(e.func),
                retp: hex64(e.retpHi, e.retpLo),
              })),
            },
      kretprobes: t.kretprobes.map((k) => ({
        retAddr: hex64(k.retAddrHi, k.retAddrLo),
        fp: hex64(k.fpHi, k.fpLo),
      })),
    })),
  };
}

function opt(a: Addr | null): string | null {
  return a === null ? null : formatAddr(a);
}

/** Indices of the symbols at the address holding each of `addrs` and at the next address (aliases included). */
function symbolsFor(core: readonly { address: Addr }[], addrs: readonly Addr[]): Set<number> {
  const keep = new Set<number>();
  const takeAll = (at: Addr, from: number) => {
    for (let j = from; j >= 0 && core[j]!.address === at; j--) keep.add(j);
    for (let j = from; j < core.length && core[j]!.address === at; j++) keep.add(j);
  };
  for (const a of addrs) {
    if (Number.isNaN(a)) continue;
    let lo = 0;
    let hi = core.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (core[mid]!.address <= a) lo = mid + 1;
      else hi = mid;
    }
    const i = lo - 1;
    if (i < 0) continue;
    takeAll(core[i]!.address, i);
    if (lo < core.length) takeAll(core[lo]!.address, lo);
  }
  return keep;
}
