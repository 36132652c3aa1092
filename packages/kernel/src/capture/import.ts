import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type Addr, pacKernelMask, pacUserMask, parseAddr, parseHex64 } from '@klpsim/arm64';
import { fail, type InputError, InputFault, ok, type Result } from '../errors.js';
import { Kallsyms, type KernelSymbol } from '../kallsyms.js';
import type {
  Cpu,
  CpuStack,
  KernelConfig,
  Machine,
  SkippedTask,
  SpecialAddresses,
} from '../machine.js';
import { Memory, type MemoryRegion } from '../memory.js';
import { deriveSymCodeFunctions, SymCodeFunctions } from '../symcode.js';
import {
  type KretprobeInstance,
  kretprobeInstance,
  type RetStack,
  retStackEntry,
  type Task,
} from '../task.js';
import { KernelText, type TextRange } from '../text.js';
import { parseJson, validate } from '../validate.js';
import { captureSchemaChecked } from './check-symbols.js';
import type { CaptureDocument, CaptureTask, CaptureTraceEntry } from './schema.js';

/** What the real kernel itself said about one task, kept beside the machine for comparison. */
export interface KernelOracle {
  /** Its unfiltered `arch_stack_walk`. */
  readonly traceFull: readonly CaptureTraceEntry[] | null;
  /** `stack_trace_save_tsk`: the same without sched/lock text. */
  readonly trace: readonly CaptureTraceEntry[] | null;
  /** Its `stack_trace_save_tsk_reliable(task, entries, 100)`. */
  readonly reliable: { readonly ret: number; readonly trace: readonly CaptureTraceEntry[] } | null;
}

export interface LoadedCapture {
  readonly file: string;
  readonly textFile: string;
  readonly machine: Machine;
  readonly oracle: ReadonlyMap<number, KernelOracle>;
}

export interface LoadCaptureOptions {
  /** The core text dump; by default the file the capture names, beside it. */
  readonly textFile?: string;
  /**
   * Read the text dump into memory at the first read of the kernel text,
   * not at load (a walk never reads it: 12 MiB of fresh memory saved). The
   * dump's size and SHA-256 are still checked at load; if the file has
   * changed or gone by the first read, that read throws an `InputFault`.
   * For one-shot commands; a caller that keeps the machine while the file
   * may change leaves it off (the default).
   */
  readonly lazyText?: boolean;
}

/** The error for a hex field that is not a canonical address. */
function notAnAddress(s: string, file: string, field: string): { ok: false; error: InputError } {
  return fail({
    code: 'KLPSIM_INPUT_INVALID',
    message: `${s} is not a canonical address`,
    file,
    field,
    expected: 'a kernel or user address',
  });
}

/** A canonical address from a validated hex field, or an error naming the field. */
function addressField(s: string, file: string, field: string): Result<Addr> {
  const a = parseAddr(s);
  return a === null || Number.isNaN(a) ? notAnAddress(s, file, field) : ok(a);
}

/** A file's bytes, gunzipped when its name ends in `.gz` (bundled captures are kept compressed). */
function readMaybeGzipped(file: string): Buffer {
  const bytes = readFileSync(file);
  return file.endsWith('.gz') ? gunzipSync(bytes) : bytes;
}

/**
 * The kernel text dump: its length, and how to put its bytes into the
 * memory that maps it. Read from a file, the bytes go straight there: a
 * second copy of tens of MiB is fresh memory the machine must fault in,
 * which cost more than reading the file.
 */
interface TextDump {
  readonly length: number;
  /** Fills `into` with exactly `length` bytes and gives their SHA-256 in hex; throws when the file cannot be read. */
  readonly fill: (into: Uint8Array) => string;
  /** A file's: its SHA-256 in hex, read without keeping the bytes; throws when it cannot be read. */
  readonly digest?: () => string;
}

function bytesDump(bytes: Uint8Array): TextDump {
  return {
    length: bytes.length,
    fill(into) {
      into.set(bytes);
      return createHash('sha256').update(into).digest('hex');
    },
  };
}

