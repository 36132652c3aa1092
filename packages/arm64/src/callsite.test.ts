import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CALL_MNEMONICS, isCallWord } from './callsite.js';
import { forEachInstruction } from './disasm.js';
import {
  BTI_C,
  EncodeError,
  encodeAddFpSp,
  encodeB,
  encodeBl,
  encodeBlr,
  encodeBlra,
  encodeBlraz,
  encodeBr,
  encodeCbz,
  encodeLdpFrameAt,
  encodeLdpFramePop,
  encodeRet,
  encodeSpDown,
  encodeStpFrameAt,
  encodeStpFramePush,
  encodeSubSpReg,
  MOV_SP_X29,
  MOV_X29_SP,
  PACIASP,
  RET,
  RETAA,
  RETAB,
} from './encode.js';

const fixture = (rel: string) =>
  fileURLToPath(new URL(`../../../fixtures/captures/${rel}`, import.meta.url));

const TEXTS = [
  'linux-6.1-arm64-plain/text-6.1.0-50-cloud-arm64.bin',
  'linux-7.2-arm64-plain/text-7.2.13+deb14-cloud-arm64-mainline-plain.bin',
];

describe('isCallWord agrees with capstone', () => {
  for (const rel of TEXTS) {
    it(`on every word of ${rel.split('/')[0]}`, async () => {
      const bytes = new Uint8Array(readFileSync(fixture(rel)));
      let words = 0;
      let calls = 0;
      const mismatches: string[] = [];
      await forEachInstruction(bytes, (insn) => {
        words++;
        const capstoneSaysCall = CALL_MNEMONICS.has(insn.mnemonic);
        if (capstoneSaysCall) calls++;
        if (capstoneSaysCall !== isCallWord(insn.word) && mismatches.length < 10) {
          mismatches.push(
            `+0x${insn.offset.toString(16)} ${insn.word.toString(16)} ${insn.mnemonic} ${insn.operands}`,
          );
        }
      });
      expect(mismatches).toEqual([]);
      expect(words).toBe(bytes.length / 4);
      // A kernel has hundreds of thousands of calls; a decoder that saw none is broken.
      expect(calls).toBeGreaterThan(100_000);
    });
  }
});

describe('encoders', () => {
  it('produce what capstone decodes back', async () => {
    const words = [
      encodeBl(0, 0x100),
      encodeBlr(8),
      encodeBlra('a', 16, 17),
      encodeBlra('b', 3, 31),
      encodeBlraz('a', 2),
      encodeBlraz('b', 9),
      encodeBr(16),
      encodeB(0, -8),
      encodeStpFramePush(48),
      encodeLdpFramePop(48),
      MOV_X29_SP,
      PACIASP,
      RET,
      RETAA,
      RETAB,
      encodeRet(1),
      BTI_C,
    ];
    const bytes = new Uint8Array(new Uint32Array(words).buffer);
    const text: string[] = [];
    await forEachInstruction(bytes, (i) => text.push(`${i.mnemonic} ${i.operands}`.trim()));
    expect(text).toEqual([
      'bl #0x100',
      'blr x8',
      'blraa x16, x17',
      'blrab x3, sp',
      'blraaz x2',
      'blrabz x9',
      'br x16',
      'b #0x14', // capstone prints the target: offset 0x1c - 8
      'stp x29, x30, [sp, #-0x30]!',
      'ldp x29, x30, [sp], #0x30',
      'mov x29, sp',
      'paciasp',
      'ret',
      'retaa',
      'retab',
      'ret x1',
      'hint #0x22', // bti c, as capstone prints it
    ]);
    expect(words.slice(0, 6).every(isCallWord)).toBe(true);
    expect(words.slice(6).some(isCallWord)).toBe(false);
  });
});

describe('frame encoders (the builder writes them)', () => {
  it('produce what capstone decodes back', async () => {
    const words = [
      encodeSpDown(64),
      encodeSpDown(-64),
      encodeStpFrameAt(48),
      encodeLdpFrameAt(48),
      encodeAddFpSp(16),
      encodeAddFpSp(0),
      MOV_SP_X29,
      encodeSubSpReg(0),
      encodeCbz(1, 0, 0x40),
    ];
    const bytes = new Uint8Array(new Uint32Array(words).buffer);
    const text: string[] = [];
    await forEachInstruction(bytes, (i) => text.push(`${i.mnemonic} ${i.operands}`.trim()));
    expect(text).toEqual([
      'sub sp, sp, #0x40',
      'add sp, sp, #0x40',
      'stp x29, x30, [sp, #0x30]',
      'ldp x29, x30, [sp, #0x30]',
      'add x29, sp, #0x10',
      'mov x29, sp',
      'mov sp, x29',
      'sub sp, sp, x0',
      'cbz x1, #0x60', // capstone prints the target: offset 0x20 + 0x40
    ]);
  });

  it('refuse what the instruction cannot hold', () => {
    expect(() => encodeSpDown(4096)).toThrow(EncodeError);
    expect(() => encodeStpFrameAt(12)).toThrow(EncodeError);
    expect(() => encodeCbz(0, 0, 2 ** 21)).toThrow(EncodeError);
  });
});
