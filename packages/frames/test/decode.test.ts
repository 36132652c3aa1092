import { disassemble, forEachInstruction } from '@klpsim/arm64';
import { loadCapture } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import { decodeFrameInsn, type FrameInsn } from '../src/index.js';

/**
 * Our decoder against capstone (an independent AArch64 decoder) over a
 * quarter of a million words of the real Linux 6.1 text: the same frame-relevant kind for every
 * instruction, and every instruction capstone shows writing x29, x30 or sp
 * is one our decoder says writes it.
 */

const CAP61 = new URL(
  '../../../fixtures/captures/linux-6.1-arm64-plain/capture.json',
  import.meta.url,
).pathname;

const WINDOWS = 16;
const WINDOW_BYTES = 64 * 1024;

const num = (s: string) => (s.startsWith('-') ? -Number(s.slice(1)) : Number(s));

/** The kind capstone's text gives, for the instructions our decoder names. */
function kindOf(mn: string, ops: string): string {
  const rec = /^x29, x30, \[sp(?:, #(-?(?:0x)?[0-9a-f]+))?\](!?)(?:, #(-?(?:0x)?[0-9a-f]+))?$/.exec(
    ops,
  );
  if ((mn === 'stp' || mn === 'ldp') && rec !== null) {
    const mode = rec[2] === '!' ? 'pre' : rec[3] !== undefined ? 'post' : 'offset';
    const imm = num(rec[1] ?? rec[3] ?? '0');
    return `${mn}-fp-lr ${mode} ${imm}`;
  }
  const lr = /^x30, \[sp(?:, #(-?(?:0x)?[0-9a-f]+))?\](!?)(?:, #(-?(?:0x)?[0-9a-f]+))?$/.exec(ops);
  if ((mn === 'str' || mn === 'ldr' || mn === 'stur' || mn === 'ldur') && lr !== null) {
    const mode = lr[2] === '!' ? 'pre' : lr[3] !== undefined ? 'post' : 'offset';
    return `${mn.startsWith('st') ? 'str' : 'ldr'}-lr ${mode} ${num(lr[1] ?? lr[3] ?? '0')}`;
  }
  const spImm = /^sp, sp, #((?:0x)?[0-9a-f]+)(, lsl #12)?$/.exec(ops);
  if ((mn === 'add' || mn === 'sub') && spImm !== null) {
    const v = num(spImm[1]!) * (spImm[2] !== undefined ? 4096 : 1);
    return `sp-adjust ${mn === 'add' ? v : -v}`;
  }
  if (mn === 'mov' && ops === 'x29, sp') return 'fp-from-sp 0';
  const fpSp = /^x29, sp, #((?:0x)?[0-9a-f]+)$/.exec(ops);
  if (mn === 'add' && fpSp !== null) return `fp-from-sp ${num(fpSp[1]!)}`;
  if (mn === 'mov' && ops === 'sp, x29') return 'sp-from-fp 0';
  const spFp = /^sp, x29, #((?:0x)?[0-9a-f]+)$/.exec(ops);
  if ((mn === 'add' || mn === 'sub') && spFp !== null)
    return `sp-from-fp ${mn === 'add' ? num(spFp[1]!) : -num(spFp[1]!)}`;
  if (mn === 'mov' && ops === 'x9, x30') return 'mov-x9-lr';
  if (/^paci[ab](sp|z)$/.test(mn)) return 'pac-sign';
  if (/^auti[ab](sp|z)$/.test(mn)) return 'pac-auth';
  if (mn === 'xpaclri') return 'pac-strip';
  if (mn === 'ret' || mn === 'retaa' || mn === 'retab') return 'ret';
  if (mn === 'b') return 'b';
  if (/^bc?\./.test(mn) || /^(cbn?z|tbn?z)$/.test(mn)) return 'b-cond';
  if (mn === 'bl') return 'bl';
  if (/^blr(aa|ab|aaz|abz)?$/.test(mn)) return 'blr';
  if (/^br(aa|ab|aaz|abz)?$/.test(mn)) return 'br';
  if (mn === 'brk') return `brk ${num(ops.slice(1))}`;
  if (mn === 'udf' || /^eret/.test(mn) || mn === 'drps') return 'stop';
  if (/^(nop|hint|bti.*|csdb|esb|yield|wfe|wfi|sevl?|dgh|psb|tsb|clearbhb|chkfeat)$/.test(mn))
    return 'hint';
  return 'other';
}

function ours(d: FrameInsn): string {
  switch (d.kind) {
    case 'stp-fp-lr':
    case 'ldp-fp-lr':
    case 'str-lr':
    case 'ldr-lr':
      return `${d.kind} ${d.mode} ${d.imm}`;
    case 'sp-adjust':
      return `sp-adjust ${d.delta}`;
    case 'fp-from-sp':
    case 'sp-from-fp':
      return `${d.kind} ${d.imm}`;
    case 'brk':
      return `brk ${d.imm}`;
    default:
      return d.kind;
  }
}

/** Mnemonics whose first operand is not written. */
const NO_DEST =
  /^(st(?!xr|lxr|xp|lxp)|prfm|prfum|cmp|cmn|tst|ccmp|ccmn|fcmp|fccmp|cbn?z|tbn?z|b|bl|br|blr|ret|msr|sys|dc|ic|tlbi|at|hint|nop|bti|brk|hvc|smc|svc|isb|dsb|dmb|sb|csdb|clrex|autda|autdb)/;

describe('the frame decoder agrees with capstone', () => {
  it('on a quarter million words of the Linux 6.1 text', async () => {
    const r = loadCapture(CAP61);
    if (!r.ok) throw new Error(r.error.message);
    const region = r.value.machine.memory.regionOf(r.value.machine.text.core.start, 4)!;
    // Sixteen windows of 64 KiB spread over the text (a quarter million words):
    // capstone decodes about half a million words a second, and the suite shares two cores.
    const step = Math.floor(region.bytes.length / WINDOWS / 4) * 4;
    const bytes = new Uint8Array(WINDOWS * WINDOW_BYTES);
    for (let k = 0; k < WINDOWS; k++)
      bytes.set(region.bytes.subarray(k * step, k * step + WINDOW_BYTES), k * WINDOW_BYTES);
    const kinds: string[] = [];
    const writes: string[] = [];
    let frameWords = 0;
    await forEachInstruction(bytes, (insn) => {
      if (insn.mnemonic === '.inst') return;
      const d = decodeFrameInsn(insn.word);
      const want = kindOf(insn.mnemonic, insn.operands);
      const got = ours(d);
      const kindOnly = got.split(' ')[0]!;
      if (want !== 'other' && want !== 'hint') frameWords++;
      if (
        want === 'hint'
          ? kindOnly !== 'hint'
          : want === 'other'
            ? kindOnly !== 'other'
            : want !== got
      ) {
        if (kinds.length < 20)
          kinds.push(`${insn.word.toString(16)} ${insn.mnemonic} ${insn.operands}: ${got}`);
      }
      if (d.kind !== 'other') return;
      const first = insn.operands.split(',')[0]!.trim();
      const dests = NO_DEST.test(insn.mnemonic)
        ? []
        : [
            first,
            ...(/^ld[a-z]*p$/.test(insn.mnemonic) ? [insn.operands.split(',')[1]!.trim()] : []),
          ];
      const need = (reg: string, bit: number) =>
        dests.some((x) => x === `x${reg}` || x === `w${reg}` || (reg === 'sp' && x === 'sp')) &&
        (d.writes & bit) === 0;
      if ((need('29', 1 << 29) || need('30', 1 << 30) || need('sp', 1 << 31)) && writes.length < 20)
        writes.push(
          `${insn.word.toString(16)} ${insn.mnemonic} ${insn.operands}: writes ${d.writes.toString(16)}`,
        );
    });
    expect(kinds).toEqual([]);
    expect(writes).toEqual([]);
    expect(frameWords).toBeGreaterThan(10_000);
  });

  it('branch offsets: capstone decoding each word at address 0 gives our offset as the target', async () => {
    const words = [
      0x14000006, 0x97ffffff, 0x54ffff68, 0xb4000220, 0x361000a1, 0x37f8ffe0, 0x17fffff0,
    ];
    for (const w of words) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, w, true);
      const [insn] = await disassemble(b);
      const target = num(insn!.operands.split('#').at(-1)!);
      const d = decodeFrameInsn(w);
      const offset = 'offset' in d ? d.offset : Number.NaN;
      // capstone prints targets as unsigned 64-bit numbers; fold negative offsets the same way.
      expect(offset < 0 ? 2 ** 64 + offset : offset, insn!.mnemonic).toBe(target);
    }
  });
});
