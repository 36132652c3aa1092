export {
  type AnalyseOptions,
  analyseFunction,
  type FunctionFrames,
  SP_UNKNOWN,
} from './analyse.js';
export { type FrameCoverage, frameCoverage } from './coverage.js';
export { decodeFrameInsn, type FrameInsn, type IndexMode } from './decode.js';
export { analyseKernelFunction, type FunctionBounds, kernelFunctions } from './kernel.js';
export * from './state.js';
export {
  type FrameCursor,
  FrameLookup,
  type FrameRange,
  FrameTable,
  formatCfa,
  frameCursor,
  frameRanges,
  frameTableOf,
  LazyFrameTable,
  lazyFrameTableOf,
  rowOf,
} from './table.js';
