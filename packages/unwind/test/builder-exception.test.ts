import { type Addr, foldAddress, formatAddr, stripInsnPac } from '@klpsim/arm64';
import { frameTableOf } from '@klpsim/frames';
import {
  type BuiltFrameRow,
  type BuiltMachine,
  type BuiltTask,
  buildMachine,
  type FrameDesc,
  type FrameShape,
  formatInputError,
  irqPreempted,
  type KernelDesc,
} from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import { archStackWalk, POLICIES, Walker } from '../src/index.js';

/**
 * An exception at any word of any function (exception.lr 'text'): the
 * builder writes the stack and pt_regs from the frame state its own text
 * has at the interrupted word. Each case checks the bytes against the
 * row, the row against the frame analysis of the text, and the mainline
 * debug walk against the builder's debugTrace.
 */

const G = 'probe_g';
const CALLER = 'probe_caller';
/** Innermost first: irqPreempted's chain with g interrupted (crc32_body's place) and its caller (crc32_update's). */
function chain(at: number): FrameDesc[] {
  return irqPreempted('saved').map((f) =>
    f.fn === 'crc32_body'
      ? { fn: G, at, exception: { lr: 'text' } }
      : f.fn === 'crc32_update'
        ? { fn: CALLER }
        : f,
  );
}
const GI = 7; // g's index in the chain
const VECTOR = 6;
const REGS29 = 232;
const REGS30 = 240;
const REGS_SP = 248;
const REGS_PC = 256;

function build(desc: KernelDesc): BuiltMachine {
  const r = buildMachine(desc);
  if (!r.ok) throw new Error(formatInputError(r.error));
  return r.value;
}

function buildAt(
  at: number,
  opts: { shape?: FrameShape; pac?: boolean; layout?: 'linux-6.1' } = {},
): { built: BuiltMachine; t: BuiltTask } {
  const built = build({
    pac: opts.pac ?? true,
    ...(opts.layout !== undefined ? { layout: opts.layout } : {}),
    functions: [
      { name: G, size: 0x80, ...(opts.shape !== undefined ? { shape: opts.shape } : {}) },
      { name: CALLER, size: 0x80 },
    ],
    tasks: [{ frames: chain(at) }],
  });
  return { built, t: built.tasks[0]! };
}

/** The raw 64-bit word and its PAC-stripped address. */
function read(built: BuiltMachine, addr: Addr): { raw: string; addr: Addr } {
  const w = { hi: 0, lo: 0 };
  expect(built.machine.memory.read64(addr, w), `read ${formatAddr(addr)}`).toBe(true);
  const c = built.machine.config;
  return {
    raw: `${w.hi.toString(16)}:${w.lo.toString(16)}`,
    addr: stripInsnPac(w.hi, w.lo, c.pacKernelMask, c.pacUserMask),
  };
}
const signed = (built: BuiltMachine, addr: Addr) => {
  const w = { hi: 0, lo: 0 };
  built.machine.memory.read64(addr, w);
  return foldAddress(w.hi, w.lo) !== read(built, addr).addr;
};

function rowOfBuilder(built: BuiltMachine, at: number): BuiltFrameRow | null {
  return built.frames.find((f) => f.name === G)!.rows[at / 4] ?? null;
}

/** The exception's pt_regs: the vector's x29 is &regs->stackframe (follow the records from cpu_context). */
function ptRegsOf(built: BuiltMachine, t: BuiltTask): Addr {
  let fp = t.task.cpuContext.fp;
  for (let k = 0; k < VECTOR; k++) fp = read(built, fp).addr;
  return fp - built.machine.config.ptRegs.stackframeOffset;
}

/** g's CFA: the caller's sp at its call, three 32-byte frames (caller, worker_thread, kthread) below the task's pt_regs. */
const cfaOf = (t: BuiltTask): Addr => t.task.ptRegs - 3 * 32;

/** The frame analysis of the text finds the row the builder used. */
function expectAnalysisAgrees(built: BuiltMachine, pc: Addr, want: BuiltFrameRow): void {
  const row = frameTableOf(built.machine).rowAt(pc);
  expect(row).not.toBeNull();
  expect({
    state: row!.state,
    cfa: row!.cfa,
    record: row!.record?.fp ?? null,
    lrSigned: row!.lrSigned,
  }).toEqual(want);
}

/** The mainline debug walk reads debugTrace; for L and S it misses exactly the caller. */
function expectDebugWalk(built: BuiltMachine, t: BuiltTask, missesCaller: boolean): void {
  const r = archStackWalk(new Walker(built.machine, POLICIES.mainline), t.task);
  expect(r.trace.map((e) => e.address)).toEqual(t.debugTrace.map((e) => formatAddr(e.pc)));
  expect(r.trace.map((e) => e.source)).toEqual(t.debugTrace.map((e) => e.marker));
  const want = missesCaller ? t.chain.filter((_, k) => k !== GI + 1) : t.chain;
  expect(t.debugTrace.map((e) => e.pc)).toEqual(want);
  expect(t.debugTrace.find((e) => e.pc === t.chain[GI])?.marker).toBe('P');
}

