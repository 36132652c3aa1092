import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addrFromBigInt,
  addrHi,
  addrLo,
  addrToBigInt,
  foldAddress,
  formatAddr,
  HEX64_PATTERN,
  isHex64,
  isKernelAddr,
  parseAddr,
  parseHex64,
} from './addr.js';
import { pacKernelMask, pacUserMask, signPacHi, stripInsnPac, stripInsnPacHi } from './pac.js';

describe('folded addresses', () => {
  it('round-trip kernel and user addresses exactly, and keep their order', () => {
    for (const v of [
      0xffff800008baedb8n,
      0xfff0000000000000n,
      0xffffffffffffffffn,
      0n,
      0x0000aaaaaaab0f24n,
      0x000fffffffffffffn,
    ]) {
      const a = addrFromBigInt(v);
      expect(addrToBigInt(a)).toBe(v);
      expect(formatAddr(a)).toBe(`0x${v.toString(16).padStart(16, '0')}`);
      expect(foldAddress(addrHi(a), addrLo(a))).toBe(a);
    }
    expect(isKernelAddr(parseAddr('0xffff800008baedb8')!)).toBe(true);
    expect(isKernelAddr(parseAddr('0x0000aaaaaaab0f24')!)).toBe(false);
    expect(parseAddr('0xffff800008baedb8')! > parseAddr('0xffff800008baedb0')!).toBe(true);
    expect(parseAddr('0xffff800008baedb8')! > parseAddr('0x000fffffffffffff')!).toBe(true);
  });

  it('fold a value in neither half (a PAC still present) to NaN, and reject non-hex', () => {
    expect(Number.isNaN(parseAddr('0x8ad8800008baf1a0')!)).toBe(true);
    expect(formatAddr(Number.NaN)).toBe('(non-canonical)');
    expect(parseAddr('ffff')).toBeNull();
    expect(parseAddr('0x1ffffffffffffffff')).toBeNull();
  });
});

describe('pointer authentication', () => {
  it('strips the PAC of real signed return addresses (6.1: 48-bit VA, 7.2: 52-bit VA)', () => {
    // Saved LRs read off the real captures' stacks, and what the kernel printed for them.
    expect(
      formatAddr(stripInsnPac(0x8ad88000, 0x08baf1a0, pacKernelMask(48), pacUserMask(48))),
    ).toBe('0xffff800008baf1a0');
    expect(
      formatAddr(stripInsnPac(0xd1cf8000, 0x810cd0c0, pacKernelMask(52), pacUserMask(52))),
    ).toBe('0xffff8000810cd0c0');
  });

  it('bit 55 picks the half: a value with it clear keeps its top byte and never becomes kernel', () => {
    // 6.1 arch/arm64/include/asm/pointer_auth.h, ptrauth_strip_insn_pac:
    // bit 55 clear -> ptr & ~GENMASK(54, vabits). Mainline's XPACLRI
    // (asm/compiler.h) does the same with TCR_EL1.TBI0 set (arch/arm64/mm/proc.S).
    expect(
      formatAddr(stripInsnPac(0x0012aaaa, 0xaab0f24, pacKernelMask(48), pacUserMask(48))),
    ).toBe('0x0000aaaa0aab0f24');
    expect(isKernelAddr(stripInsnPac(0, 0, pacKernelMask(48), pacUserMask(48)))).toBe(false);
    // A kernel return address whose bit 55 was flipped: 0xff7f8000 -> top byte kept,
    // bits 54..48 cleared: 0xff008000, which is in neither half.
    const hi = stripInsnPacHi(0xff7f8000, pacKernelMask(48), pacUserMask(48));
    expect(hi).toBe(0xff008000);
    expect(Number.isNaN(foldAddress(hi, 0x08baf1a0))).toBe(true);
  });

  it('signing changes the PAC field only, deterministically, and stripping undoes it', () => {
    for (const va of [48, 52]) {
      const hi = 0xffff8000;
      const signed = signPacHi(hi, 0x08baf1a0, 0x09aabb00, 0x1234, va);
      expect(signed).not.toBe(hi);
      expect(signPacHi(hi, 0x08baf1a0, 0x09aabb00, 0x1234, va)).toBe(signed);
      expect(signPacHi(hi, 0x08baf1a0, 0x09aabb10, 0x1234, va)).not.toBe(signed);
      expect(formatAddr(stripInsnPac(signed, 0x08baf1a0, pacKernelMask(va), pacUserMask(va)))).toBe(
        '0xffff800008baf1a0',
      );
    }
  });
});

describe('hex parsing without BigInt', () => {
  // The reference is BigInt's own parser, an independent implementation of the same reading.
  const viaBigInt = (s: string) => {
    const v = BigInt(s);
    return { hi: Number(v >> 32n), lo: Number(v & 0xffffffffn) };
  };

  it('gives the halves BigInt gives, for every 64-bit value, any digit count and case', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.nat(16),
        fc.boolean(),
        (v, pad, upper) => {
          let digits = v.toString(16).padStart(pad, '0');
          if (upper) digits = digits.toUpperCase();
          const s = `0x${digits}`;
          expect(parseHex64(s)).toEqual(viaBigInt(s));
          expect(parseAddr(s)).toEqual(addrFromBigInt(v));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('reads the edges exactly: 8 and 9 digits, 16 digits, leading zeros, all ones', () => {
    for (const s of [
      '0x0',
      '0xffffffff',
      '0x100000000',
      '0x0000000100000000',
      '0xffffffffffffffff',
      '0xFFFF800008BAEDB8',
      '0x00000000000000001',
    ]) {
      if (s.length > 18) expect(parseHex64(s)).toBeNull();
      else expect(parseHex64(s)).toEqual(viaBigInt(s));
    }
  });

  it('refuses what the capture schema refuses: no digits, 17 digits, a sign, a space, no 0x', () => {
    for (const s of [
      '0x',
      '0x1ffffffffffffffff',
      '-0x1',
      '0x-1',
      ' 0x1',
      '0x1 ',
      '1',
      '0X1',
      '0x1g',
      '0x+1',
    ])
      expect([isHex64(s), parseHex64(s), parseAddr(s)]).toEqual([false, null, null]);
  });

  it('accepts exactly what HEX64_PATTERN accepts, whatever the characters', () => {
    // Every character next to a digit or letter boundary, and random strings around 0x.
    const edges = '/0189:@AFGZ`afgz{xX \u0660\uff10';
    const pieces = fc.string({ unit: fc.constantFrom(...edges), maxLength: 18 });
    fc.assert(
      fc.property(fc.constantFrom('0x', '0X', '', 'x', '00x'), pieces, (head, tail) => {
        const s = head + tail;
        expect(isHex64(s)).toBe(HEX64_PATTERN.test(s));
        expect(parseHex64(s) === null).toBe(!HEX64_PATTERN.test(s));
      }),
      { numRuns: 5000 },
    );
  });
});
