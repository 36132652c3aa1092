import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAddr } from '@klpsim/arm64';
import { describe, expect, it } from 'vitest';
import {
  buildMachine,
  captureSchema,
  importCapture,
  Kallsyms,
  loadCapture,
  Memory,
  validate,
} from '../src/index.js';

const A = (s: string) => parseAddr(s)!;
const CAP72 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-7.2-arm64-plain/capture.json', import.meta.url),
);

describe('Memory', () => {
  it('reads what was mapped, reports unmapped reads and refuses overlaps', () => {
    const m = new Memory();
    const bytes = new Uint8Array(32);
    new DataView(bytes.buffer).setBigUint64(8, 0xffff800008baedb8n, true);
    const r = m.map('stack', A('0xffff800009aa8000'), bytes);
    expect(r.ok).toBe(true);
    const w = { hi: 0, lo: 0 };
    expect(m.read64(A('0xffff800009aa8008'), w)).toBe(true);
    expect(w).toEqual({ hi: 0xffff8000, lo: 0x08baedb8 });
    expect(m.read64(A('0xffff800009aa8020'), w)).toBe(false);
    expect(m.read64(A('0xffff800009aa8004'), w)).toBe(false);
    expect(m.read32(A('0xffff800009aa800c'))).toBe(0xffff8000);
    const overlap = m.map('other', A('0xffff800009aa8010'), new Uint8Array(16));
    expect(overlap.ok).toBe(false);
    if (!overlap.ok) expect(overlap.error.code).toBe('KLPSIM_MEMORY_OVERLAP');
  });
});

describe('kallsyms', () => {
  const syms = [
    { name: 'a_first', address: A('0xffff800008010000'), type: 't' },
    { name: 'a_alias', address: A('0xffff800008010000'), type: 'T' },
    { name: 'noreturn_caller', address: A('0xffff800008010040'), type: 't' },
    { name: 'next_fn', address: A('0xffff800008010080'), type: 't' },
    { name: '_etext', address: A('0xffff800008010100'), type: 'D' },
  ];
  const k = new Kallsyms(syms, {
    stext: A('0xffff800008010000'),
    etext: A('0xffff800008010100'),
    sinittext: null,
    einittext: null,
    end: null,
    all: false,
  });
  k.addModule('virtio', A('0xffff800000bd0000'), A('0xffff800000bd0100'), [
    { name: '$x', address: A('0xffff800000bd0000'), type: 't', module: 'virtio' },
    { name: 'virtio_dev_match', address: A('0xffff800000bd0000'), type: 't', module: 'virtio' },
    { name: 'virtio_last', address: A('0xffff800000bd0074'), type: 't', module: 'virtio' },
  ]);

  it('%pS names the first alias and sizes to the next distinct address', () => {
    expect(k.formatS(A('0xffff800008010010'))).toBe('a_first+0x10/0x40');
  });
  it('%pS of an address just past a noreturn call names the next symbol; %pB the caller', () => {
    expect(k.formatS(A('0xffff800008010080'))).toBe('next_fn+0x0/0x80');
    expect(k.formatB(A('0xffff800008010080'))).toBe('noreturn_caller+0x40/0x40');
  });
  it('module symbols skip $x, print the module, and the last one ends at textEnd', () => {
    expect(k.formatS(A('0xffff800000bd0004'))).toBe('virtio_dev_match+0x4/0x74 [virtio]');
    expect(k.formatS(A('0xffff800000bd0080'))).toBe('virtio_last+0xc/0x8c [virtio]');
  });
  it('an address no symbol covers prints as a bare address', () => {
    expect(k.formatS(A('0xffff800009000000'))).toBe('0xffff800009000000');
  });
});