/** Checks one L case: no record, x29 the caller's, x30 the return into the caller. */
function checkL(at: number, opts: { shape?: FrameShape; pac?: boolean }, lrSigned: boolean) {
  const { built, t } = buildAt(at, opts);
  const row = rowOfBuilder(built, at)!;
  expect(row.state).toBe('L');
  expect(row.lrSigned).toBe(lrSigned);
  const pc = t.chain[GI]!;
  expect(t.boundaries).toEqual([{ frame: GI, pc, state: 'L', lrSigned }]);
  const regs = ptRegsOf(built, t);
  const cfa = cfaOf(t);
  expect(read(built, cfa + 8).addr).toBe(t.chain[GI + 2]); // the caller's record
  expect(read(built, regs + REGS_PC).addr).toBe(pc);
  expect(read(built, regs + REGS29).addr).toBe(cfa);
  expect(read(built, regs + REGS30).addr).toBe(t.chain[GI + 1]);
  expect(signed(built, regs + REGS30)).toBe(lrSigned);
  expect(read(built, regs + REGS_SP).addr).toBe(cfa - row.cfa.offset);
  expect(regs + 320).toBe(cfa - row.cfa.offset); // pt_regs right below the interrupted sp
  // No record of g between sp and the CFA: the bytes there are zero.
  for (let a = cfa - row.cfa.offset; a < cfa; a += 8) expect(read(built, a).raw).toBe('0:0');
  expectAnalysisAgrees(built, pc, row);
  expectDebugWalk(built, t, true);
  return { built, t, regs };
}

/** Checks one S or F case: g's record at CFA + row.record holds {caller's record, return into the caller}. */
function checkRecord(at: number, opts: { shape?: FrameShape; pac?: boolean }, state: 'S' | 'F') {
  const { built, t } = buildAt(at, opts);
  const row = rowOfBuilder(built, at)!;
  expect(row.state).toBe(state);
  const pc = t.chain[GI]!;
  expect(t.boundaries).toEqual([{ frame: GI, pc, state, lrSigned: row.lrSigned }]);
  const regs = ptRegsOf(built, t);
  const cfa = cfaOf(t);
  const rec = cfa + row.record!;
  expect(read(built, rec).addr).toBe(cfa);
  expect(read(built, rec + 8).addr).toBe(t.chain[GI + 1]);
  expect(signed(built, rec + 8)).toBe(row.lrSigned);
  expect(read(built, regs + REGS_PC).addr).toBe(pc);
  expectAnalysisAgrees(built, pc, row);
  return { built, t, regs, row, cfa, rec };
}

