export { main } from './main.js';
export { walkCapture, renderReport, type WalkReport, type WalkRequest } from './commands/walk.js';
export { measureWalks } from './commands/bench.js';
