// capstone-wasm 1.0.3 ships types only behind its "require" condition, which
// NodeNext resolution does not reach from ESM; this is the part we use.
declare module 'capstone-wasm' {
  export interface Insn {
    id: number;
    address: number | bigint;
    size: number;
    bytes: Uint8Array;
    mnemonic: string;
    opStr: string;
  }
  export class Capstone {
    constructor(arch: number, mode: number);
    disasm(
      data: number[] | Uint8Array,
      options?: { address?: number | bigint; count?: number },
    ): Insn[];
    close(): void;
  }
  export const Const: { CS_ARCH_ARM64: number; CS_MODE_ARM: number };
  export function loadCapstone(args?: Record<string, unknown>): Promise<void>;
}
