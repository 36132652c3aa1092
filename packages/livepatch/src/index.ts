export { measurePass, scaleScenario } from './bench.js';
export {
  type FtraceWorld,
  klpEnabledStore,
  klpEnablePatch,
  klpForceStore,
  klpModuleComing,
  klpModuleGoing,
} from './core.js';
export { klpFtraceHandler, noFtraceLocation } from './ftrace.js';
export * from './model.js';
export { type PredictedTask, type Prediction, predictTransition, tasksOf } from './predict.js';
export * from './sched.js';
export { mixedVersionOn } from './sim/checker.js';
export { defaultScenario } from './sim/default.js';
export {
  type ChainTemplate,
  chainBase,
  type SimEnvironment,
  scenarioEnvironment,
} from './sim/environment.js';
export {
  type BlockedBy,
  type KpatchOutcome,
  type PendingTask,
  patchStateAt,
  type SysfsPatch,
  type SysfsSnapshot,
  sysfsAt,
  type TaskReport,
  type TaskSwitch,
  type TimelineEntry,
  type TransitionLog,
  type TransitionRecord,
  type Violation,
} from './sim/log.js';
export {
  KPATCH_ENABLE_WAIT,
  KPATCH_SIGNAL_WAIT,
  retryTime,
  type SimStats,
  type SimulateOptions,
  simulate,
} from './sim/run.js';
export { type RunOutcome, type RunsSummary, runOutcome, summarizeRuns } from './sim/runs.js';
export * from './sim/schema.js';
export { type KlpTasks, LpTaskList } from './task-list.js';
export {
  type CallbackKind,
  checkedRange,
  checkedRanges,
  KlpCore,
  type KlpObserver,
  klpCancelTransition,
  klpCheckStack,
  klpCheckStackFunc,
  klpCompleteTransition,
  klpCopyProcess,
  klpForceTransition,
  klpInitTransition,
  klpReverseTransition,
  klpSchedTrySwitch,
  klpSendSignals,
  klpStartTransition,
  klpTryCompleteTransition,
  klpTrySwitchTask,
  klpUpdatePatchState,
  MAX_STACK_ENTRIES,
  type MessageLevel,
  SIGNALS_TIMEOUT,
  type SwitchBlock,
  type SwitchVia,
} from './transition.js';
