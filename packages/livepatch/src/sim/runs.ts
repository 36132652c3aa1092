import type { TransitionLog } from './log.js';
import { KPATCH_ENABLE_WAIT, KPATCH_SIGNAL_WAIT } from './run.js';

/**
 * Many seeded runs of one scenario, summed up: how likely the transition
 * completes, how long it takes, how often signals or force were needed,
 * who held it up. A run is reduced to a small outcome where it ran (a
 * worker), and outcomes are merged in seed order, so the summary is the
 * same whatever the number of workers.
 */

/** What one run contributes to the summary. */
export interface RunOutcome {
  readonly seed: number;
  readonly completed: boolean;
  /** Seconds from the first transition's start to the last one's completion, or null. */
  readonly duration: number | null;
  readonly signalRounds: number;
  readonly forced: boolean;
  /** Inside kpatch's window: its own verdict when the scenario ran `kpatch load`, else completion within 75 s. */
  readonly inKpatchWindow: boolean;
  /** The tasks that held the transition up: still pending at its last failed attempt (group, reason, function). */
  readonly holders: readonly string[];
}

/** `comm` without the instance suffix a task group adds ("nanosleeper/17" -> "nanosleeper"). */
const groupOf = (comm: string): string => comm.replace(/\/\d+$/, '');

/** Reduces a run to its outcome. */
export function runOutcome(log: TransitionLog): RunOutcome {
  const first = log.transitions[0];
  const last = log.transitions[log.transitions.length - 1];
  const duration =
    log.completed && first !== undefined && last?.completedAt != null
      ? last.completedAt - first.startedAt
      : null;
  // The last attempt that still found someone pending: whoever switched after it held things up.
  let lastBlocked = Number.NEGATIVE_INFINITY;
  for (const [t, n] of log.pending) if (n > 0) lastBlocked = t;
  const holders = new Set<string>();
  for (const task of log.tasks) {
    if (task.blockedBy.length === 0) continue;
    if (task.switchedAt !== null && task.switchedAt < lastBlocked) continue;
    const b = task.blockedBy[0]!;
    holders.add(`${groupOf(task.comm)}: ${b.reason}${b.function !== null ? ` ${b.function}` : ''}`);
  }
  const window = (KPATCH_ENABLE_WAIT + KPATCH_SIGNAL_WAIT) / 1000;
  return {
    seed: log.seed,
    completed: log.completed,
    duration,
    signalRounds: log.transitions.reduce((a, t) => a + t.signalRounds.length, 0),
    forced: log.forced,
    inKpatchWindow:
      log.kpatch !== null ? log.kpatch.completedInWindow : duration !== null && duration <= window,
    holders: [...holders].sort(),
  };
}

export interface RunsSummary {
  readonly scenario: string;
  readonly runs: number;
  readonly seeds: readonly [number, number];
  readonly completionProbability: number;
  /** Seconds, over the runs that completed (null when none did). */
  readonly timeToCompletion: {
    readonly median: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
  } | null;
  /** Fraction of runs that needed at least one signal round, and the mean number of rounds. */
  readonly signals: { readonly needed: number; readonly meanRounds: number };
  readonly forcedProbability: number;
  /** Completing inside kpatch's window: 15 s, then signals, 60 s more. */
  readonly kpatchWindowProbability: number;
  /** Who held the transition up, most often first: in how many runs. */
  readonly blockers: readonly { readonly who: string; readonly runs: number }[];
  /** Completion times (s) of the runs that completed, sorted: the distribution. */
  readonly durations: readonly number[];
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  const i = Math.max(0, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.min(i, sorted.length - 1)]!;
}

/** Merges outcomes (in any order: they are sorted by seed first) into the summary. */
export function summarizeRuns(scenario: string, outcomes: readonly RunOutcome[]): RunsSummary {
  const runs = [...outcomes].sort((a, b) => a.seed - b.seed);
  const n = runs.length;
  const durations = runs
    .map((r) => r.duration)
    .filter((d): d is number => d !== null)
    .sort((a, b) => a - b);
  const blockers = new Map<string, number>();
  for (const r of runs) for (const h of r.holders) blockers.set(h, (blockers.get(h) ?? 0) + 1);
  const frac = (k: number) => (n === 0 ? 0 : k / n);
  const round = (x: number) => Math.round(x * 1e6) / 1e6;
  return {
    scenario,
    runs: n,
    seeds: [runs[0]?.seed ?? 0, runs[n - 1]?.seed ?? 0],
    completionProbability: round(frac(durations.length)),
    timeToCompletion:
      durations.length === 0
        ? null
        : {
            median: percentile(durations, 50),
            p90: percentile(durations, 90),
            p99: percentile(durations, 99),
            max: durations[durations.length - 1]!,
          },
    signals: {
      needed: round(frac(runs.filter((r) => r.signalRounds > 0).length)),
      meanRounds: round(frac(runs.reduce((a, r) => a + r.signalRounds, 0))),
    },
    forcedProbability: round(frac(runs.filter((r) => r.forced).length)),
    kpatchWindowProbability: round(frac(runs.filter((r) => r.inKpatchWindow).length)),
    blockers: [...blockers]
      .map(([who, k]) => ({ who, runs: k }))
      .sort((a, b) => b.runs - a.runs || a.who.localeCompare(b.who, 'en', { numeric: true }))
      .slice(0, 10),
    durations,
  };
}
