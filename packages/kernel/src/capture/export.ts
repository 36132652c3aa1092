import { createHash } from 'node:crypto';
import { formatAddr, hex64 } from '@klpsim/arm64';
import type { Machine } from '../machine.js';
import type { CaptureDocument } from './schema.js';

/**
 * Writes a Machine as an `arm64-stack-capture/v1` document and its text
 * dump, as the capture module would have: for tool builders who want test
 * captures of shapes no real system gave them (tracers on, exception frames,
 * module text), and for the round-trip test of the importer.
 * The document says it is generated (`generated`), and `traces` (pid →
 * entries), when given, go to `generatedTraceFull`: a field meaning the
 * kernel's own (`kernelTraceFull`, `kernelReliable`) is never filled here,
 * only real captures have those.
 */
export function exportCapture(
  machine: Machine,
  textFile: string,
  traces: ReadonlyMap<number, readonly { address: string; symbol: string }[]> = new Map(),
): { doc: CaptureDocument; text: Uint8Array } {
  const hex = formatAddr;
  const core = machine.text.core;
  const coreRegion = machine.memory.regionOf(core.start, core.end - core.start);
  if (coreRegion === null) throw new Error('the machine has no core text in memory');
  const text = coreRegion.bytes.subarray(0, core.end - core.start);
  const meta = machine.config.ptRegs.meta;
  const sections: Record<string, { start: string; end: string }> = {
    text: { start: hex(core.start), end: hex(core.end) },
  };
  for (const s of machine.text.sections)
    sections[s.name] = { start: hex(s.start), end: hex(s.end) };
  if (machine.text.init !== null)
    sections['inittext'] = { start: hex(machine.text.init.start), end: hex(machine.text.init.end) };
  const special: Record<string, string | null> = {
    return_to_handler:
      machine.special.returnToHandler === null ? null : hex(machine.special.returnToHandler),
    __kretprobe_trampoline:
      machine.special.kretprobeTrampoline === null
        ? null
        : hex(machine.special.kretprobeTrampoline),
    ret_from_fork: machine.special.retFromFork === null ? null : hex(machine.special.retFromFork),
  };
  const symbols: CaptureDocument['symbols'] = machine.kallsyms
    .coreSymbols()
    .map((s) => ({ name: s.name, address: hex(s.address), type: 't' }));
  symbols.push(
    { name: '_stext', address: hex(core.start), type: 'T' },
    { name: '_etext', address: hex(core.end), type: 'D' },
  );
  if (machine.text.init !== null) {
    symbols.push(
      { name: '_sinittext', address: hex(machine.text.init.start), type: 'T' },
      { name: '_einittext', address: hex(machine.text.init.end), type: 'T' },
    );
  }
  const modules = machine.text.loadedModules().map((m) => {
    const region = machine.memory.regionOf(m.start, m.end - m.start);
    for (const s of machine.kallsyms.moduleSymbols(m.name))
      symbols.push({ name: s.name, address: hex(s.address), type: 't', module: m.name });
    return {
      name: m.name,
      textStart: hex(m.start),
      textEnd: hex(m.end),
      textBase64: Buffer.from(
        region === null
          ? new Uint8Array(m.end - m.start)
          : region.bytes.subarray(0, m.end - m.start),
      ).toString('base64'),
    };
  });
  symbols.sort((a, b) =>
    BigInt(a.address) < BigInt(b.address) ? -1 : BigInt(a.address) > BigInt(b.address) ? 1 : 0,
  );
  const tasks: CaptureDocument['tasks'] = machine.tasks.map((t) => {
    const rs = t.retStack;
    return {
      pid: t.pid,
      tgid: t.tgid,
      comm: t.comm,
      kthread: t.kthread,
      state: t.state,
      ...(t.stateRaw !== null ? { stateRaw: `0x${t.stateRaw.toString(16)}` } : {}),
      cpu: t.cpu,
      cpuContext: { fp: hex(t.cpuContext.fp), sp: hex(t.cpuContext.sp), pc: hex(t.cpuContext.pc) },
      stack: {
        low: hex(t.stack.low),
        high: hex(t.stack.high),
        size: t.stack.high - t.stack.low,
        base64: Buffer.from(
          t.stack.region?.bytes ?? new Uint8Array(t.stack.high - t.stack.low),
        ).toString('base64'),
      },
      ptRegs: hex(t.ptRegs),
      finalFrame: hex(t.finalFrame),
      fgraph:
        rs === null
          ? { retStack: '0x0', curr: -1, entries: [] }
          : {
              retStack: '0xffff000012340000',
              curr: rs.curr,
              layout: rs.layout,
              entries: [...rs.entries].reverse().map((e) => ({
                ...(rs.layout === 'shadow' ? { wordOffset: e.pos } : { index: e.pos }),
                ret: hex64(e.retHi, e.retLo),
                func: hex(e.func),
                fp: hex64(e.retpHi, e.retpLo),
                retp: hex64(e.retpHi, e.retpLo),
              })),
            },
      kretprobes: t.kretprobes.map((k) => ({
        retAddr: hex64(k.retAddrHi, k.retAddrLo),
        fp: hex64(k.fpHi, k.fpLo),
      })),
      ...(traces.has(t.pid) ? { generatedTraceFull: [...traces.get(t.pid)!] } : {}),
    };
  });
  const doc = {
    format: 'arm64-stack-capture/v1' as const,
    generated: {
      by: 'klpsim exportCapture',
      note: 'built by klpsim, not captured from a running kernel: no field holds a kernel result',
    },
    kernel: {
      release: machine.config.release,
      config: { KALLSYMS_ALL: machine.config.kallsymsAll ? 'y' : 'n' },
      configFromModule: {
        FUNCTION_GRAPH_TRACER: machine.config.functionGraphTracer ? 1 : 0,
        KRETPROBES: machine.config.kretprobes ? 1 : 0,
      },
      threadSize: machine.config.threadSize,
      vaBits: machine.config.vaBits,
      kernelPacEnabled: machine.config.kernelPacEnabled,
      ptRegs: {
        size: machine.config.ptRegs.size,
        stackframeOffset: machine.config.ptRegs.stackframeOffset,
        pcOffset: machine.config.ptRegs.pcOffset,
        ...(meta === null
          ? {}
          : {
              meta: {
                typeOffset: machine.config.ptRegs.stackframeOffset + meta.typeOffset,
                recordFpOffset: machine.config.ptRegs.stackframeOffset,
                regs29Offset: machine.config.ptRegs.regs29Offset,
                sizeofFrameRecordMeta: meta.size,
                FRAME_META_TYPE_FINAL: meta.typeFinal,
                FRAME_META_TYPE_PT_REGS: meta.typePtRegs,
              },
            }),
      },
      sections,
      specialAddresses: special,
      cpus: { nrCpuIds: machine.cpus.length, online: machine.cpus.filter((c) => c.online).length },
      textDump: {
        file: textFile,
        start: hex(core.start),
        end: hex(core.end),
        size: text.length,
        sha256: createHash('sha256').update(text).digest('hex'),
      },
      modules,
    },
    symbols,
    tasks,
    skippedTasks: [],
  };
  return { doc, text };
}
