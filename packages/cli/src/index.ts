// The command, and the walk behind `klpsim walk` for programs that want its report.
export { renderReport, type WalkReport, type WalkRequest, walkCapture } from './commands/walk.js';
export { main } from './main.js';
