import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Walker } from '../walk.js';
import { MAX_THREADS, type StackArena, shareStackArena } from './arena.js';
import { unwindPackageDir } from './assets.js';
import { type BatchOptions, batchSize, walkHandedBack } from './batch.js';
import { HANDED_BACK } from './walk.js';
import type { PoolJob, PoolStart } from './worker.js';

/**
 * Worker threads over one shared stack arena, for large batches (mutation
 * runs, million-task passes). Task ranges are split evenly and in order, so
 * every task's verdict is the same for any number of workers; the walks the
 * flat path hands back are finished by the reference code in this thread.
 * Workers run the built code (dist/flat/worker.js): build before using a
 * pool from the sources.
 */
export class WalkPool {
  private constructor(
    private readonly workers: readonly Worker[],
    readonly arena: StackArena,
  ) {}

  /** Starts `n` workers (at most MAX_THREADS - 1) viewing `arena`; resolves when all are ready, rejects if one fails to start. */
  static async start(arena: StackArena, n: number): Promise<WalkPool> {
    if (n < 1 || n >= MAX_THREADS)
      throw new RangeError(`WalkPool: ${n} workers (expected 1 to ${MAX_THREADS - 1})`);
    const url = pathToFileURL(join(unwindPackageDir(), 'dist', 'flat', 'worker.js'));
    const shared = shareStackArena(arena);
    const workers: Worker[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const start: PoolStart = { arena: shared, slot: i + 1 };
        const w = new Worker(url, { workerData: start, execArgv: [] });
        workers.push(w);
        await reply(w);
      }
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new WalkPool(workers, arena);
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Walks every task of the arena `passes` times (a benchmark repeats; one
   * pass is the batch walk): `arena.verdicts` as `walkBatch` leaves them.
   * Resolves with the entries of one pass.
   */
  async walk(walker: Walker, options: BatchOptions, passes = 1): Promise<number> {
    const n = this.arena.ntasks;
    const verdicts = this.arena.verdicts;
    if (!walker.plainFrames) {
      // A policy with no plain frames: the flat walk has nothing to do.
      let frames = 0;
      for (let p = 0; p < passes; p++) {
        verdicts.fill(HANDED_BACK, 0, n);
        frames = walkHandedBack(walker, options, 0, n, verdicts);
      }
      return frames;
    }
    const share = Math.ceil(n / this.workers.length);
    const jobs = this.workers.map((w, i) => {
      const first = Math.min(n, i * share);
      const job: PoolJob = {
        mode: walker.flatModeOf(options.reliable),
        size: batchSize(options),
        first,
        count: Math.min(share, n - first),
        passes,
      };
      w.postMessage(job);
      return reply(w);
    });
    let frames = 0;
    for (const r of await Promise.all(jobs)) frames += (r as { frames: number }).frames;
    // The walks handed back, by the reference code: once per pass, as a pass would.
    const back: number[] = [];
    for (let i = 0; i < n; i++) if (verdicts[i] === HANDED_BACK) back.push(i);
    let backFrames = 0;
    for (let p = 0; p < passes; p++) {
      for (const i of back) verdicts[i] = HANDED_BACK;
      backFrames = walkHandedBack(walker, options, 0, n, verdicts);
    }
    return frames + backFrames;
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The next message from `w`, or its error. */
function reply(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      w.off('error', onError);
      resolve(m);
    };
    const onError = (e: Error) => {
      w.off('message', onMessage);
      reject(e);
    };
    w.once('message', onMessage);
    w.once('error', onError);
  });
}
