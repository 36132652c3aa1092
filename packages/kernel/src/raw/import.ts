import { type Addr, pacKernelMask, pacUserMask, parseAddr, parseHex64 } from '@klpsim/arm64';
import { fail, type InputError, ok, type Result } from '../errors.js';
import { Kallsyms, type KernelSymbol } from '../kallsyms.js';
import type { Cpu, CpuStack, Machine } from '../machine.js';
import { Memory } from '../memory.js';
import { SymCodeFunctions } from '../symcode.js';
import { kretprobeInstance, retStackEntry, type Task } from '../task.js';
import { KernelText, type TextRange } from '../text.js';
import { validate } from '../validate.js';
import { type RawState, rawStateSchema } from './schema.js';

/** Turns raw state into a Machine; every failure names the file and the JSON path. */
export function machineFromRaw(input: unknown, file: string, path = 'raw'): Result<Machine> {
  const parsed = validate(rawStateSchema, input, file);
  if (!parsed.ok) return fail({ ...parsed.error, field: `${path}.${parsed.error.field ?? ''}` });
  return new RawImporter(parsed.value, file, path).run();
}

class RawImporter {
  private readonly memory = new Memory();

  constructor(
    private readonly raw: RawState,
    private readonly file: string,
    private readonly path: string,
  ) {}

  private bad(field: string, message: string, expected: string): { ok: false; error: InputError } {
    return fail({
      code: 'KLPSIM_INPUT_INVALID',
      message,
      file: this.file,
      field: `${this.path}.${field}`,
      expected,
    });
  }

  /** A canonical address (kernel or user half), as every range and stack bound must be. */
  private addr(s: string, field: string): Result<Addr> {
    const a = parseAddr(s);
    if (a === null || Number.isNaN(a))
      return this.bad(field, `${s} is not a canonical address`, 'a kernel or user address');
    return ok(a);
  }

  private range(r: { name: string; start: string; end: string }, field: string): Result<TextRange> {
    const s = this.addr(r.start, `${field}.start`);
    if (!s.ok) return s;
    const e = this.addr(r.end, `${field}.end`);
    if (!e.ok) return e;
    if (e.value < s.value)
      return this.bad(`${field}.end`, 'the range ends before it starts', 'end >= start');
    return ok({ name: r.name, start: s.value, end: e.value });
  }

  private ranges(
    list: readonly { name: string; start: string; end: string }[],
    field: string,
  ): Result<TextRange[]> {
    const out: TextRange[] = [];
    for (const [i, r] of list.entries()) {
      const x = this.range(r, `${field}[${i}]`);
      if (!x.ok) return x;
      out.push(x.value);
    }
    return ok(out);
  }

  private stack(s: { low: string; high: string } | null, field: string): Result<CpuStack | null> {
    if (s === null) return ok(null);
    const r = this.range({ name: field, start: s.low, end: s.high }, field);
    if (!r.ok) return r;
    return ok({ low: r.value.start, high: r.value.end });
  }