describe("exception.lr 'text': the interrupted word's frame state decides the stack", () => {
  it('L at 0 of a push function (before paciasp): unsigned LR in regs[30], no record', () => {
    checkL(0, {}, false);
  });

  it('L at 4 of a push function (after paciasp): signed LR, signed as the builder signs a saved LR', () => {
    const { built, regs } = checkL(4, {}, true);
    // The S case at 8 saves that same return address with the same modifier (the CFA).
    const s = checkRecord(8, {}, 'S');
    expect(read(built, regs + REGS30).raw).toBe(read(s.built, s.rec + 8).raw);
  });

  it('L at 4 without PAC: plain LR', () => {
    checkL(4, { pac: false }, false);
  });

  it('S at 8 of a push function: record pushed, x29 and x30 unchanged', () => {
    const { built, t, regs, row, cfa, rec } = checkRecord(8, {}, 'S');
    expect(rec).toBe(cfa - 32);
    expect(read(built, regs + REGS29).addr).toBe(cfa);
    expect(read(built, regs + REGS30).raw).toBe(read(built, rec + 8).raw);
    expect(read(built, regs + REGS_SP).addr).toBe(cfa - row.cfa.offset);
    expect(read(built, regs + REGS_SP).addr).toBe(rec);
    expectDebugWalk(built, t, true);
  });

  it('F in the body of a push function: x29 at the record, sp == x29', () => {
    const { built, t, regs, rec } = checkRecord(0x20, {}, 'F');
    expect(read(built, regs + REGS29).addr).toBe(rec);
    expect(read(built, regs + REGS_SP).addr).toBe(rec);
    expect(read(built, regs + REGS30).addr).toBe(t.chain[GI]! + 8); // as 'saved' writes it
    expectDebugWalk(built, t, false);
  });

  it("L after the epilogue's ldp (before autiasp): signed LR, the record popped", () => {
    const at = 0x80 - 8;
    const { built, regs } = checkL(at, {}, true);
    const s = checkRecord(8, {}, 'S');
    expect(read(built, regs + REGS30).raw).toBe(read(s.built, s.rec + 8).raw);
  });

  it('a leaf: L everywhere, the LR unsigned', () => {
    checkL(0x20, { shape: 'leaf' }, false);
  });

  it('shrink-wrapped, before its prologue: L', () => {
    checkL(4, { shape: 'shrink-wrapped' }, false);
  });

  it('sub-sp after `sub sp` (stp next): L with the frame allocated, sp = CFA - N', () => {
    const { built } = checkL(8, { shape: 'sub-sp' }, true);
    expect(rowOfBuilder(built, 8)!.cfa).toEqual({ base: 'sp', offset: 32 });
  });

  it('sub-sp after its stp: S, the record at the top of the frame', () => {
    const { built, t, regs, row, cfa, rec } = checkRecord(12, { shape: 'sub-sp' }, 'S');
    expect(rec).toBe(cfa - 16);
    expect(read(built, regs + REGS29).addr).toBe(cfa);
    expect(read(built, regs + REGS_SP).addr).toBe(cfa - row.cfa.offset);
    expect(read(built, regs + REGS_SP).addr).toBe(cfa - 32);
    expectDebugWalk(built, t, true);
  });

  it('sub-sp body: F, x29 at the record at the top, sp = CFA - N', () => {
    const { built, t, regs, cfa, rec } = checkRecord(0x20, { shape: 'sub-sp' }, 'F');
    expect(rec).toBe(cfa - 16);
    expect(read(built, regs + REGS29).addr).toBe(rec);
    expect(read(built, regs + REGS_SP).addr).toBe(cfa - 32);
    expectDebugWalk(built, t, false);
  });

  it('L at 4 on the linux-6.1 layout: the synthetic record {x29, pc} names the caller, the walk misses it', () => {
    const { built, t } = buildAt(4, { layout: 'linux-6.1' });
    const regs = ptRegsOf(built, t);
    const cfa = cfaOf(t);
    const frame = regs + built.machine.config.ptRegs.stackframeOffset;
    expect(read(built, frame).addr).toBe(cfa);
    expect(read(built, frame + 8).addr).toBe(t.chain[GI]);
    expect(read(built, regs + REGS29).addr).toBe(cfa);
    expect(read(built, regs + REGS30).addr).toBe(t.chain[GI + 1]);
    expect(signed(built, regs + REGS30)).toBe(true);
    expect(read(built, regs + REGS_SP).addr).toBe(cfa);
    const r = archStackWalk(new Walker(built.machine, POLICIES['linux-6.1']), t.task);
    expect(r.trace.map((e) => e.address)).toEqual(t.debugTrace.map((e) => formatAddr(e.pc)));
    expect(t.debugTrace.map((e) => e.pc)).toEqual(t.chain.filter((_, k) => k !== GI + 1));
  });

  it('legacy saved / unsaved frames report a boundary with no state', () => {
    const built = build({
      tasks: [
        {
          frames: chain(0x48).map((f, k) => (k === GI ? { ...f, exception: { lr: 'saved' } } : f)),
        },
      ],
    });
    const t = built.tasks[0]!;
    expect(t.boundaries).toEqual([{ frame: GI, pc: t.chain[GI], state: null, lrSigned: false }]);
  });
});

describe("refusals for shape and lr 'text'", () => {
  const err = (desc: KernelDesc) => {
    const r = buildMachine(desc);
    expect(r.ok).toBe(false);
    return r.ok ? null : r.error;
  };

  it('a non-push shape on a function a chain calls from', () => {
    const e = err({
      functions: [{ name: CALLER, shape: 'leaf' }],
      tasks: [{ frames: chain(8) }],
    });
    expect(e?.field).toBe('functions[0].shape');
    expect(e?.expected).toMatch(/'push'/);
    // 'push' forced is what it has anyway.
    expect(
      buildMachine({ functions: [{ name: CALLER, shape: 'push' }], tasks: [{ frames: chain(8) }] })
        .ok,
    ).toBe(true);
  });

  it('a word no path reaches', () => {
    // mid-epilogue-tail-call ends with a word after its tail call.
    const e = err({
      functions: [{ name: G, size: 0x80, shape: 'mid-epilogue-tail-call' }],
      tasks: [{ frames: chain(0x80 - 4) }],
    });
    expect(e?.field).toBe(`tasks[0].frames[${GI}].at`);
    expect(e?.message).toMatch(/no frame state/);
  });

  it('a SYM_CODE function', () => {
    const e = err({
      functions: [{ name: G, size: 0x80, symCode: true }],
      tasks: [{ frames: chain(0x20) }],
    });
    expect(e?.field).toBe(`tasks[0].frames[${GI}].exception.lr`);
  });

  it("at 0 with lr 'saved' or 'unsaved'", () => {
    for (const lr of ['saved', 'unsaved'] as const) {
      const e = err({
        tasks: [{ frames: chain(0).map((f, k) => (k === GI ? { ...f, exception: { lr } } : f)) }],
      });
      expect(e?.field).toBe(`tasks[0].frames[${GI}].at`);
    }
  });
});
