import {
  type Addr,
  addrHi,
  addrLo,
  EncodeError,
  encodeBl,
  encodeBlr,
  encodeBlra,
  encodeBlraz,
  foldAddress,
  NOP,
  pacKernelMask,
  pacUserMask,
  parseAddr,
  signPacHi,
} from '@klpsim/arm64';
import { fail, type InputError, ok, type Result } from '../errors.js';
import { Kallsyms, type KernelSymbol } from '../kallsyms.js';
import type { Cpu, CpuStack, KernelConfig, Machine, PtRegsLayout } from '../machine.js';
import { Memory } from '../memory.js';
import { SymCodeFunctions, type SymCodeRange } from '../symcode.js';
import {
  type KretprobeInstance,
  kretprobeInstance,
  type RetStackEntry,
  retStackEntry,
  type Task,
  u64Of,
} from '../task.js';
import { KernelText, type TextRange } from '../text.js';
import { validate } from '../validate.js';
import { CATALOGUE } from './catalogue.js';
import {
  type CorruptionKind,
  type FunctionDesc,
  type KernelDesc,
  type KernelDescParsed,
  kernelDescSchema,
} from './describe.js';
import {
  type BuiltFrameRow,
  type BuiltFunctionFrames,
  emitBody,
  type FrameShape,
  shapeFor,
} from './prologue.js';

/**
 * Builds a Machine from a description: real instruction words at every call
 * site, frame records on real stack bytes, PAC-signed return addresses,
 * pt_regs with the layout's stackframe, and tracer state that matches the
 * hooked frames. Corruptions are applied to those bytes afterwards, as a
 * bug or an attacker would, never hand-edited by a test.
 */

/** Where a built task's walk starts (structurally a `WalkFrom` of @klpsim/unwind). */
export type BuiltStart =
  | { readonly kind: 'task' }
  | {
      readonly kind: 'caller';
      readonly fp: Addr;
      readonly pc: Addr;
      readonly nonPreemptible: boolean;
      readonly inNmi: boolean;
      /** `current_in_efi()`: the EFI runtime stack is known. */
      readonly inEfi: boolean;
    };

/** One entry a correct frame-pointer walk reports, with mainline's marker. */
export interface ExpectedEntry {
  readonly pc: Addr;
  /** '', 'T', 'C' or 'P', then 'F' / 'K' for recovered addresses. */
  readonly marker: string;
}

/** One exception boundary of a built chain: where it interrupted, and in what frame state. */
export interface BuiltBoundary {
  /** Index in the chain of the interrupted frame (the one with `exception`). */
  readonly frame: number;
  /** The interrupted pc (`regs->pc`). */
  readonly pc: Addr;
  /** The state of the function's text at pc (lr "text"); null for "saved" / "unsaved". */
  readonly state: 'L' | 'S' | 'F' | null;
  /** The return address (in x30 or the record) carries a PAC there; false for "saved" / "unsaved". */
  readonly lrSigned: boolean;
}

export interface BuiltTask {
  readonly task: Task;
  readonly from: BuiltStart;
  /** The true call chain, innermost first: every frame's pc, including ones no walk can see (a corrupted LR does not change it). */
  readonly chain: readonly Addr[];
  /** What a walk that crosses exceptions reads from the bytes (mainline markers): the chain as its records hold it. */
  readonly debugTrace: readonly ExpectedEntry[];
  /** Corruptions applied (empty for a clean chain). */
  readonly corruptions: readonly CorruptionKind[];
  /** The chain crosses an exception boundary. */
  readonly hasException: boolean;
  /** Every exception frame, in chain order (innermost first). */
  readonly boundaries: readonly BuiltBoundary[];
}

export interface BuiltMachine {
  readonly machine: Machine;
  readonly tasks: readonly BuiltTask[];
  /** Every function's text as written, with the frame state of each instruction (the truth @klpsim/frames must find). */
  readonly frames: readonly BuiltFunctionFrames[];
}

const A = (s: string): Addr => parseAddr(s)!;
const TEXT_BASE = A('0xffff800008010000');
const INIT_BASE = A('0xffff800009380000');
const MODULE_BASE = A('0xffff800000bd0000');
const GENERATED_BASE = A('0xffff800000010000');
const DATA_ADDR = A('0xffff800009000000');
const STACK_BASE = A('0xffff800010000000');
const CPU_STACK_BASE = A('0xffff80000a000000');
const FOREIGN_STACK = A('0xffff80000c000000');
const USER_PC = A('0x0000aaaaaaab0f24');
const USER_SP = A('0x0000ffffc754e260');
const STACK_STRIDE = 0x8000;
const THREAD_SIZE = 0x4000;
const DEFAULT_FN_SIZE = 0x200;
const FUNC_ALIGN = 0x40;

const LAYOUTS: Readonly<Record<'mainline' | 'linux-6.1', PtRegsLayout>> = {
  mainline: {
    size: 320,
    stackframeOffset: 296,
    pcOffset: 256,
    regs29Offset: 232,
    meta: { typeOffset: 16, size: 24, typeFinal: 1, typePtRegs: 2 },
  },
  'linux-6.1': { size: 336, stackframeOffset: 304, pcOffset: 256, regs29Offset: 232, meta: null },
};
const REGS30_OFFSET = 240;
const SP_OFFSET = 248;
const META_TYPE_UNKNOWN = 7;

