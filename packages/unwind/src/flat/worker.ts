import { parentPort, workerData } from 'node:worker_threads';
import { MAX_THREADS, type SharedStackArena, viewsOf } from './arena.js';
import { flatEntries, walkFlatRange } from './batch.js';

/**
 * One worker of a WalkPool (pool.ts): views the shared stack arena once,
 * then runs the flat walk over the task ranges it is handed, writing each
 * task's outcome into the arena's shared verdicts. It has no Machine: the tasks the
 * flat walk hands back are walked by the reference code in the main thread.
 */

/** What a worker is started with: the arena and its trace slot (1 to MAX_THREADS - 1). */
export interface PoolStart {
  readonly arena: SharedStackArena;
  readonly slot: number;
}

/** A range to walk, `passes` times (the outcomes are the same each time). */
export interface PoolJob {
  readonly mode: number;
  readonly size: number;
  readonly first: number;
  readonly count: number;
  readonly passes: number;
}

const start = workerData as PoolStart;
const arena = viewsOf(start.arena);
const slot = Math.min(start.slot, MAX_THREADS - 1);
let entries = flatEntries(100);

parentPort!.on('message', (job: PoolJob) => {
  if (entries.his.length < job.size) entries = flatEntries(job.size);
  let frames = 0;
  for (let p = 0; p < job.passes; p++)
    frames = walkFlatRange(arena, job.mode, job.size, job.first, job.count, slot, entries);
  parentPort!.postMessage({ frames });
});
parentPort!.postMessage({ ready: true });
