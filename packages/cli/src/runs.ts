import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RunOutcome, RunsSummary, Scenario } from '@klpsim/livepatch';
import { summarizeRuns } from '@klpsim/livepatch';
import { CliError } from './errors.js';

/**
 * `klpsim transition --runs N --seed S`: N seeded runs (S, S+1, ...) spread
 * over worker threads. Seed k always goes to the same place in the merged
 * result (outcomes are sorted by seed), so the summary is byte for byte the
 * same for any number of workers.
 */

/** The worker threads to use by default: one per core, at most 8. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

export async function runMany(
  scenario: Scenario,
  file: string | null,
  runs: number,
  workers: number,
  progress: (done: number, total: number) => void,
): Promise<RunsSummary> {
  const seeds = Array.from({ length: runs }, (_, i) => scenario.seed + i);
  const n = Math.min(workers, runs);
  // Seed i goes to worker i mod n: an even share, decided by the seed alone.
  const shares = Array.from({ length: n }, (_, w) => seeds.filter((_, i) => i % n === w));
  const outcomes: RunOutcome[] = [];
  const url = new URL('../dist/runs-worker.js', import.meta.url);
  await Promise.all(
    shares.map(
      (share) =>
        new Promise<void>((resolve, reject) => {
          // The worker runs the built code: no source-condition flags a test runner may have added.
          const w = new Worker(url, { workerData: { scenario, file, seeds: share }, execArgv: [] });
          w.on('message', (m: { outcome?: RunOutcome; error?: string }) => {
            if (m.error !== undefined) {
              reject(new CliError('KLPSIM_INPUT_INVALID', m.error));
              void w.terminate();
              return;
            }
            outcomes.push(m.outcome!);
            progress(outcomes.length, runs);
          });
          w.on('error', reject);
          w.on('exit', () => resolve());
        }),
    ),
  );
  return summarizeRuns(scenario.name, outcomes);
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const s = (x: number): string => `${x.toFixed(3)} s`;

/** The summary as a few lines, the answer first. */
export function renderRuns(r: RunsSummary): string {
  const out: string[] = [];
  const t = r.timeToCompletion;
  out.push(
    t === null
      ? `NEVER COMPLETED in ${r.runs} runs (seeds ${r.seeds[0]}-${r.seeds[1]})`
      : `completes in ${pct(r.completionProbability)} of ${r.runs} runs (seeds ${r.seeds[0]}-${r.seeds[1]}): median ${s(t.median)}, p90 ${s(t.p90)}, p99 ${s(t.p99)}, max ${s(t.max)} after the enable`,
  );
  out.push(`inside kpatch's window (15 s, then 60 s more): ${pct(r.kpatchWindowProbability)}`);
  out.push(
    `signal rounds needed in ${pct(r.signals.needed)} of runs (mean ${r.signals.meanRounds} rounds); forced in ${pct(r.forcedProbability)}`,
  );
  if (r.blockers.length > 0) {
    out.push('held up by (runs in which it was among the last pending):');
    for (const b of r.blockers) out.push(`  ${String(b.runs).padStart(6)}  ${b.who}`);
  }
  return out.join('\n');
}
