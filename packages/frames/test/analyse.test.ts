import {
  AUTIASP,
  encodeAddFpSp,
  encodeB,
  encodeBl,
  encodeCbz,
  encodeLdpFrameAt,
  encodeLdpFramePop,
  encodeSpDown,
  encodeStpFrameAt,
  encodeStpFramePush,
  encodeSubSpReg,
  MOV_SP_X29,
  NOP,
  PACIASP,
  RET,
  RETAA,
} from '@klpsim/arm64';
import { describe, expect, it } from 'vitest';
import { analyseFunction, formatCfa, rowOf } from '../src/index.js';

/**
 * Hand-written instruction sequences, each the way GCC or the kernel's
 * assembly writes it, with the frame state derived by hand from what each
 * instruction does (AAPCS64: the return address arrives in x30, the CFA is
 * sp at entry; `stp x29, x30` saves the record, `mov x29, sp` points x29 at
 * it). Words not made by our encoders are given with their disassembly
 * (capstone agrees, decode.test.ts).
 */

const MOV_X9_X30 = 0xaa1e03e9; // mov x9, x30 (patchable function entry after ftrace_init_nop)
const XPACLRI = 0xd50320ff;
const BRK_BUG = 0xd4210000; // brk #0x800: BUG()/WARN()
const BRK_KPROBE = 0xd4200080; // brk #0x4
const MOV_X29_X0 = 0xaa0003fd;
const STR_X30_PUSH = 0xf81f0ffe; // str x30, [sp, #-0x10]!
const BR_X1 = 0xd61f0020;
const STR_X19 = 0xf9000bf3; // str x19, [sp, #0x10]
const STP_X20_X19_PUSH = 0xa9be4ff4; // stp x20, x19, [sp, #-0x20]!
const LDP_X20_X19_POP = 0xa8c24ff4; // ldp x20, x19, [sp], #0x20

/** `state cfa` per instruction, `-` where unreached; or the refusal reason. */
function summary(words: number[]): string[] | string {
  const f = analyseFunction('f', 0x1000, Uint32Array.from(words));
  if (f.refusal !== null) return f.refusal.reason;
  return words.map((_, i) => {
    const r = rowOf(f, i);
    if (r === null) return '-';
    const rec = r.record === null ? '' : ` @${r.record.fp}`;
    return `${r.state} ${formatCfa(r.cfa)}${rec}${r.lrSigned ? ' s' : ''}`;
  });
}

const at = (i: number) => 0x1000 + 4 * i;

describe('GCC prologues and epilogues', () => {
  it('paciasp; stp x29, x30, [sp, #-N]!; mov x29, sp ... ldp; autiasp; ret', () => {
    expect(
      summary([
        PACIASP,
        encodeStpFramePush(32),
        encodeAddFpSp(0),
        STR_X19,
        encodeBl(at(4), 0x8000),
        encodeLdpFramePop(32),
        AUTIASP,
        RET,
      ]),
    ).toEqual([
      'L sp+0',
      'L sp+0 s',
      'S sp+32 @-32 s',
      'F x29+32 @-32 s',
      'F x29+32 @-32 s',
      'F x29+32 @-32 s',
      'L sp+0 s',
      'L sp+0',
    ]);
  });

  it('sub sp; stp x29, x30, [sp, #M]; add x29, sp, #M (record at the top of the frame)', () => {
    expect(
      summary([
        PACIASP,
        encodeSpDown(64),
        encodeStpFrameAt(48),
        encodeAddFpSp(48),
        encodeBl(at(4), 0x8000),
        encodeLdpFrameAt(48),
        encodeSpDown(-64),
        AUTIASP,
        RET,
      ]),
    ).toEqual([
      'L sp+0',
      'L sp+0 s',
      'L sp+64 s',
      'S sp+64 @-16 s',
      'F x29+16 @-16 s',
      'F x29+16 @-16 s',
      'L sp+64 s',
      'L sp+0 s',
      'L sp+0',
    ]);
  });

  it('callee-saved pushes move sp but not the CFA', () => {
    expect(
      summary([
        encodeStpFramePush(16),
        encodeAddFpSp(0),
        STP_X20_X19_PUSH,
        LDP_X20_X19_POP,
        encodeLdpFramePop(16),
        RET,
      ]),
    ).toEqual([
      'L sp+0',
      'S sp+16 @-16',
      'F x29+16 @-16',
      'F x29+16 @-16',
      'F x29+16 @-16',
      'L sp+0',
    ]);
  });

  it('retaa authenticates and returns in one instruction', () => {
    expect(
      summary([PACIASP, encodeStpFramePush(16), encodeAddFpSp(0), encodeLdpFramePop(16), RETAA]),
    ).toEqual(['L sp+0', 'L sp+0 s', 'S sp+16 @-16 s', 'F x29+16 @-16 s', 'L sp+0 s']);
  });

  it('alloca: sp moves by a register, the CFA follows x29, mov sp, x29 restores sp', () => {
    expect(
      summary([
        encodeStpFramePush(16),
        encodeAddFpSp(0),
        encodeSubSpReg(0),
        NOP,
        MOV_SP_X29,
        encodeLdpFramePop(16),
        RET,
      ]),
    ).toEqual([
      'L sp+0',
      'S sp+16 @-16',
      'F x29+16 @-16',
      'F x29+16 @-16',
      'F x29+16 @-16',
      'F x29+16 @-16',
      'L sp+0',
    ]);
  });
});

