export { captureVectors } from './corpus/captures.js';
export { frameStateVectors } from './corpus/frame-state.js';
export { type CorpusRecipe, corpusRecipes } from './corpus/recipes.js';
export { kernelRuleVectors } from './corpus/rules.js';
export { knownUnsoundVectors } from './corpus/unsound.js';
export {
  analysedFunction,
  expectationPcs,
  frameStatesDiff,
  frameStatesFromAnalysis,
  frameStatesFromBuilder,
} from './frame-states.js';
export {
  type LoadedVector,
  loadVectorFile,
  loadVectors,
  parseVector,
  vectorFiles,
} from './load.js';
export { fromOf, type VectorMachine, vectorMachines } from './machines.js';
export {
  MUTATION_KINDS,
  type MutateOptions,
  type MutateReport,
  type MutationFailure,
  type MutationKind,
  mutatedVectors,
  mutateVectors,
  RELIABLE_SETS,
  type SetCounts,
} from './mutate/index.js';
export {
  builtFrameStates,
  FRAME_STATE_POLICIES,
  type NewVectorMeta,
  newVector,
  vectorFrom,
} from './new.js';
export { diff, type RunOptions, runVector, type VectorOutcome, walkBothWays } from './run.js';
export {
  type Expectation,
  expectationSchema,
  type FrameStateFunction,
  type FrameStateRow,
  type FrameStates,
  frameStateFunctionSchema,
  frameStateRowSchema,
  frameStatesSchema,
  fromSchema,
  ORIGINS,
  traceEntrySchema,
  VECTOR_FORMAT,
  type Vector,
  type VectorFrom,
  type VectorInput,
  type VectorWalk,
  vectorJsonSchema,
  vectorSchema,
  walkSchema,
} from './schema.js';
