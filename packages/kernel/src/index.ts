export {
  type BuiltBoundary,
  type BuiltMachine,
  type BuiltStart,
  type BuiltTask,
  buildMachine,
  type ExpectedEntry,
} from './builder/build.js';
export {
  IDLE_TASK,
  irqPreempted,
  KTHREAD_TAIL,
  KWORKER,
  SCHEDULE_TOP,
  SYSCALL_TAIL,
  USER_NANOSLEEP,
} from './builder/catalogue.js';
export * from './builder/describe.js';
export {
  type BuiltFrameRow,
  type BuiltFunctionFrames,
  FRAME_SHAPES,
  type FrameShape,
} from './builder/prologue.js';
export { mulberry32, type SyntheticOptions, syntheticKernelDesc } from './builder/synthetic.js';
export { exportCapture } from './capture/export.js';
export {
  importCapture,
  type KernelOracle,
  type LoadCaptureOptions,
  type LoadedCapture,
  loadCapture,
} from './capture/import.js';
export {
  type CaptureDocument,
  type CaptureTask,
  type CaptureTraceEntry,
  captureSchema,
  hex64 as hex64Schema,
} from './capture/schema.js';
// ok() and fail() build Results inside the packages; callers only read them.
export {
  formatInputError,
  type InputError,
  InputFault,
  type KernelErrorCode,
  type Result,
} from './errors.js';
export * from './kallsyms.js';
export * from './machine.js';
export * from './memory.js';
export { cloneMachine, type KernelModule, loadModule, unloadModule } from './module.js';
export { type RawExportOptions, rawFromMachine } from './raw/export.js';
export { machineFromRaw } from './raw/import.js';
export { type RawState, rawStateSchema } from './raw/schema.js';
export { upperBound } from './search.js';
export * from './symcode.js';
export * from './task.js';
export * from './text.js';
export { formatPath, parseJson, validate } from './validate.js';