describe('control flow', () => {
  it('shrink-wrapping: body code before the prologue, an early return that skips it', () => {
    // From __roundup_pow_of_two on Linux 7.2: subs; cbz -> mov; ret, else the prologue.
    expect(
      summary([
        NOP,
        encodeCbz(0, at(1), at(8)),
        PACIASP,
        encodeStpFramePush(32),
        encodeAddFpSp(0),
        encodeLdpFramePop(32),
        AUTIASP,
        RET,
        NOP,
        RET,
      ]),
    ).toEqual([
      'L sp+0',
      'L sp+0',
      'L sp+0',
      'L sp+0 s',
      'S sp+32 @-32 s',
      'F x29+32 @-32 s',
      'L sp+0 s',
      'L sp+0',
      'L sp+0',
      'L sp+0',
    ]);
  });

  it('counts the body code that runs before the prologue', () => {
    const MOV_W0_1 = 0x52800020; // mov w0, #1
    const words = [
      MOV_X9_X30,
      encodeBl(at(1), 0x8000),
      MOV_W0_1,
      MOV_W0_1,
      encodeCbz(0, at(4), at(10)),
    ];
    words.push(
      PACIASP,
      encodeStpFramePush(16),
      encodeAddFpSp(0),
      encodeLdpFramePop(16),
      AUTIASP,
      RET,
    );
    // The ftrace entry and the prologue are not body; the two movs and the cbz are.
    expect(analyseFunction('f', 0x1000, Uint32Array.from(words)).shrinkWrapped).toBe(3);
  });

  it('a mid-function epilogue and a tail call out of the function', () => {
    const s = summary([
      encodeStpFramePush(16),
      encodeAddFpSp(0),
      encodeCbz(0, at(2), at(5)),
      encodeLdpFramePop(16),
      RET,
      encodeLdpFramePop(16),
      encodeB(at(6), 0x9000),
      NOP,
    ]);
    expect(s).toEqual([
      'L sp+0',
      'S sp+16 @-16',
      'F x29+16 @-16',
      'F x29+16 @-16',
      'L sp+0',
      'F x29+16 @-16',
      'L sp+0',
      '-',
    ]);
  });

  it('a call that never returns: its fall-through belongs to another path', () => {
    // cbz to the last ret (no frame); the frame path ends in a call to a noreturn function.
    const words = [
      encodeCbz(0, at(0), at(5)),
      encodeStpFramePush(16),
      encodeAddFpSp(0),
      NOP,
      encodeBl(at(4), 0x8000),
      RET,
    ];
    expect(summary(words)).toEqual([
      'L sp+0',
      'L sp+0',
      'S sp+16 @-16',
      'F x29+16 @-16',
      'F x29+16 @-16',
      'L sp+0',
    ]);
    expect(analyseFunction('f', 0x1000, Uint32Array.from(words)).noreturnCalls).toBe(1);
  });

  it('BUG(): the brk does not come back when its fall-through would break the frame', () => {
    const words = [
      encodeCbz(0, at(0), at(5)),
      encodeStpFramePush(16),
      encodeAddFpSp(0),
      encodeLdpFramePop(16),
      BRK_BUG,
      RET,
    ];
    expect(summary(words)).toEqual([
      'L sp+0',
      'L sp+0',
      'S sp+16 @-16',
      'F x29+16 @-16',
      'L sp+0',
      'L sp+0',
    ]);
    const warn = [encodeStpFramePush(16), encodeAddFpSp(0), BRK_BUG, encodeLdpFramePop(16), RET];
    // WARN(): the code after it is reached only through the brk, and gets its frame.
    expect(summary(warn)).toEqual([
      'L sp+0',
      'S sp+16 @-16',
      'F x29+16 @-16',
      'F x29+16 @-16',
      'L sp+0',
    ]);
  });

  it("the ftrace call of a patchable entry keeps LR (x9 holds the caller's return address)", () => {
    expect(summary([MOV_X9_X30, encodeBl(at(1), 0x8000), PACIASP, RET])).toBe('pac-mismatch');
    expect(summary([MOV_X9_X30, encodeBl(at(1), 0x8000), NOP, RET])).toEqual([
      'L sp+0',
      'L sp+0',
      'L sp+0',
      'L sp+0',
    ]);
  });

  it('a branch to an erratum 843419 veneer that comes back is part of the path', () => {
    // swap_read_page on Linux 7.2: `b e843419@...` whose veneer is `ldr x0, [x0, #0xc8]; b <back>`.
    const veneer = 0x9000;
    const words = [
      encodeStpFramePush(16),
      encodeAddFpSp(0),
      encodeB(at(2), veneer),
      encodeLdpFramePop(16),
      RET,
    ];
    const text = new Map([
      [veneer, 0xf9406400],
      [veneer + 4, encodeB(veneer + 4, at(3))],
    ]);
    const f = analyseFunction('f', 0x1000, Uint32Array.from(words), {
      readText: (a) => text.get(a) ?? -1,
    });
    expect(f.refusal).toBeNull();
    expect(rowOf(f, 3)?.state).toBe('F');
    // Without the text around the function, the same branch is a tail call with the frame up.
    expect(summary(words)).toBe('exit-with-frame');
  });

  it('a frameless leaf (like __arch_clear_user) is L everywhere', () => {
    expect(summary([encodeCbz(1, at(0), at(3)), NOP, RET, RET])).toEqual([
      'L sp+0',
      'L sp+0',
      'L sp+0',
      'L sp+0',
    ]);
  });

  it('a jump table inside the frame: the code only it reaches keeps no state', () => {
    const f = analyseFunction(
      'f',
      0x1000,
      Uint32Array.from([
        encodeStpFramePush(16),
        encodeAddFpSp(0),
        BR_X1,
        encodeLdpFramePop(16),
        RET,
      ]),
    );
    expect(f.refusal).toBeNull();
    expect(f.jumpTables).toBe(1);
    expect(f.unreached).toBe(2);
  });
});