interface PlacedFunction {
  readonly name: string;
  readonly start: Addr;
  readonly size: number;
  readonly section: NonNullable<FunctionDesc['section']>;
  readonly symCode: boolean;
  /** The body layout the description forced (`functions[].shape`). */
  readonly shape: FrameShape | undefined;
}

/** Text being written: every function, and every call-site word already claimed. */
class TextImage {
  readonly fns = new Map<string, PlacedFunction>();
  private readonly sites = new Map<number, number>();

  constructor(
    private readonly memory: Memory,
    private readonly pac: boolean,
  ) {}

  fn(name: string): PlacedFunction | undefined {
    return this.fns.get(name);
  }

  /**
   * Writes every function's body around the call sites the tasks claimed.
   * A function some chain runs through gets the plain prologue with its
   * frame size (`frameSizes`), so call sites and exception offsets keep
   * their meaning; SYM_CODE keeps the 16-byte push it always had; every
   * other function gets one of the shapes of a real kernel (prologue.ts).
   */
  emitBodies(frameSizes: ReadonlyMap<string, number>): BuiltFunctionFrames[] {
    const out: BuiltFunctionFrames[] = [];
    for (const f of this.fns.values()) {
      const target = {
        name: f.name,
        start: f.start,
        size: f.size,
        next: f.start + Math.ceil(f.size / FUNC_ALIGN) * FUNC_ALIGN,
        write32: (addr: Addr, word: number) => this.memory.write32(addr, word),
        claimed: (addr: Addr) => this.sites.has(addr),
      };
      const plan = TextImage.plan(f, frameSizes);
      if (plan === null) {
        emitBody(target, 'push', 16, this.pac);
        out.push({ name: f.name, start: f.start, size: f.size, shape: 'sym-code', rows: [] });
      } else {
        out.push(emitBody(target, plan.shape, plan.n, this.pac));
      }
    }
    return out;
  }

  /**
   * The layout and frame size `f`'s body gets (null: SYM_CODE). A chain
   * function gets 'push' unless the description forces a shape (only an
   * exception's interrupted function may have another: call sites need push).
   */
  static plan(
    f: PlacedFunction,
    frameSizes: ReadonlyMap<string, number>,
  ): { shape: FrameShape; n: number } | null {
    if (f.symCode) return null;
    const used = frameSizes.get(f.name);
    if (used !== undefined) return { shape: f.shape ?? 'push', n: used };
    return {
      shape: f.shape ?? shapeFor(f.name),
      n: 16 * (1 + (Math.floor(f.start / FUNC_ALIGN) % 4)),
    };
  }

  /** The truth rows `f`'s body will have (the same emitBody, writing nothing), and the plan. */
  rowsOf(
    f: PlacedFunction,
    frameSizes: ReadonlyMap<string, number>,
  ): { shape: FrameShape; n: number; rows: readonly (BuiltFrameRow | null)[] } | null {
    const plan = TextImage.plan(f, frameSizes);
    if (plan === null) return null;
    const dry = {
      name: f.name,
      start: f.start,
      size: f.size,
      next: f.start + Math.ceil(f.size / FUNC_ALIGN) * FUNC_ALIGN,
      write32: () => {},
      claimed: () => true,
    };
    return { ...plan, rows: emitBody(dry, plan.shape, plan.n, this.pac).rows };
  }

  /** Is `at` (offset of a return address) a usable call site in `f`? */
  static siteInBody(f: PlacedFunction, at: number): boolean {
    return at - 4 >= 12 && at - 4 < f.size - 12;
  }

  /** Claims the word before `f + at` for `word`; false if it already holds a different one. */
  claim(f: PlacedFunction, at: number, word: number): boolean {
    const addr = f.start + at - 4;
    const had = this.sites.get(addr);
    if (had !== undefined) return had === word;
    this.sites.set(addr, word);
    this.memory.write32(addr, word);
    return true;
  }

  /** Overwrites a word outright (text corruption). */
  poke(addr: Addr, word: number): void {
    this.sites.set(addr, word);
    this.memory.write32(addr, word);
  }
}

/** Builds the machine a description describes; fails naming the field and what it needs. */
export function buildMachine(input: KernelDesc, file = '(description)'): Result<BuiltMachine> {
  const parsed = validate(kernelDescSchema, input, file);
  if (!parsed.ok) return parsed;
  return new Builder(parsed.value, file).build();
}

class Builder {
  private readonly memory = new Memory();
  private readonly layout: PtRegsLayout;
  private readonly kernelMask: number;
  private readonly text: TextImage;
  private readonly symbols: KernelSymbol[] = [];
  private readonly symCode: SymCodeRange[] = [];
  private cpus: Cpu[] = [];
  private foreign: Addr = Number.NaN;
  /** Every chain function's prologue frame size (`frameSizes`), fixed before any task is built. */
  private sizes: ReadonlyMap<string, number> = new Map();

