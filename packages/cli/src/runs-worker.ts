import { parentPort, workerData } from 'node:worker_threads';
import { runOutcome, type Scenario, scenarioEnvironment, simulate } from '@klpsim/livepatch';
import { captureLoader } from './commands/transition.js';

/**
 * One worker of `klpsim transition --runs`: loads the scenario's machine
 * once, runs the seeds it is handed, and sends back each run's outcome.
 */
interface Job {
  readonly scenario: Scenario;
  readonly file: string | null;
  readonly seeds: readonly number[];
}

const job = workerData as Job;
const env = scenarioEnvironment(job.scenario, captureLoader(job.file));
if (!env.ok) {
  parentPort!.postMessage({ error: env.error.message });
} else {
  for (const seed of job.seeds) {
    const log = simulate({ ...job.scenario, seed }, env.value);
    if (!log.ok) {
      parentPort!.postMessage({ error: log.error.message });
      break;
    }
    parentPort!.postMessage({ outcome: runOutcome(log.value) });
  }
}