describe('a real capture', () => {
  const loaded = loadCapture(CAP72);
  if (!loaded.ok) throw new Error(loaded.error.message);
  const m = loaded.value.machine;

  it('imports tasks, modules, per-CPU stacks and the meta-record layout', () => {
    expect(m.tasks).toHaveLength(71);
    expect(m.skippedTasks.map((t) => t.pid)).toEqual([126]);
    expect(m.config.ptRegs.meta).toEqual({ typeOffset: 16, size: 24, typeFinal: 1, typePtRegs: 2 });
    expect(m.text.loadedModules().map((x) => x.name)).toEqual([
      'virtio_mmio',
      'virtio_blk',
      'stackoracle',
    ]);
    expect(m.cpus[0]!.irqStack).toEqual({
      low: A('0xffff8000825c8000'),
      high: A('0xffff8000825cc000'),
    });
  });

  it('freed init text is text to __kernel_text_address only', () => {
    const startKernel = m.kallsyms.addressOf('start_kernel')!;
    expect(m.text.kernelTextAddress(startKernel)).toBe(false);
    expect(m.text.kernelTextAddressOrInit(startKernel)).toBe(true);
    expect(m.text.inSchedFunctions(m.kallsyms.addressOf('__schedule')!)).toBe(true);
  });

  it('derives sym_code_functions from SYM_CODE sections and symbols', () => {
    const at = (n: string) => m.kallsyms.addressOf(n)!;
    expect(m.symCode.contains(at('el0t_64_sync'))).toBe(true);
    expect(m.symCode.contains(at('ret_from_fork') + 0x10)).toBe(true);
    expect(m.symCode.contains(at('return_to_handler'))).toBe(true);
    expect(m.symCode.contains(at('call_on_irq_stack'))).toBe(false);
    expect(m.symCode.contains(at('__switch_to'))).toBe(false);
  });

  it('names the task and field of a broken stack', () => {
    const doc = JSON.parse(readFileSync(CAP72, 'utf8'));
    doc.tasks[3].stack.base64 = doc.tasks[3].stack.base64.slice(0, 100);
    const v = validate(captureSchema, doc, 'x.json');
    if (!v.ok) throw new Error('schema should accept a short base64 string');
    const text = readFileSync(CAP72.replace('capture.json', doc.kernel.textDump.file));
    const r = importCapture(v.value, new Uint8Array(text), 'x.json', 't.bin');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatchObject({ file: 'x.json', field: 'tasks[3].stack' });
  });
});

describe('builder descriptions are validated', () => {
  it('an unknown corruption names the field and the choices', () => {
    const r = buildMachine({
      tasks: [{ frames: [{ fn: 'f' }], corrupt: [{ kind: 'nonsense' as never, frame: 0 }] }],
    });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.field).toBe('tasks[0].corrupt[0].kind');
      expect(r.error.message).toContain('misaligned-fp');
    }
  });
  it('a return address with no room for its call is refused', () => {
    const r = buildMachine({
      tasks: [{ frames: [{ fn: '__switch_to', at: 8 }, { fn: 'kthread' }] }],
    });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error).toMatchObject({ code: 'KLPSIM_BUILD_INVALID', field: 'tasks[0].frames[0]' });
  });
  it('two different calls at one site are refused', () => {
    const r = buildMachine({
      tasks: [
        { frames: [{ fn: 'a' }, { fn: 'b', at: 0x40 }, { fn: 'kthread' }] },
        { frames: [{ fn: 'c' }, { fn: 'b', at: 0x40 }, { fn: 'kthread' }] },
      ],
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain('already holds a different call');
  });
  it('a chain deeper than the stack is refused', () => {
    const frames = Array.from({ length: 100 }, () => ({ fn: 'deep', frameSize: 496 }));
    const r = buildMachine({ tasks: [{ frames: [...frames, { fn: 'ret_from_fork' }] }] });
    expect(r.ok).toBe(false);
  });
  it('the same description builds the same bytes', () => {
    const d = {
      tasks: [
        {
          frames: [
            { fn: '__switch_to' },
            { fn: '__schedule' },
            { fn: 'kthread' },
            { fn: 'ret_from_fork' },
          ],
        },
      ],
    };
    const a = buildMachine(d);
    const b = buildMachine(d);
    if (!a.ok || !b.ok) throw new Error('build failed');
    const bytes = (x: typeof a) =>
      x.ok ? x.value.machine.memory.list().map((r) => Buffer.from(r.bytes).toString('base64')) : [];
    expect(bytes(a)).toEqual(bytes(b));
  });
});

describe('an unloaded module (kernel/module/main.c: its text leaves the module list)', () => {
  it('keeps its bytes mapped but is neither module text nor named by kallsyms', () => {
    const desc = (unloadedModules: string[]) => ({
      functions: [{ name: 'sleeper_fn', section: 'module' as const, module: 'sleepermod' }],
      unloadedModules,
      tasks: [{ frames: [{ fn: 'sleeper_fn' }, { fn: 'kthread' }, { fn: 'ret_from_fork' }] }],
    });
    const loaded = buildMachine(desc([]));
    const gone = buildMachine(desc(['sleepermod']));
    if (!loaded.ok || !gone.ok) throw new Error('build failed');
    const a = loaded.value.machine.kallsyms.addressOf('sleeper_fn')!;
    expect(loaded.value.machine.text.kernelTextAddress(a)).toBe(true);
    expect(gone.value.machine.text.kernelTextAddress(a)).toBe(false);
    expect(gone.value.machine.kallsyms.lookup(a)).toBeNull();
    expect(gone.value.machine.memory.read32(a)).not.toBe(-1);
  });
});
