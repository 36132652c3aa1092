import { parentPort, workerData } from 'node:worker_threads';
import { loadVectors } from '../load.js';
import { emptyTally, MutationRunner } from './run.js';

/** One worker's share of a mutation run: iterations [from, to), reported back as a tally. */
interface Share {
  readonly paths: string[];
  readonly seed: number;
  readonly from: number;
  readonly to: number;
}

const share = workerData as Share;
const loaded = loadVectors(share.paths);
const tally = emptyTally();
if (loaded.ok) {
  new MutationRunner(loaded.value.vectors).run(share.seed, share.from, share.to, tally, (done) =>
    parentPort?.postMessage({ type: 'progress', done }),
  );
}
parentPort?.postMessage({ type: 'done', tally });
