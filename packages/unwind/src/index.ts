export { CHECK_NAMES, type CheckName } from './checks.js';
export {
  type ArenaViews,
  buildStackArena,
  type SharedStackArena,
  type StackArena,
  shareStackArena,
  viewsOf,
} from './flat/arena.js';
export {
  type BatchOptions,
  batchSize,
  flatEntries,
  walkBatch,
  walkFlatRange,
  walkHandedBack,
} from './flat/batch.js';
export { cReferenceSource, outcomeHash, stackArenaFileParts } from './flat/export.js';
export { WalkPool } from './flat/pool.js';
export { flatMode, HANDED_BACK, walkTaskFlat } from './flat/walk.js';
export { useWalkCore, walkCoreModule } from './flat/wasm.js';
export * from './judge/index.js';
export { compareWithKernel, type OracleComparison } from './oracle.js';
export {
  POLICIES,
  POLICY_NAMES,
  type Policy,
  type PolicyMismatch,
  type PolicyName,
  policyByName,
} from './policies/index.js';
export { REASON_CODES, REASON_TEXT, type ReasonCode, type WalkReason } from './reason.js';
export { EINVAL, ENOENT, Source, UnwindState } from './state.js';
export { TraceBuffer } from './trace.js';
export {
  archStackWalk,
  archStackWalkReliable,
  stackTraceSaveTskReliable,
  type TraceEntry,
  unwindConsume,
  unwindFailed,
  unwindIsReliable,
  unwindNext,
  unwindStart,
  Walker,
  type WalkFrom,
  type WalkOptions,
  type WalkResult,
  walkerFor,
} from './walk.js';
