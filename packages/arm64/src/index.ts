export * from './addr.js';
export * from './pac.js';
export * from './encode.js';
export * from './callsite.js';
export { type DecodedInsn, disassemble, forEachInstruction } from './disasm.js';