  run(): Result<Machine> {
    const raw = this.raw;
    for (const [i, m] of raw.memory.entries()) {
      const start = this.addr(m.start, `memory[${i}].start`);
      if (!start.ok) return start;
      const mapped = this.memory.mapZeroed(m.name, start.value, m.size);
      if (!mapped.ok)
        return this.bad(`memory[${i}]`, mapped.error.message, '8-aligned, non-overlapping regions');
      for (const [j, c] of m.chunks.entries()) {
        const bytes = Buffer.from(c.base64, 'base64');
        if (c.offset + bytes.length > m.size)
          return this.bad(
            `memory[${i}].chunks[${j}]`,
            `${bytes.length} bytes at offset ${c.offset} run past the region`,
            `offset + length <= size (${m.size})`,
          );
        mapped.value.bytes.set(bytes, c.offset);
      }
    }
    const t = raw.text;
    const core = this.range(t.core, 'text.core');
    if (!core.ok) return core;
    const init = t.init === null ? ok(null) : this.range(t.init, 'text.init');
    if (!init.ok) return init;
    const sections = this.ranges(t.sections, 'text.sections');
    if (!sections.ok) return sections;
    const modules = this.ranges(t.modules, 'text.modules');
    if (!modules.ok) return modules;
    const text = new KernelText({ core: core.value, init: init.value, sections: sections.value });
    text.initFreed = t.initFreed;
    for (const m of modules.value) text.addModule(m);
    for (const [i, g] of t.generated.entries()) {
      const r = this.range(g, `text.generated[${i}]`);
      if (!r.ok) return r;
      text.addGenerated({ ...r.value, kind: g.kind });
    }
    const symCode = this.ranges(raw.symCode, 'symCode');
    if (!symCode.ok) return symCode;

    const core0: KernelSymbol[] = [];
    const bymod = new Map<string, KernelSymbol[]>();
    for (const [i, s] of raw.symbols.entries()) {
      const a = this.addr(s.address, `symbols[${i}].address`);
      if (!a.ok) return a;
      if (s.module === undefined) core0.push({ name: s.name, address: a.value, type: 't' });
      else {
        const l = bymod.get(s.module) ?? [];
        l.push({ name: s.name, address: a.value, type: 't', module: s.module });
        bymod.set(s.module, l);
      }
    }
    const coreSyms = core0
      .map((s, i) => ({ s, i }))
      .sort((x, y) => x.s.address - y.s.address || x.i - y.i)
      .map((x) => x.s);
    const kallsyms = new Kallsyms(coreSyms, {
      stext: core.value.start,
      etext: core.value.end,
      sinittext: init.value?.start ?? null,
      einittext: init.value?.end ?? null,
      end: null,
      all: false,
    });
    for (const m of modules.value)
      kallsyms.addModule(m.name, m.start, m.end, bymod.get(m.name) ?? []);

    const sp = raw.special;
    const opt = (s: string | null, field: string): Result<Addr | null> =>
      s === null ? ok(null) : this.addr(s, field);
    const rth = opt(sp.returnToHandler, 'special.returnToHandler');
    const krt = opt(sp.kretprobeTrampoline, 'special.kretprobeTrampoline');
    const rff = opt(sp.retFromFork, 'special.retFromFork');
    const sw = sp.switchTo === null ? ok(null) : this.range(sp.switchTo, 'special.switchTo');
    const sc = sp.schedule === null ? ok(null) : this.range(sp.schedule, 'special.schedule');
    for (const r of [rth, krt, rff, sw, sc]) if (!r.ok) return r;
    const val = <T>(r: Result<T | null> | Result<T>) => (r as { ok: true; value: T | null }).value;

    const cpus: Cpu[] = [];
    for (const [id, c] of raw.cpus.entries()) {
      const f = `cpus[${id}]`;
      const irq = this.stack(c.irqStack, `${f}.irqStack`);
      const ovf = this.stack(c.overflowStack, `${f}.overflowStack`);
      const sn = this.stack(c.sdeiNormalStack, `${f}.sdeiNormalStack`);
      const scr = this.stack(c.sdeiCriticalStack, `${f}.sdeiCriticalStack`);
      const efi = this.stack(c.efiStack ?? null, `${f}.efiStack`);
      for (const r of [irq, ovf, sn, scr, efi]) if (!r.ok) return r;
      cpus.push({
        id,
        online: true,
        irqStack: val(irq),
        overflowStack: val(ovf),
        sdeiNormalStack: val(sn),
        sdeiCriticalStack: val(scr),
        efiStack: val(efi),
      });
    }

    const tasks: Task[] = [];
    for (const [i, rt] of raw.tasks.entries()) {
      const task = this.task(rt, `tasks[${i}]`, cpus.length);
      if (!task.ok) return task;
      tasks.push(task.value);
    }
    const meta = raw.ptRegs.meta;
    return ok({
      config: {
        release: raw.release,
        vaBits: raw.vaBits,
        pacKernelMask: pacKernelMask(raw.vaBits),
        pacUserMask: pacUserMask(raw.vaBits),
        kernelPacEnabled: raw.kernelPacEnabled,
        threadSize: raw.threadSize,
        ptRegs: {
          size: raw.ptRegs.size,
          stackframeOffset: raw.ptRegs.stackframeOffset,
          pcOffset: raw.ptRegs.pcOffset,
          regs29Offset: raw.ptRegs.regs29Offset,
          meta: meta === null ? null : { ...meta },
        },
        kallsymsAll: false,
        functionGraphTracer: true,
        kretprobes: true,
        // A walk never reads it; livepatch's ftrace-location check falls back to the symbol lists.
        ftracePatchableEntry: false,
      },
      memory: this.memory,
      text,
      kallsyms,
      symCode: new SymCodeFunctions(symCode.value.map((r) => ({ ...r, source: 'vector' }))),
      special: {
        returnToHandler: val(rth),
        kretprobeTrampoline: val(krt),
        retFromFork: val(rff),
        switchTo: val(sw),
        schedule: val(sc),
      },
      cpus,
      tasks,
      skippedTasks: [],
    });
  }

