export * from './addr.js';
export * from './callsite.js';
export { type DecodedInsn, disassemble, forEachInstruction } from './disasm.js';
export * from './encode.js';
export * from './pac.js';
