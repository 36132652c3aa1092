export {
  type BuiltMachine,
  type BuiltStart,
  type BuiltTask,
  buildMachine,
  type ExpectedEntry,
} from './builder/build.js';
export { KTHREAD_TAIL, SCHEDULE_TOP, SYSCALL_TAIL } from './builder/catalogue.js';
export * from './builder/describe.js';
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
} from './capture/schema.js';
// ok() and fail() build Results inside the packages; callers only read them.
export {
  formatInputError,
  type InputError,
  type KernelErrorCode,
  type Result,
} from './errors.js';
export * from './kallsyms.js';
export * from './machine.js';
export * from './memory.js';
export * from './symcode.js';
export * from './task.js';
export * from './text.js';
export { formatPath, validate } from './validate.js';