  constructor(
    private readonly desc: KernelDescParsed,
    private readonly file: string,
  ) {
    this.layout = LAYOUTS[desc.layout];
    this.kernelMask = pacKernelMask(desc.vaBits);
    this.text = new TextImage(this.memory, desc.pac);
  }

  private error(
    field: string,
    message: string,
    expected?: string,
  ): { ok: false; error: InputError } {
    return fail({
      code: 'KLPSIM_BUILD_INVALID',
      message,
      file: this.file,
      field,
      ...(expected !== undefined ? { expected } : {}),
    });
  }

  build(): Result<BuiltMachine> {
    const placed = this.placeFunctions();
    if (!placed.ok) return placed;
    const { core, init, sections, modules, generated } = placed.value;
    this.cpus = this.buildCpus();
    const fstack = this.memory.mapZeroed('foreign stack', FOREIGN_STACK, THREAD_SIZE);
    if (!fstack.ok) return fstack;
    // A plausible record on a stack no walk may use: {fp = 0, lr = __switch_to}.
    this.foreign = FOREIGN_STACK + THREAD_SIZE / 2;

    const kernelText = new KernelText({ core, init, sections });
    kernelText.initFreed = this.desc.initFreed;
    const loaded = modules.filter((m) => !this.desc.unloadedModules.includes(m.name));
    for (const m of loaded) kernelText.addModule(m);
    for (const g of generated) kernelText.addGenerated(g);

    const specialOf = (name: string) => this.text.fn(name)?.start ?? null;
    const rangeOf = (name: string): TextRange | null => {
      const f = this.text.fn(name);
      return f === undefined ? null : { name, start: f.start, end: f.start + f.size };
    };
    this.symbols.sort((a, b) => a.address - b.address);
    const etext = core.end;
    const kallsyms = new Kallsyms(
      this.symbols.filter((s) => s.module === undefined),
      {
        stext: core.start,
        etext,
        sinittext: init?.start ?? null,
        einittext: init?.end ?? null,
        end: null,
        all: false,
      },
    );
    for (const m of loaded)
      kallsyms.addModule(
        m.name,
        m.start,
        m.end,
        this.symbols.filter((s) => s.module === m.name),
      );

    const config: KernelConfig = {
      release: this.desc.release ?? `klpsim-${this.desc.layout}`,
      vaBits: this.desc.vaBits,
      pacKernelMask: this.kernelMask,
      pacUserMask: pacUserMask(this.desc.vaBits),
      kernelPacEnabled: this.desc.pac,
      threadSize: THREAD_SIZE,
      ptRegs: this.layout,
      kallsymsAll: false,
      functionGraphTracer: true,
      kretprobes: true,
      ftracePatchableEntry: false,
    };
    const machine: Machine = {
      config,
      memory: this.memory,
      text: kernelText,
      kallsyms,
      symCode: new SymCodeFunctions(this.symCode),
      special: {
        returnToHandler: specialOf('return_to_handler'),
        kretprobeTrampoline: specialOf('__kretprobe_trampoline'),
        retFromFork: specialOf('ret_from_fork'),
        switchTo: rangeOf('__switch_to'),
        schedule: rangeOf('__schedule'),
      },
      cpus: this.cpus,
      tasks: [],
      skippedTasks: [],
    };
    this.sizes = this.frameSizes();
    const shapes = this.checkShapes();
    if (!shapes.ok) return shapes;
    const tasks: BuiltTask[] = [];
    for (let i = 0; i < this.desc.tasks.length; i++) {
      const t = this.buildTask(i);
      if (!t.ok) return t;
      tasks.push(t.value);
    }
    (machine as { tasks: readonly Task[] }).tasks = tasks.map((t) => t.task);
    // Bodies last: they go around the call sites the tasks claimed.
    const frames = this.text.emitBodies(this.sizes);
    return ok({ machine, tasks, frames });
  }

