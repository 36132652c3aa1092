export { measurePass, scaleScenario } from './bench.js';
export {
  klpEnabledStore,
  klpEnablePatch,
  klpForceStore,
  klpModuleComing,
  klpModuleGoing,
} from './core.js';
export { klpFtraceHandler } from './ftrace.js';
export * from './model.js';
export { type PredictedTask, type Prediction, predictTransition, tasksOf } from './predict.js';
export { defaultScenario } from './sim/default.js';
export { scenarioEnvironment } from './sim/environment.js';
export {
  type BlockedBy,
  type ChainTemplate,
  retryTime,
  type SimEnvironment,
  simulate,
  type TaskReport,
  type TimelineEntry,
  type TransitionLog,
  type Violation,
} from './sim/run.js';
export * from './sim/schema.js';
export {
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
  klpSendSignals,
  klpStartTransition,
  klpTryCompleteTransition,
  klpTrySwitchTask,
  klpUpdatePatchState,
  MAX_STACK_ENTRIES,
  SIGNALS_TIMEOUT,
  type SwitchBlock,
  type SwitchVia,
} from './transition.js';