/*
 * The file is read a piece at a time through one small buffer, each piece
 * hashed there and then copied to the memory that maps the dump. Hashing
 * the dump after reading it whole into that memory cost 25-30 ms more on
 * this project's machine: the first pass over freshly read megabytes is
 * slow there, a small buffer read again and again stays warm.
 */
const PIECE = 64 * 1024;

/** The dump in `file`, or in `file.gz` when only that exists; throws when neither can be read. */
function fileDump(file: string): TextDump {
  if (!existsSync(file) && existsSync(`${file}.gz`))
    return bytesDump(readMaybeGzipped(`${file}.gz`));
  const stat = statSync(file);
  // Anything but a plain file (a directory, a pipe) is read as before, for the same error.
  if (!stat.isFile()) return bytesDump(readFileSync(file));
  const length = stat.size;
  return {
    length,
    fill: (into) => readPieces(file, into.length, (got, at) => into.set(got, at)),
    digest: () => readPieces(file, length, () => {}),
  };
}

/** Reads `length` bytes of `file` piece by piece, handing each to `take`; their SHA-256 in hex. */
function readPieces(
  file: string,
  length: number,
  take: (piece: Uint8Array, at: number) => void,
): string {
  const fd = openSync(file, 'r');
  try {
    const piece = new Uint8Array(Math.min(PIECE, length));
    const hash = createHash('sha256');
    let done = 0;
    while (done < length) {
      const n = readSync(fd, piece, 0, Math.min(piece.length, length - done), done);
      if (n === 0) throw new Error(`${file} changed while it was read`);
      const got = piece.subarray(0, n);
      hash.update(got);
      take(got, done);
      done += n;
    }
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

function textDumpUnreadable(e: unknown, textFile: string): { ok: false; error: InputError } {
  return fail({
    code: 'KLPSIM_FILE_UNREADABLE',
    message: `cannot read the text dump the capture names: ${(e as Error).message}`,
    file: textFile,
    expected: 'the file beside the capture, or one given with --text',
  });
}

/**
 * The capture schema, parsed without zod's "fast pass" (its `jitless`): at
 * an object schema's first parse zod writes one with `new Function`, which
 * V8 compiles afresh in every process (no code cache has it) for the one
 * capture a process loads, 10-25 ms at every start. The checks and the
 * issues are the same either way; only this parse goes without.
 */
const captureSchemaOnce: typeof captureSchemaChecked = Object.create(captureSchemaChecked, {
  safeParse: { value: (data: unknown) => captureSchemaChecked.safeParse(data, { jitless: true }) },
});

/** Reads, validates and imports a capture and its text dump; fails naming file, field and expectation. */
export function loadCapture(file: string, options: LoadCaptureOptions = {}): Result<LoadedCapture> {
  let raw: string;
  try {
    raw = readMaybeGzipped(file).toString('utf8');
  } catch (e) {
    return fail({
      code: 'KLPSIM_FILE_UNREADABLE',
      message: `cannot read: ${(e as Error).message}`,
      file,
    });
  }
  const json = parseJson(raw, file, 'an arm64-stack-capture/v1 JSON document');
  if (!json.ok) return json;
  // The capture schema, its symbols checked by a loop that says what zod would (check-symbols.ts).
  const doc = validate(captureSchemaOnce, json.value, file);
  if (!doc.ok) return doc;
  const textFile = options.textFile ?? join(dirname(file), doc.value.kernel.textDump.file);
  let text: TextDump;
  try {
    text = fileDump(textFile);
  } catch (e) {
    return textDumpUnreadable(e, textFile);
  }
  const machine = importWithText(doc.value, text, file, textFile, options.lazyText === true);
  if (!machine.ok) return machine;
  return ok({ file, textFile, machine: machine.value, oracle: oracleOf(doc.value) });
}

/** Builds a Machine from a validated capture document and its text dump bytes. */
export function importCapture(
  doc: CaptureDocument,
  textBytes: Uint8Array,
  file: string,
  textFile: string,
): Result<Machine> {
  return importWithText(doc, bytesDump(textBytes), file, textFile, false);
}

/**
 * A lazily mapped dump read at last: the same bytes as at load, or an
 * `InputFault` (the file changed or went away while klpsim ran).
 */
function fillChecked(dump: TextDump, into: Uint8Array, expected: string, textFile: string): void {
  let digest: string;
  try {
    digest = dump.fill(into);
  } catch (e) {
    throw new InputFault(textDumpUnreadable(e, textFile).error);
  }
  const mismatch = textDigestMismatch(digest, expected, textFile);
  if (mismatch !== null)
    throw new InputFault({
      ...mismatch.error,
      message: `text dump changed after the capture was loaded: ${mismatch.error.message}`,
    });
}

/** The dump's sha256 compared with what the capture says; null when they agree. */
function textDigestMismatch(
  digest: string,
  expected: string,
  textFile: string,
): { ok: false; error: InputError } | null {
  if (digest === expected) return null;
  return fail({
    code: 'KLPSIM_TEXT_DUMP_MISMATCH',
    message: `text dump sha256 is ${digest}`,
    file: textFile,
    field: 'kernel.textDump.sha256',
    expected,
  });
}

function importWithText(
  doc: CaptureDocument,
  textDump: TextDump,
  file: string,
  textFile: string,
  lazy: boolean,
): Result<Machine> {
  const k = doc.kernel;
  const td = k.textDump;
  if (textDump.length !== td.size) {
    return fail({
      code: 'KLPSIM_TEXT_DUMP_MISMATCH',
      message: `text dump is ${textDump.length} bytes`,
      file: textFile,
      field: 'kernel.textDump.size',
      expected: `${td.size} bytes`,
    });
  }
  const memory = new Memory();
  const textStart = addressField(td.start, file, 'kernel.textDump.start');
  const digestNow = lazy ? textDump.digest : undefined;
  let mappedText: Result<MemoryRegion> | null;
  let digest: string;
  if (digestNow !== undefined) {
    // Checked now, read into memory at its first read (LoadCaptureOptions.lazyText).
    try {
      digest = digestNow();
    } catch (e) {
      return textDumpUnreadable(e, textFile);
    }
    mappedText = textStart.ok
      ? memory.mapLazy('kernel text', textStart.value, td.size, (into) =>
          fillChecked(textDump, into.subarray(0, td.size), td.sha256, textFile),
        )
      : null;
  } else {
    mappedText = textStart.ok ? memory.mapZeroed('kernel text', textStart.value, td.size) : null;
    // The bytes go where they are mapped; with nowhere to map them, to a scratch buffer, so that
    // a wrong digest is still reported before a wrong start, as the checks are ordered.
    const bytes = mappedText?.ok === true ? mappedText.value.bytes : new Uint8Array(td.size);
    try {
      digest = textDump.fill(bytes.subarray(0, td.size));
    } catch (e) {
      return textDumpUnreadable(e, textFile);
    }
  }
  const mismatch = textDigestMismatch(digest, td.sha256, textFile);
  if (mismatch !== null) return mismatch;
  if (!textStart.ok) return textStart;
  if (!mappedText!.ok) return fail({ ...mappedText!.error, file, field: 'kernel.textDump' });

  const at = (s: string, field: string): Result<Addr> => addressField(s, file, field);

  // Symbols: the core table and each module's, both sorted by address (stable: aliases keep kallsyms order).
  const core: KernelSymbol[] = [];
  const bymod = new Map<string, KernelSymbol[]>();
  for (let i = 0; i < doc.symbols.length; i++) {
    const s = doc.symbols[i]!;
    // Tens of thousands of these: the field's name is written only for an error.
    const address = parseAddr(s.address);
    if (address === null || Number.isNaN(address))
      return notAnAddress(s.address, file, `symbols[${i}].address`);
    const sym: KernelSymbol =
      s.module !== undefined
        ? { name: s.name, address, type: s.type, module: s.module }
        : { name: s.name, address, type: s.type };
    if (s.module === undefined) core.push(sym);
    else {
      const list = bymod.get(s.module) ?? [];
      list.push(sym);
      bymod.set(s.module, list);
    }
  }
  core.sort((x, y) => x.address - y.address);
  const symAddr = (name: string): Addr | null => core.find((s) => s.name === name)?.address ?? null;

  const sections: TextRange[] = [];
  for (const [name, r] of Object.entries(k.sections)) {
    if (r === null || r.start === null || r.end === null) continue;
    const s = parseAddr(r.start);
    const e = parseAddr(r.end);
    if (s === null || e === null || Number.isNaN(s) || Number.isNaN(e)) continue;
    sections.push({ name, start: s, end: e });
  }
  const sectionAt = (name: string) => sections.find((s) => s.name === name);

  const stext = symAddr('_stext') ?? textStart.value;
  const etext = symAddr('_etext') ?? sectionAt('text')?.end ?? textStart.value + td.size;
  const sinit = symAddr('_sinittext') ?? sectionAt('inittext')?.start ?? null;
  const einit = symAddr('_einittext') ?? sectionAt('inittext')?.end ?? null;
  const kallsymsAll = k.config?.['KALLSYMS_ALL'] === 'y';

  const text = new KernelText({
    core: { name: 'text', start: stext, end: etext },
    init: sinit !== null && einit !== null ? { name: 'inittext', start: sinit, end: einit } : null,
    sections: sections.filter((s) => !['text', 'inittext', 'initdata', 'per_cpu'].includes(s.name)),
  });
  // A capture is taken from a booted system: init memory is gone.
  text.initFreed = true;

  const kallsyms = new Kallsyms(core, {
    stext,
    etext,
    sinittext: sinit,
    einittext: einit,
    end: symAddr('_end'),
    all: kallsymsAll,
  });

  for (const [i, m] of (k.modules ?? []).entries()) {
    const s = at(m.textStart, `kernel.modules[${i}].textStart`);
    const e = at(m.textEnd, `kernel.modules[${i}].textEnd`);
    if (!s.ok) return s;
    if (!e.ok) return e;
    const bytes = Buffer.from(m.textBase64, 'base64');
    if (bytes.length !== e.value - s.value) {
      return fail({
        code: 'KLPSIM_INPUT_INVALID',
        message: `module text is ${bytes.length} bytes`,
        file,
        field: `kernel.modules[${i}].textBase64`,
        expected: `${e.value - s.value} bytes (textEnd - textStart)`,
      });
    }
    const mapped = memory.map(`module ${m.name}`, s.value, bytes);
    if (!mapped.ok) return fail({ ...mapped.error, file, field: `kernel.modules[${i}]` });
    text.addModule({ name: m.name, start: s.value, end: e.value });
    kallsyms.addModule(m.name, s.value, e.value, bymod.get(m.name) ?? []);
  }

  const symCode = new SymCodeFunctions(deriveSymCodeFunctions(sections, core));
  const special = specialAddresses(k.specialAddresses, kallsyms, core);

  const ptRegs = k.ptRegs;
  const meta = ptRegs.meta;
  const cfg = (name: string): boolean =>
    k.config?.[name] === 'y' || (k.configFromModule?.[name] ?? 0) === 1;
  const config: KernelConfig = {
    release: k.release,
    vaBits: k.vaBits,
    pacKernelMask: pacKernelMask(k.vaBits),
    pacUserMask: pacUserMask(k.vaBits),
    kernelPacEnabled: k.kernelPacEnabled,
    threadSize: k.threadSize,
    ptRegs: {
      size: ptRegs.size,
      stackframeOffset: ptRegs.stackframeOffset,
      pcOffset: ptRegs.pcOffset,
      regs29Offset: meta?.regs29Offset ?? 29 * 8,
      meta:
        meta === undefined
          ? null
          : {
              typeOffset: meta.typeOffset - meta.recordFpOffset,
              size: meta.sizeofFrameRecordMeta ?? 24,
              typeFinal: meta.FRAME_META_TYPE_FINAL,
              typePtRegs: meta.FRAME_META_TYPE_PT_REGS,
            },
    },
    kallsymsAll,
    functionGraphTracer: cfg('FUNCTION_GRAPH_TRACER'),
    kretprobes: cfg('KRETPROBES'),
    // arm64 builds with -fpatchable-function-entry for both; its pad is what ftrace_location finds.
    ftracePatchableEntry: cfg('DYNAMIC_FTRACE_WITH_ARGS') || cfg('DYNAMIC_FTRACE_WITH_REGS'),
  };

  const cpus = importCpus(k);
  const tasks: Task[] = [];
  for (const [i, t] of doc.tasks.entries()) {
    const task = importTask(t, i, memory, file);
    if (!task.ok) return task;
    tasks.push(task.value);
  }
  const skippedTasks: SkippedTask[] = (doc.skippedTasks ?? []).map((s) => ({
    pid: s.pid,
    comm: s.comm,
    cpu: s.cpu ?? null,
    reason: s.reason,
  }));
  return ok({ config, memory, text, kallsyms, symCode, special, cpus, tasks, skippedTasks });
}

function specialAddresses(
  given: Record<string, string | null>,
  kallsyms: Kallsyms,
  core: readonly KernelSymbol[],
): SpecialAddresses {
  const addr = (...names: string[]): Addr | null => {
    for (const n of names) {
      const v = given[n];
      if (v !== undefined && v !== null) {
        const a = parseAddr(v);
        if (a !== null && !Number.isNaN(a)) return a;
      }
      const s = kallsyms.addressOf(n);
      if (s !== undefined) return s;
    }
    return null;
  };
  const symbolRange = (name: string): TextRange | null => {
    const start = addr(name);
    if (start === null) return null;
    const next = core.find((s) => s.address > start);
    return next === undefined ? null : { name, start, end: next.address };
  };
  return {
    returnToHandler: addr('return_to_handler'),
    kretprobeTrampoline: addr(
      '__kretprobe_trampoline',
      'kretprobe_trampoline',
      'arch_rethook_trampoline',
    ),
    retFromFork: addr('ret_from_fork'),
    switchTo: symbolRange('__switch_to'),
    schedule: symbolRange('__schedule'),
  };
}

function importCpus(k: CaptureDocument['kernel']): Cpu[] {
  const n = k.cpus?.nrCpuIds ?? Math.max(1, k.irqStacks?.length ?? 0, k.perCpuStacks?.length ?? 0);
  const online = k.cpus?.online ?? n;
  const stackAt = (base: string | null | undefined, size: number | undefined): CpuStack | null => {
    if (base === undefined || base === null || size === undefined) return null;
    const low = parseAddr(base);
    if (low === null || Number.isNaN(low) || low < 0) return null;
    return { low, high: low + size };
  };
  const cpus: Cpu[] = [];
  for (let id = 0; id < n; id++) {
    const per = k.perCpuStacks?.find((p) => p.cpu === id);
    const irq = k.irqStacks?.find((p) => p.cpu === id);
    const ovf = k.overflowStacks?.find((p) => p.cpu === id);
    cpus.push({
      id,
      online: id < online,
      irqStack:
        per !== undefined
          ? stackAt(per.irqStack, per.irqStackSize)
          : irq !== undefined
            ? stackAt(irq.base, (parseAddr(irq.top) ?? 0) - (parseAddr(irq.base) ?? 0))
            : null,
      overflowStack:
        per !== undefined
          ? stackAt(per.overflowStack, per.overflowStackSize)
          : ovf !== undefined
            ? stackAt(ovf.base, ovf.size)
            : null,
      sdeiNormalStack: per !== undefined ? stackAt(per.sdeiStackNormal, per.sdeiStackSize) : null,
      sdeiCriticalStack:
        per !== undefined ? stackAt(per.sdeiStackCritical, per.sdeiStackSize) : null,
      efiStack: null,
    });
  }
  return cpus;
}

function importTask(
  t: CaptureTask,
  i: number,
  memory: Memory,
  file: string,
): Result<Task, InputError> {
  const field = (f: string) => `tasks[${i}].${f}`;
  const addr = (s: string, f: string): Result<Addr> => addressField(s, file, field(f));
  const fields = {
    fp: addr(t.cpuContext.fp, 'cpuContext.fp'),
    sp: addr(t.cpuContext.sp, 'cpuContext.sp'),
    pc: addr(t.cpuContext.pc, 'cpuContext.pc'),
    low: addr(t.stack.low, 'stack.low'),
    high: addr(t.stack.high, 'stack.high'),
    ptRegs: addr(t.ptRegs, 'ptRegs'),
    finalFrame: addr(t.finalFrame, 'finalFrame'),
  };
  for (const r of Object.values(fields)) if (!r.ok) return r;
  const v = (r: Result<Addr>) => (r as { ok: true; value: Addr }).value;
  const low = v(fields.low);
  const high = v(fields.high);
  const bytes = Buffer.from(t.stack.base64, 'base64');
  if (high - low !== t.stack.size || bytes.length !== t.stack.size) {
    return fail({
      code: 'KLPSIM_INPUT_INVALID',
      message: `stack holds ${bytes.length} bytes for [low, high) of ${high - low}`,
      file,
      field: field('stack'),
      expected: `size (${t.stack.size}) bytes in base64, equal to high - low`,
    });
  }
  const region = memory.map(`stack of ${t.comm}:${t.pid}`, low, bytes);
  if (!region.ok) return fail({ ...region.error, file, field: field('stack') });

  let retStack: RetStack | null = null;
  if (t.fgraph !== undefined && parseAddr(t.fgraph.retStack) !== parseAddr('0x0')) {
    const entries = [];
    for (const [j, e] of t.fgraph.entries.entries()) {
      const pos = e.wordOffset ?? e.index;
      const retp = e.retp ?? e.fp;
      if (pos === undefined || retp === undefined) {
        return fail({
          code: 'KLPSIM_INPUT_INVALID',
          message: 'a return-stack entry needs its position and retp',
          file,
          field: field(`fgraph.entries[${j}]`),
          expected: 'index or wordOffset, and retp or fp',
        });
      }
      // ret and retp are raw words the kernel compares as they are: any 64-bit value.
      const ret = parseHex64(e.ret)!;
      const func = addr(e.func, `fgraph.entries[${j}].func`);
      if (!func.ok) return func;
      entries.push(retStackEntry(pos, ret, func.value, parseHex64(retp)!));
    }
    entries.sort((a, b) => a.pos - b.pos);
    retStack = {
      layout: t.fgraph.layout === 'shadow' ? 'shadow' : 'array',
      curr: t.fgraph.curr,
      entries,
    };
  }
  // Likewise ret_addr and fp of a kretprobe instance (0 included: the kernel's search stops there).
  const kretprobes: KretprobeInstance[] = (t.kretprobes ?? []).map((kr) =>
    kretprobeInstance(parseHex64(kr.retAddr)!, parseHex64(kr.fp)!),
  );
  return ok({
    pid: t.pid,
    tgid: t.tgid ?? t.pid,
    comm: t.comm,
    kthread: t.kthread,
    state: t.state,
    stateRaw: t.stateRaw === undefined ? null : Number.parseInt(t.stateRaw.slice(2), 16),
    cpu: t.cpu,
    onCpu: false,
    cpuContext: { fp: v(fields.fp), sp: v(fields.sp), pc: v(fields.pc) },
    stack: { low, high, region: region.value },
    ptRegs: v(fields.ptRegs),
    finalFrame: v(fields.finalFrame),
    retStack,
    kretprobes,
  });
}

function oracleOf(doc: CaptureDocument): Map<number, KernelOracle> {
  const out = new Map<number, KernelOracle>();
  for (const t of doc.tasks) {
    out.set(t.pid, {
      traceFull: t.kernelTraceFull ?? null,
      trace: t.kernelTrace ?? null,
      reliable:
        t.kernelReliable !== undefined
          ? { ret: t.kernelReliable.ret, trace: t.kernelReliable.trace }
          : null,
    });
  }
  return out;
}
