import { parentPort, workerData } from 'node:worker_threads';
import { type SharedStackArena, stackArenaViews } from './arena.js';
import { flatEntries, walkFlatRange } from './batch.js';

/**
 * One worker of a WalkPool (pool.ts): views the shared stack arena once,
 * then runs the flat walk over the task ranges it is handed, writing each
 * task's outcome into the shared verdicts. It has no Machine: the tasks the
 * flat walk hands back are walked by the reference code in the main thread.
 */

/** A range to walk, `passes` times (the verdicts are the same each time). */
export interface PoolJob {
  readonly mode: number;
  readonly size: number;
  readonly first: number;
  readonly count: number;
  readonly passes: number;
  readonly verdicts: SharedArrayBuffer;
}

const arena = stackArenaViews(workerData as SharedStackArena);
let entries = flatEntries(100);

parentPort!.on('message', (job: PoolJob) => {
  if (entries.his.length < job.size) entries = flatEntries(job.size);
  const verdicts = new Int32Array(job.verdicts);
  let frames = 0;
  for (let p = 0; p < job.passes; p++)
    frames = walkFlatRange(arena, job.mode, job.size, job.first, job.count, verdicts, entries);
  parentPort!.postMessage({ frames });
});
parentPort!.postMessage({ ready: true });
