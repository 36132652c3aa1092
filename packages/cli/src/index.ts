export { measureWalks } from './commands/bench.js';
export { renderReport, type WalkReport, type WalkRequest, walkCapture } from './commands/walk.js';
export { main } from './main.js';