  /**
   * The frame size of every function a chain runs through: the first
   * frame with a record of its own decides (a function has one prologue;
   * a chain that gives it another size describes stack bytes that text
   * would not make).
   */
  private frameSizes(): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const t of this.desc.tasks)
      t.frames.forEach((fr, k) => {
        const record =
          k < t.frames.length - 1 &&
          fr.exception?.lr !== 'unsaved' &&
          t.frames[k + 1]!.exception === undefined;
        if (!sizes.has(fr.fn) || (record && sizes.get(fr.fn) === -1))
          sizes.set(fr.fn, record ? (fr.frameSize ?? 32) : -1);
      });
    for (const [name, size] of sizes) if (size === -1) sizes.set(name, 32);
    return sizes;
  }

  /**
   * A forced shape other than 'push' on a function some chain calls from
   * (a frame without `exception`: its call site, and the record a walk
   * reads, need the push body) is refused.
   */
  private checkShapes(): Result<null> {
    for (const [j, fd] of this.desc.functions.entries()) {
      if (fd.shape === undefined || fd.shape === 'push') continue;
      if (this.text.fn(fd.name)?.shape !== fd.shape) continue; // a later entry overrides it
      for (const [i, t] of this.desc.tasks.entries()) {
        const k = t.frames.findIndex((fr) => fr.fn === fd.name && fr.exception === undefined);
        if (k >= 0)
          return this.error(
            `functions[${j}].shape`,
            `${fd.name} is a call site in tasks[${i}].frames[${k}], and a call site needs the push body`,
            `'push' (or no shape) for a function a chain calls from; another shape only for an exception's interrupted function`,
          );
      }
    }
    return ok(null);
  }

  /** Lays out the catalogue, the description's functions and every function a chain names. */
  private placeFunctions(): Result<{
    core: TextRange;
    init: TextRange | null;
    sections: TextRange[];
    modules: TextRange[];
    generated: (TextRange & { kind: 'bpf-jit' | 'ftrace-trampoline' | 'kprobe-insn-slot' })[];
  }> {
    const all = new Map<string, FunctionDesc>();
    for (const f of CATALOGUE) all.set(f.name, f);
    for (const f of this.desc.functions) all.set(f.name, { ...all.get(f.name), ...f });
    for (const t of this.desc.tasks)
      for (const fr of t.frames)
        for (const name of [fr.fn, fr.exception?.lrTo])
          if (name !== undefined && !all.has(name)) all.set(name, { name });

    const groups = new Map<string, FunctionDesc[]>();
    for (const f of all.values()) {
      const key =
        f.section === 'module' ? `module:${f.module ?? 'klpsim_mod'}` : (f.section ?? 'text');
      groups.set(key, [...(groups.get(key) ?? []), f]);
    }
    const place = (
      key: string,
      base: Addr,
      section: NonNullable<FunctionDesc['section']>,
      module?: string,
    ): TextRange => {
      let at = base;
      for (const f of groups.get(key) ?? []) {
        const size = f.size ?? DEFAULT_FN_SIZE;
        const pf: PlacedFunction = {
          name: f.name,
          start: at,
          size,
          section,
          symCode: f.symCode ?? false,
          shape: f.shape,
        };
        this.text.fns.set(f.name, pf);
        this.symbols.push(
          module === undefined
            ? { name: f.name, address: at, type: 't' }
            : { name: f.name, address: at, type: 't', module },
        );
        if (pf.symCode)
          this.symCode.push({
            name: f.name,
            start: at,
            end: at + size,
            source: 'described as SYM_CODE',
          });
        at += Math.ceil(size / FUNC_ALIGN) * FUNC_ALIGN;
      }
      return { name: key, start: base, end: at };
    };
    // Core text: the sub-sections the linker script puts at the front, then text, sched, lock.
    const sections: TextRange[] = [];
    let cursor = TEXT_BASE;
    for (const [key, name] of [
      ['irqentry', 'irqentry_text'],
      ['entry', 'entry_text'],
      ['text', 'text'],
      ['sched', 'sched_text'],
      ['lock', 'lock_text'],
    ] as const) {
      const r = place(key, cursor, key);
      if (name !== 'text') sections.push({ name, start: r.start, end: r.end });
      cursor = r.end;
    }
    const core: TextRange = { name: 'text', start: TEXT_BASE, end: cursor };
    const coreMap = this.memory.mapZeroed('kernel text', core.start, core.end - core.start);
    if (!coreMap.ok) return coreMap;

    const initR = place('init', INIT_BASE, 'init');
    const init =
      initR.end > initR.start ? { name: 'inittext', start: initR.start, end: initR.end } : null;
    if (init !== null) {
      const m = this.memory.mapZeroed('init text', init.start, init.end - init.start);
      if (!m.ok) return m;
    }
    const modules: TextRange[] = [];
    let modCursor = MODULE_BASE;
    for (const key of groups.keys()) {
      if (!key.startsWith('module:')) continue;
      const name = key.slice('module:'.length);
      const r = place(key, modCursor, 'module', name);
      const m = this.memory.mapZeroed(`module ${name}`, r.start, r.end - r.start);
      if (!m.ok) return m;
      modules.push({ name, start: r.start, end: r.end });
      modCursor = r.end + 0x10000;
    }
    const generated: (TextRange & {
      kind: 'bpf-jit' | 'ftrace-trampoline' | 'kprobe-insn-slot';
    })[] = [];
    let genCursor = GENERATED_BASE;
    for (const [key, kind] of [
      ['bpf', 'bpf-jit'],
      ['ftrace-trampoline', 'ftrace-trampoline'],
      ['kprobe-slot', 'kprobe-insn-slot'],
    ] as const) {
      if (!groups.has(key)) continue;
      const r = place(key, genCursor, key);
      const m = this.memory.mapZeroed(kind, r.start, r.end - r.start);
      if (!m.ok) return m;
      generated.push({ name: kind, start: r.start, end: r.end, kind });
      genCursor = r.end + 0x10000;
    }
    for (const s of sections)
      if (s.name === 'entry_text') this.symCode.push({ ...s, source: 'arch/arm64/kernel/entry.S' });
    return ok({ core, init, sections, modules, generated });
  }

  private buildCpus(): Cpu[] {
    const cpus: Cpu[] = [];
    for (let id = 0; id < this.desc.cpus; id++) {
      const base = CPU_STACK_BASE + id * 0x40000;
      const stack = (off: number, size: number): CpuStack => {
        const s = { low: base + off, high: base + off + size };
        if (this.desc.mapCpuStacks)
          this.memory.mapZeroed(`cpu${id} stack +0x${off.toString(16)}`, s.low, size);
        return s;
      };
      cpus.push({
        id,
        online: true,
        irqStack: stack(0, 0x4000),
        overflowStack: stack(0x8000, 0x1000),
        sdeiNormalStack: stack(0x10000, 0x4000),
        sdeiCriticalStack: stack(0x18000, 0x4000),
        // One EFI runtime stack in the kernel (efi_rt_stack_top); one per CPU here, used by the CPU's current.
        efiStack: stack(0x20000, 0x4000),
      });
    }
    return cpus;
  }

  private write64(addr: Addr, v: Addr): void {
    this.memory.write64(addr, addrHi(v), addrLo(v));
  }

  private buildTask(index: number): Result<BuiltTask> {
    const d = this.desc.tasks[index]!;
    const field = `tasks[${index}]`;
    const pid = d.pid ?? 1000 + index;
    const frames = d.frames;
    const n = frames.length;
    const cpu = d.cpu ?? index % this.desc.cpus;
    if (cpu >= this.desc.cpus)
      return this.error(`${field}.cpu`, `cpu ${cpu} does not exist`, `less than ${this.desc.cpus}`);
    const outer = frames[n - 1]!.fn;
    const kthread = d.kthread ?? outer !== 'el0t_64_sync';
    const running = d.running ?? false;
    const corrupt = d.corrupt ?? [];

    // The pc of every frame: just after its call site, or where an exception hit.
    const pcs: Addr[] = [];
    for (let k = 0; k < n; k++) {
      const fr = frames[k]!;
      const f = this.text.fn(fr.fn)!;
      let at = fr.at;
      if (fr.exception === undefined) {
        const callee =
          k === 0 ? (running ? 'arch_stack_walk' : 'cpu_switch_to') : frames[k - 1]!.fn;
        const r = this.callSite(f, at, fr.call ?? 'bl', callee, k);
        if (!r.ok) return this.error(`${field}.frames[${k}]`, r.error);
        at = r.value;
      } else if (at === undefined) {
        at = 0x20;
      } else if (at === 0 && fr.exception.lr !== 'text') {
        return this.error(
          `${field}.frames[${k}].at`,
          `an exception at ${fr.fn}+0x0 with lr '${fr.exception.lr}' describes no stack the text would make`,
          `at least 4, or exception.lr 'text'`,
        );
      }
      if (at >= f.size)
        return this.error(
          `${field}.frames[${k}].at`,
          `0x${at.toString(16)} is past the end of ${fr.fn}`,
          `less than 0x${f.size.toString(16)}`,
        );
      pcs.push(f.start + at);
    }

    // lr 'text': the frame state the function's own text has at the interrupted word.
    const textAt: ({ row: BuiltFrameRow; shape: FrameShape; n: number } | null)[] = new Array(
      n,
    ).fill(null);
    for (let k = 0; k < n; k++) {
      const fr = frames[k]!;
      if (fr.exception?.lr !== 'text') continue;
      const f = this.text.fn(fr.fn)!;
      const at = pcs[k]! - f.start;
      const body = this.text.rowsOf(f, this.sizes);
      if (body === null || body.rows.length === 0)
        return this.error(
          `${field}.frames[${k}].exception.lr`,
          `${fr.fn} is SYM_CODE: its text has no frame state to decide the stack`,
          `'saved' or 'unsaved' for a SYM_CODE function`,
        );
      const row = body.rows[at / 4] ?? null;
      if (row === null)
        return this.error(
          `${field}.frames[${k}].at`,
          `no path of ${fr.fn} (${body.shape}) reaches +0x${at.toString(16)}: it has no frame state`,
          `an offset ${fr.fn}'s code reaches`,
        );
      if (k === n - 1 || k === 0)
        return this.error(
          `${field}.frames[${k}].exception`,
          `an interrupted frame needs the vector before it and its caller after it`,
          `an exception frame between the vector and its caller`,
        );
      textAt[k] = { row, shape: body.shape, n: body.n };
    }

    // The stack: pt_regs at the top, frames below, innermost lowest.
    const low = STACK_BASE + index * STACK_STRIDE;
    const high = low + THREAD_SIZE;
    const region = this.memory.mapZeroed(
      `stack of ${d.comm ?? `task${pid}`}:${pid}`,
      low,
      THREAD_SIZE,
    );
    if (!region.ok) return region;
    const ptRegs = high - this.layout.size;
    const finalFrame = ptRegs + this.layout.stackframeOffset;
    this.writeFinalRegs(ptRegs, kthread);

    const cpuInfo = this.cpus[cpu]!;
    const cursor: Record<string, Addr> = {
      task: ptRegs,
      irq: cpuInfo.irqStack!.high,
      overflow: cpuInfo.overflowStack!.high,
      sdei_normal: cpuInfo.sdeiNormalStack!.high,
      sdei_critical: cpuInfo.sdeiCriticalStack!.high,
      efi: cpuInfo.efiStack!.high,
    };
    const record: Addr[] = new Array(n).fill(Number.NaN);
    const frameSize: number[] = new Array(n).fill(0);
    const isVector: boolean[] = new Array(n).fill(false);
    /** x29 when frame k was interrupted (lr 'text'; otherwise its record). */
    const x29: Addr[] = new Array(n).fill(Number.NaN);
    /** The sp at entry of frame k (lr 'text' only): the caller's sp at its call. */
    const cfaOf: Addr[] = new Array(n).fill(Number.NaN);
    record[n - 1] = finalFrame;
    for (let k = n - 2; k >= 0; k--) {
      const fr = frames[k]!;
      const stackName = fr.stack ?? 'task';
      if (frames[k + 1]!.exception !== undefined) {
        // Frame k is the vector: its x29 is &regs->stackframe of the pt_regs kernel_entry pushed.
        const regs = cursor[stackName]! - this.layout.size;
        cursor[stackName] = regs;
        record[k] = regs + this.layout.stackframeOffset;
        isVector[k] = true;
        continue;
      }
      if (fr.exception?.lr === 'unsaved') {
        // Interrupted before its prologue: no record; x29 still names its caller's.
        record[k] = record[k + 1]!;
        continue;
      }
      const text = textAt[k];
      if (text !== null) {
        // The stack exactly as the text left it before the word at pc ran.
        const { row } = text;
        const cfa = cursor[stackName]!;
        cfaOf[k] = cfa;
        if (row.state === 'L') {
          record[k] = record[k + 1]!;
          x29[k] = record[k + 1]!;
          cursor[stackName] = cfa - row.cfa.offset;
          continue;
        }
        const rec = cfa + row.record!;
        record[k] = rec;
        frameSize[k] = cfa - rec; // writeRecord signs with rec + frameSize = the CFA
        if (row.state === 'S') {
          x29[k] = record[k + 1]!;
          cursor[stackName] = cfa - row.cfa.offset;
        } else {
          x29[k] = rec;
          // sp == x29 after `mov x29, sp`; sub-sp puts the record at the top of its frame.
          cursor[stackName] = text.shape === 'sub-sp' ? cfa - text.n : rec;
        }
        continue;
      }
      const size = fr.frameSize ?? 32;
      const sp = cursor[stackName]! - size;
      cursor[stackName] = sp;
      record[k] = sp;
      frameSize[k] = size;
    }
    if (cursor['task']! < low) {
      return this.error(
        `${field}.frames`,
        `the chain needs ${high - cursor['task']!} bytes of task stack`,
        `at most ${THREAD_SIZE}`,
      );
    }

    // Return addresses as the stack holds them: hooked ones point at the trampolines.
    const rth = this.text.fn('return_to_handler')!.start;
    const tramp = this.text.fn('__kretprobe_trampoline')!.start;
    const retEntries: { ret: Addr; func: Addr; retp: Addr }[] = [];
    const kretprobes: KretprobeInstance[] = [];
    const saved: Addr[] = pcs.slice();
    for (let k = n - 1; k >= 1; k--) {
      const fr = frames[k]!;
      const callee = this.text.fn(frames[k - 1]!.fn)!.start;
      if (fr.fgraph === true) {
        retEntries.push({
          ret: fr.kretprobe === true ? tramp : pcs[k]!,
          func: callee + 4,
          retp: record[k]!,
        });
        saved[k] = rth;
      } else if (fr.kretprobe === true) {
        saved[k] = tramp;
      }
      if (fr.kretprobe === true)
        kretprobes.unshift(kretprobeInstance(u64Of(pcs[k]!), u64Of(record[k]!)));
    }

    // Write the records and the exception pt_regs.
    const key = Math.imul(pid + 1, 0x9e3779b1) >>> 0;
    for (let k = 0; k < n - 1; k++) {
      if (isVector[k]) {
        const regs = record[k]! - this.layout.stackframeOffset;
        const interrupted = frames[k + 1]!;
        const text = textAt[k + 1] ?? null;
        const fp = text !== null ? x29[k + 1]! : record[k + 1]!;
        this.write64(regs + this.layout.pcOffset, pcs[k + 1]!);
        this.write64(regs + this.layout.regs29Offset, fp);
        const lrTo = interrupted.exception?.lrTo;
        if (text !== null && text.row.state !== 'F' && lrTo === undefined) {
          // L and S: x30 is still the return into the caller (stp does not change it).
          const lr = saved[k + 2]!;
          const hi = text.row.lrSigned
            ? signPacHi(addrHi(lr), addrLo(lr), addrLo(cfaOf[k + 1]!), key, this.desc.vaBits)
            : addrHi(lr);
          this.memory.write64(regs + REGS30_OFFSET, hi, addrLo(lr));
        } else
          this.write64(
            regs + REGS30_OFFSET,
            lrTo !== undefined
              ? this.text.fn(lrTo)!.start
              : interrupted.exception?.lr === 'unsaved'
                ? (pcs[k + 2] ?? 0)
                : pcs[k + 1]! + 8,
          );
        this.write64(regs + SP_OFFSET, regs + this.layout.size);
        if (this.layout.meta !== null) {
          this.memory.write64(record[k]!, 0, 0);
          this.memory.write64(record[k]! + 8, 0, 0);
          this.memory.write64(
            record[k]! + this.layout.meta.typeOffset,
            0,
            this.layout.meta.typePtRegs,
          );
        } else {
          // 6.1 kernel_entry: `stp x29, x22, [sp, #S_STACKFRAME]`, a synthetic record of the interrupted code.
          this.write64(record[k]!, fp);
          this.write64(record[k]! + 8, pcs[k + 1]!);
        }
        continue;
      }
      if (frameSize[k] === 0) continue;
      this.writeRecord(
        record[k]!,
        record[k + 1]!,
        saved[k + 1]!,
        record[k]! + frameSize[k]!,
        key,
        textAt[k]?.row.lrSigned ?? this.desc.pac,
      );
    }

    // Corruptions, on the finished bytes. The true chain stays what was called;
    // `pcs` becomes what the records hold.
    const chain = pcs.slice();
    const hidden = new Set<number>();
    for (let k = 1; k < n; k++) {
      const state = textAt[k]?.row.state;
      if ((frames[k]!.exception?.lr === 'unsaved' || state === 'L' || state === 'S') && k + 1 < n)
        hidden.add(k + 1);
    }
    for (const [ci, c] of corrupt.entries()) {
      const r = this.corrupt(c.kind, c.frame, {
        frames,
        pcs,
        record,
        frameSize,
        isVector,
        retEntries,
        kretprobes,
        high,
        key,
      });
      if (r !== null) return this.error(`${field}.corrupt[${ci}]`, r);
    }

    const layoutShadow = this.layout.meta !== null;
    const entries: RetStackEntry[] = retEntries.map((e, j) =>
      retStackEntry(layoutShadow ? 1 + 5 * j : j, u64Of(e.ret), e.func, u64Of(e.retp)),
    );
    const retStack =
      frames.some((f) => f.fgraph === true) || entries.length > 0
        ? {
            layout: layoutShadow ? ('shadow' as const) : ('array' as const),
            curr: layoutShadow ? 1 + 5 * entries.length : entries.length - 1,
            entries,
          }
        : null;

    const task: Task = {
      pid,
      tgid: pid,
      comm: d.comm ?? (kthread ? `kworker/${index}` : `task${pid}`),
      kthread,
      state: d.state ?? (running ? 'R' : 'S'),
      stateRaw: null,
      cpu,
      onCpu: running,
      cpuContext: { fp: record[0]!, sp: record[0]!, pc: pcs[0]! },
      stack: { low, high, region: region.value },
      ptRegs,
      finalFrame,
      retStack,
      kretprobes,
    };
    const onCpuStack = frames.some((f) => (f.stack ?? 'task') !== 'task');
    const from: BuiltStart = running
      ? {
          kind: 'caller',
          fp: record[0]!,
          pc: pcs[0]!,
          nonPreemptible: onCpuStack,
          inNmi: frames.some((f) => f.stack?.startsWith('sdei') === true),
          inEfi: frames.some((f) => f.stack === 'efi'),
        }
      : { kind: 'task' };
    const debugTrace: ExpectedEntry[] = [];
    for (let k = 0; k < n; k++) {
      if (hidden.has(k)) continue;
      const fr = frames[k]!;
      const start = k === 0 ? (running ? 'C' : 'T') : fr.exception !== undefined ? 'P' : '';
      debugTrace.push({
        pc: pcs[k]!,
        marker: `${start}${k > 0 && fr.fgraph === true ? 'F' : ''}${k > 0 && fr.kretprobe === true ? 'K' : ''}`,
      });
    }
    return ok({
      task,
      from,
      chain,
      debugTrace,
      corruptions: corrupt.map((c) => c.kind),
      hasException: frames.some((f) => f.exception !== undefined),
      boundaries: frames.flatMap((f, k) =>
        f.exception === undefined
          ? []
          : [
              {
                frame: k,
                pc: chain[k]!,
                state: textAt[k]?.row.state ?? null,
                lrSigned: textAt[k]?.row.lrSigned ?? false,
              },
            ],
      ),
    });
  }

  /** The offset of frame k's return address, with the call written before it. */
  private callSite(
    f: PlacedFunction,
    at: number | undefined,
    call: string,
    callee: string,
    k: number,
  ): { ok: true; value: number } | { ok: false; error: string } {
    const target = this.text.fn(callee);
    const encode = (site: Addr): number => {
      switch (call) {
        case 'blr':
          return encodeBlr(8);
        case 'blraa':
          return encodeBlra('a', 8, 9);
        case 'blrab':
          return encodeBlra('b', 8, 9);
        case 'blraaz':
          return encodeBlraz('a', 8);
        case 'blrabz':
          return encodeBlraz('b', 8);
        default:
          try {
            return target === undefined ? encodeBlr(8) : encodeBl(site, target.start);
          } catch (e) {
            if (e instanceof EncodeError) return encodeBlr(8);
            throw e;
          }
      }
    };
    if (at !== undefined) {
      if (!TextImage.siteInBody(f, at)) {
        return {
          ok: false,
          error: `a return address at ${f.name}+0x${at.toString(16)} leaves no room for a call between the prologue and the epilogue`,
        };
      }
      const word = encode(f.start + at - 4);
      if (!this.text.claim(f, at, word)) {
        return {
          ok: false,
          error: `${f.name}+0x${(at - 4).toString(16)} already holds a different call`,
        };
      }
      return { ok: true, value: at };
    }
    // No offset given: a deterministic free site, different callees at different sites.
    const slots = (f.size - 32) / 4;
    let slot = hash(`${f.name}>${callee}>${k === 0 ? 'top' : ''}`) % slots;
    for (let tries = 0; tries < slots; tries++, slot = (slot + 1) % slots) {
      const off = 16 + 4 * slot + 4;
      if (!TextImage.siteInBody(f, off)) continue;
      if (this.text.claim(f, off, encode(f.start + off - 4))) return { ok: true, value: off };
    }
    return { ok: false, error: `${f.name} has no free call site left for a call to ${callee}` };
  }

  /** `{fp, lr}` at `at`, the LR signed with the SP at the callee's entry when PAC is on. */
  private writeRecord(
    at: Addr,
    fp: Addr,
    lr: Addr,
    spAtEntry: Addr,
    key: number,
    sign = this.desc.pac,
  ): void {
    const hi = addrHi(lr);
    const lo = addrLo(lr);
    const signed = sign ? signPacHi(hi, lo, addrLo(spAtEntry), key, this.desc.vaBits) : hi;
    this.write64(at, fp);
    this.memory.write64(at + 8, signed, lo);
  }

  /** The task's own pt_regs: user state and a final record, or a kthread's zeroed regs. */
  private writeFinalRegs(ptRegs: Addr, kthread: boolean): void {
    if (!kthread) {
      this.write64(ptRegs + this.layout.pcOffset, USER_PC);
      this.write64(ptRegs + SP_OFFSET, USER_SP);
      this.write64(ptRegs + this.layout.regs29Offset, USER_SP);
    }
    const meta = this.layout.meta;
    if (meta !== null)
      this.memory.write64(
        ptRegs + this.layout.stackframeOffset + meta.typeOffset,
        0,
        meta.typeFinal,
      );
  }

  private corrupt(
    kind: CorruptionKind,
    k: number,
    t: {
      frames: readonly {
        fn: string;
        fgraph?: boolean | undefined;
        kretprobe?: boolean | undefined;
      }[];
      pcs: Addr[];
      record: Addr[];
      frameSize: number[];
      isVector: boolean[];
      retEntries: { ret: Addr; func: Addr; retp: Addr }[];
      kretprobes: KretprobeInstance[];
      high: Addr;
      key: number;
    },
  ): string | null {
    const n = t.frames.length;
    const hasRecord = k < n - 1 && t.frameSize[k]! > 0;
    const rec = t.record[k]!;
    const needRecord = () =>
      hasRecord ? null : `frame ${k} has no frame record of its own to corrupt`;
    switch (kind) {
      case 'misaligned-fp':
      case 'loop':
      case 'other-stack':
      case 'off-stack':
      case 'truncated': {
        const why = needRecord();
        if (why !== null) return why;
        const fp =
          kind === 'misaligned-fp'
            ? t.record[k + 1]! + 4
            : kind === 'loop'
              ? rec
              : kind === 'other-stack'
                ? this.foreign
                : kind === 'off-stack'
                  ? t.high - 8
                  : foldAddress(0, 0);
        if (kind === 'other-stack')
          this.writeRecord(this.foreign, foldAddress(0, 0), t.pcs[0]!, this.foreign + 16, t.key);
        this.write64(rec, fp);
        return null;
      }
      case 'lr-not-text': {
        const why = needRecord();
        if (why !== null) return why;
        this.writeRecord(rec, t.record[k + 1]!, DATA_ADDR, rec + t.frameSize[k]!, t.key);
        t.pcs[k + 1] = DATA_ADDR;
        return null;
      }
      case 'lr-not-after-call': {
        if (k >= n) return `there is no frame ${k}`;
        this.text.poke(t.pcs[k]! - 4, NOP);
        return null;
      }
      case 'missing-fgraph': {
        if (t.frames[k]?.fgraph !== true)
          return `frame ${k} is not hooked by the function-graph tracer`;
        const i = t.retEntries.findIndex((e) => e.retp === t.record[k]);
        if (i >= 0) t.retEntries.splice(i, 1);
        return null;
      }
      case 'missing-kretprobe': {
        if (t.frames[k]?.kretprobe !== true) return `frame ${k} has no kretprobe`;
        const i = t.kretprobes.findIndex((e) => e.fp === t.record[k]);
        if (i >= 0) t.kretprobes.splice(i, 1);
        return null;
      }
      case 'final-misplaced':
      case 'meta-unknown': {
        const why = needRecord();
        if (why !== null) return why;
        if (t.frameSize[k]! < 32)
          return `frame ${k} is too small (16 bytes) to hold a 24-byte meta record`;
        this.memory.write64(rec, 0, 0);
        this.memory.write64(rec + 8, 0, 0);
        this.memory.write64(rec + 16, 0, kind === 'final-misplaced' ? 1 : META_TYPE_UNKNOWN);
        return null;
      }
    }
  }
}

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
