export { type AnalyseOptions, analyseFunction, type FunctionFrames } from './analyse.js';
export { type FrameCoverage, frameCoverage } from './coverage.js';
export { decodeFrameInsn, type FrameInsn, type IndexMode } from './decode.js';
export { analyseKernelFunction, type FunctionBounds, kernelFunctions } from './kernel.js';
export * from './state.js';
export {
  type FrameRange,
  FrameTable,
  formatCfa,
  frameRanges,
  frameTableOf,
  rowOf,
} from './table.js';
