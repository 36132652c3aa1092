export { CHECK_NAMES, type CheckName } from './checks.js';
export { POLICIES, POLICY_NAMES, policyByName, type Policy, type PolicyMismatch, type PolicyName } from './policies/index.js';
export { REASON_CODES, REASON_TEXT, type ReasonCode, type WalkReason } from './reason.js';
export { EINVAL, ENOENT, Source, UnwindState } from './state.js';
export { TraceBuffer } from './trace.js';
export {
  Walker,
  walkerFor,
  archStackWalk,
  archStackWalkReliable,
  stackTraceSaveTskReliable,
  type TraceEntry,
  type WalkFrom,
  type WalkOptions,
  type WalkResult,
} from './walk.js';
export { compareWithKernel, type OracleComparison } from './oracle.js';
