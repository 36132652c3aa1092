export { type BoundaryTask, type BoundaryVerdict, boundaryTasks } from './boundaries.js';
export { chainDiff, type JudgedRow, judge, policiesFor, type ReliableLabel } from './judge.js';
export {
  type Draw,
  type DrawSource,
  drawInstructions,
  drawName,
  drawSource,
  populationDesc,
} from './population.js';