  private task(rt: RawState['tasks'][number], f: string, nrCpus: number): Result<Task> {
    if (rt.cpu >= nrCpus)
      return this.bad(`${f}.cpu`, `cpu ${rt.cpu} is not in cpus[]`, `less than ${nrCpus}`);
    const fields = [
      ['cpuContext.fp', rt.cpuContext.fp],
      ['cpuContext.sp', rt.cpuContext.sp],
      ['cpuContext.pc', rt.cpuContext.pc],
      ['stack.low', rt.stack.low],
      ['stack.high', rt.stack.high],
      ['ptRegs', rt.ptRegs],
      ['finalFrame', rt.finalFrame],
    ] as const;
    const v: Addr[] = [];
    for (const [name, s] of fields) {
      const a = this.addr(s, `${f}.${name}`);
      if (!a.ok) return a;
      v.push(a.value);
    }
    const [fp, spv, pc, low, high, ptRegs, finalFrame] = v as [
      Addr,
      Addr,
      Addr,
      Addr,
      Addr,
      Addr,
      Addr,
    ];
    if (high <= low || high - low > 1 << 20)
      return this.bad(
        `${f}.stack.high`,
        'the stack is empty or larger than 1 MiB',
        'low < high <= low + 1 MiB',
      );
    const region = this.memory.regionOf(low, high - low);
    if (region === null)
      return this.bad(
        `${f}.stack`,
        'no memory[] region holds the whole task stack',
        'a memory region covering [low, high)',
      );
    const fg = rt.fgraph;
    const entries = [];
    if (fg !== null) {
      for (const [j, e] of fg.entries.entries()) {
        const func = this.addr(e.func, `${f}.fgraph.entries[${j}].func`);
        if (!func.ok) return func;
        if (j > 0 && e.pos <= fg.entries[j - 1]!.pos)
          return this.bad(
            `${f}.fgraph.entries[${j}].pos`,
            'positions must ascend',
            'entries oldest first',
          );
        entries.push(retStackEntry(e.pos, parseHex64(e.ret)!, func.value, parseHex64(e.retp)!));
      }
    }
    return ok({
      pid: rt.pid,
      tgid: rt.pid,
      comm: rt.comm,
      kthread: rt.kthread,
      state: rt.state,
      stateRaw: null,
      cpu: rt.cpu,
      onCpu: false,
      cpuContext: { fp, sp: spv, pc },
      stack: { low, high, region },
      ptRegs,
      finalFrame,
      retStack: fg === null ? null : { layout: fg.layout, curr: fg.curr, entries },
      kretprobes: rt.kretprobes.map((k) =>
        kretprobeInstance(parseHex64(k.retAddr)!, parseHex64(k.fp)!),
      ),
    });
  }
}
