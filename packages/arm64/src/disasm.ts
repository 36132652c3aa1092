import { Capstone, Const, loadCapstone } from 'capstone-wasm';

/**
 * Disassembly for people, through capstone-wasm behind this one adapter.
 * Not for the hot path (it decodes about half a million words a second);
 * the walk classifies call sites with `callKind`.
 */

/** One decoded instruction: its byte offset in the input, raw word, and text. */
export interface DecodedInsn {
  offset: number;
  word: number;
  mnemonic: string;
  operands: string;
}

// One disasm() call over more than ~64 KiB crashes or hangs the wasm build.
const CHUNK_BYTES = 32 * 1024;

let shared: Capstone | null = null;

/** Loads the wasm module once and returns the shared AArch64 decoder. */
async function decoder(): Promise<Capstone> {
  if (shared === null) {
    await loadCapstone();
    shared = new Capstone(Const.CS_ARCH_ARM64, Const.CS_MODE_ARM);
  }
  return shared;
}

/**
 * Decodes every 4-byte word of `bytes`. Capstone stops at the first word it
 * cannot decode; such a word is reported with mnemonic `.inst` and decoding
 * resumes after it, so the result always has one entry per word.
 */
export async function disassemble(bytes: Uint8Array): Promise<DecodedInsn[]> {
  const out: DecodedInsn[] = [];
  await forEachInstruction(bytes, (insn) => {
    out.push(insn);
  });
  return out;
}

/** Like `disassemble`, but hands each word to `visit` instead of keeping them all. */
export async function forEachInstruction(
  bytes: Uint8Array,
  visit: (insn: DecodedInsn) => void,
): Promise<void> {
  const cs = await decoder();
  const words = Math.floor(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let w = 0;
  while (w < words) {
    const end = Math.min(words, w + CHUNK_BYTES / 4);
    const insns = decodeChunk(cs, bytes.subarray(w * 4, end * 4));
    for (const insn of insns) {
      visit({
        offset: w * 4,
        word: view.getUint32(w * 4, true),
        mnemonic: insn.mnemonic,
        operands: insn.opStr,
      });
      w++;
    }
    if (w < end) {
      // Capstone gave up on this word: show it raw and go on after it.
      const word = view.getUint32(w * 4, true);
      visit({
        offset: w * 4,
        word,
        mnemonic: '.inst',
        operands: `0x${word.toString(16).padStart(8, '0')}`,
      });
      w++;
    }
  }
}

/** Decodes up to the first undecodable word; capstone-wasm throws when that is the very first. */
function decodeChunk(cs: Capstone, chunk: Uint8Array): { mnemonic: string; opStr: string }[] {
  try {
    return cs.disasm(chunk, { address: 0 });
  } catch {
    return [];
  }
}
