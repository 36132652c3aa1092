import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { InputError, Result } from '@klpsim/kernel';
import { fail, ok } from '@klpsim/kernel/internal';
import { loadVectors } from '../load.js';
import type { Vector } from '../schema.js';
import { emptyTally, MutationRunner, type MutationTally, mergeTally } from './run.js';

export { MUTATION_KINDS, type MutationKind } from './mutations.js';
export {
  MAX_FAILURES_KEPT,
  type MutationFailure,
  type MutationTally,
  RELIABLE_SETS,
  type SetCounts,
  type WalkSet,
} from './run.js';

export interface MutateOptions {
  readonly count: number;
  readonly seed: number;
  /** worker_threads to use; 0 runs in this thread. Default: the available cores. */
  readonly workers?: number;
  /** Stacks done so far (called from time to time). */
  readonly onProgress?: (done: number) => void;
}

export interface MutateReport extends MutationTally {
  readonly count: number;
  readonly seed: number;
  /** Stacks the vectors gave to mutate (each task of each recipe vector). */
  readonly bases: number;
}

/**
 * Mutates the stacks of the recipe vectors under `paths` `count` times and
 * checks every walk against the soundness oracle and fast path against
 * reference. Iteration i depends only on (seed, i), so the report is the
 * same for any number of workers. Fails when the vectors cannot be loaded.
 */
export async function mutateVectors(
  paths: readonly string[],
  options: MutateOptions,
): Promise<Result<MutateReport>> {
  const made = runnerFor(paths);
  if (!made.ok) return made;
  const runner = made.value;
  const workers = Math.max(0, Math.min(options.workers ?? availableParallelism(), options.count));
  const tally = emptyTally();
  if (workers === 0) runner.run(options.seed, 0, options.count, tally, options.onProgress);
  else {
    const done = new Array<number>(workers).fill(0);
    const shares = Array.from({ length: workers }, (_, w) => ({
      paths: [...paths],
      seed: options.seed,
      from: Math.floor((options.count * w) / workers),
      to: Math.floor((options.count * (w + 1)) / workers),
    }));
    const tallies = await Promise.all(
      shares.map(
        (share, w) =>
          new Promise<MutationTally>((resolve, reject) => {
            const worker = new Worker(workerUrl(), { workerData: share });
            worker.on('message', (msg: { type: string; done?: number; tally?: MutationTally }) => {
              if (msg.type === 'progress') {
                done[w] = msg.done!;
                options.onProgress?.(done.reduce((a, b) => a + b, 0));
              } else resolve(msg.tally!);
            });
            worker.on('error', reject);
          }),
      ),
    );
    for (const t of tallies) mergeTally(tally, t);
  }
  return ok({ count: options.count, seed: options.seed, bases: runner.baseCount, ...tally });
}

/** Iterations [from, to) of a run as raw vectors with generated expectations (see `MutationRunner.vectorOf`). */
export function mutatedVectors(
  paths: readonly string[],
  seed: number,
  from: number,
  to: number,
): Result<Vector[]> {
  const made = runnerFor(paths);
  if (!made.ok) return made;
  const runner = made.value;
  const out: Vector[] = [];
  for (let i = from; i < to; i++) out.push(runner.vectorOf(seed, i));
  return ok(out);
}

/** A mutation runner over the recipe vectors under `paths`; fails on a bad vector or none with a recipe. */
function runnerFor(paths: readonly string[]): Result<MutationRunner> {
  const loaded = loadVectors(paths);
  if (!loaded.ok) return loaded;
  if (loaded.value.errors.length > 0) return fail(loaded.value.errors[0]!);
  const runner = new MutationRunner(loaded.value.vectors);
  if (runner.baseCount === 0)
    return fail<InputError>({
      code: 'KLPSIM_INPUT_INVALID',
      message: 'no vector with a recipe to mutate',
      file: paths.join(', '),
      expected: 'klpsim-vector/v1 files with a recipe',
    });
  return ok(runner);
}

/** The compiled worker beside this module (dist/mutate/worker.js). */
function workerUrl(): URL {
  const here = new URL(import.meta.url);
  return here.pathname.endsWith('.ts')
    ? new URL('../../dist/mutate/worker.js', here)
    : new URL('./worker.js', here);
}