describe('PAC', () => {
  it('xpaclri strips x30 only: the record keeps the signed return address', () => {
    expect(
      summary([
        PACIASP,
        encodeStpFramePush(16),
        XPACLRI,
        encodeAddFpSp(0),
        encodeLdpFramePop(16),
        AUTIASP,
        RET,
      ]),
    ).toEqual([
      'L sp+0',
      'L sp+0 s',
      'S sp+16 @-16 s',
      'S sp+16 @-16 s',
      'F x29+16 @-16 s',
      'L sp+0 s',
      'L sp+0',
    ]);
  });

  it('returning with LR still signed is refused', () => {
    expect(summary([PACIASP, RET])).toBe('pac-mismatch');
    expect(summary([AUTIASP, RET])).toBe('pac-mismatch');
  });
});

describe('what the analysis refuses, with the reason', () => {
  const cases: [string, number[], string][] = [
    ['x29 as a general register', [encodeStpFramePush(16), MOV_X29_X0, RET], 'x29-clobbered'],
    ['LR saved without a record', [STR_X30_PUSH, RET], 'lr-saved-alone'],
    [
      'a return with the frame still up',
      [encodeStpFramePush(16), encodeAddFpSp(0), RET],
      'exit-with-frame',
    ],
    [
      'the record restored from another slot',
      [encodeStpFramePush(32), encodeAddFpSp(0), encodeLdpFrameAt(16), RET],
      'record-slot-mismatch',
    ],
    ['a kprobe BRK hides the instruction it replaced', [BRK_KPROBE, RET], 'kprobe-brk'],
    ['sp moved by a register with no frame pointer', [encodeSubSpReg(0), RET], 'sp-unknown'],
    [
      'two paths meet with different frames',
      [encodeCbz(0, at(0), at(3)), encodeStpFramePush(16), encodeAddFpSp(0), NOP, RET],
      'paths-disagree',
    ],
  ];
  for (const [name, words, reason] of cases) it(name, () => expect(summary(words)).toBe(reason));

  it('a refusal says where and why', () => {
    const f = analyseFunction(
      'f',
      0x1000,
      Uint32Array.from([encodeStpFramePush(16), MOV_X29_X0, RET]),
    );
    expect(f.refusal).toEqual({
      reason: 'x29-clobbered',
      offset: 4,
      detail: 'x29 is used as a general register',
    });
    expect(f.state.length).toBe(0);
  });

  it('SYM_CODE is refused as such, whatever its text', () => {
    expect(
      analyseFunction('vectors', 0x1000, Uint32Array.from([RET]), { refuseAs: 'sym-code' }).refusal
        ?.reason,
    ).toBe('sym-code');
  });
});
