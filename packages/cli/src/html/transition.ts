import type { TransitionLog } from '@klpsim/livepatch';
import { count, seconds } from '../text.js';
import { type Html, h, join, table } from './page.js';
import { lineChart, type Marker } from './svg.js';

/**
 * The built-in transition's answer as a picture: tasks still pending over
 * simulated time, with the attempts that sent signals and the completion
 * marked, then who held it up. (The transition command's own report, with
 * drill-down and --runs, builds on the same page and chart.)
 */

/** [t, tasks not yet switched] from the patch being enabled to the last switch. */
export function pendingOverTime(t: TransitionLog): [number, number][] {
  const start = t.timeline.find((e) => e.event === 'action')?.t ?? 0;
  const times = t.tasks
    .map((x) => x.switchedAt)
    .filter((s): s is number => s !== null)
    .sort((a, b) => a - b);
  const points: [number, number][] = [[start, t.tasks.length]];
  let pending = t.tasks.length;
  for (let i = 0; i < times.length; i++) {
    pending--;
    // One point per instant: the count once every task switching then has switched.
    if (times[i + 1] !== times[i]) points.push([times[i]!, pending]);
  }
  return points;
}

const MAX_MARKERS = 12;

/** The `n` tasks that switched last (never first), ties by pid: who held the transition up. */
export function blockedLongest(t: TransitionLog, n: number): TransitionLog['tasks'][number][] {
  return t.tasks
    .filter((x) => x.blockedBy.length > 0)
    .sort(
      (a, b) =>
        (b.switchedAt ?? Number.POSITIVE_INFINITY) - (a.switchedAt ?? Number.POSITIVE_INFINITY) ||
        a.pid - b.pid,
    )
    .slice(0, n);
}

export function transitionHtml(t: TransitionLog): Html {
  // Enabling and completion always; signal rounds while they leave the chart readable.
  const signals = t.timeline.filter((e) => e.event === 'signals').slice(0, MAX_MARKERS);
  const markers: Marker[] = [
    ...t.timeline.filter((e) => e.event === 'action' || e.event === 'complete'),
    ...signals,
  ]
    .sort((a, b) => a.t - b.t)
    .map((e) => ({
      x: e.t,
      label:
        e.event === 'signals'
          ? 'sig'
          : e.event === 'complete'
            ? 'complete'
            : (e.text.split(' ')[0] ?? 'action'),
      colour: e.event === 'complete' ? '#157347' : e.event === 'signals' ? '#b42318' : '#a15c00',
    }));
  const slow = blockedLongest(t, 10);
  return join([
    h(
      'p',
      {},
      t.completed
        ? `Completed at ${seconds(t.completedAt ?? 0)} of simulated time after ${t.attempts} attempts; ${t.signalsSent} signals sent; ${t.violations.length} consistency violations.`
        : `Not completed within the time limit: ${t.attempts} attempts.`,
    ),
    lineChart({
      xLabel: 'simulated time (s)',
      yLabel: 'tasks pending',
      series: [{ name: `tasks pending (of ${t.tasks.length})`, points: pendingOverTime(t) }],
      markers,
    }),
    h('h3', {}, 'Held up longest'),
    table(
      ['task', 'switched', 'held by'],
      slow.map((s) => [
        `${s.comm}:${s.pid}`,
        s.switchedAt === null ? 'never' : `at ${seconds(s.switchedAt)} via ${s.via}`,
        s.blockedBy
          .map(
            (b) =>
              `${b.reason}${b.function !== null ? ` ${b.function}` : ''} (${count(b.count, 'attempt')})`,
          )
          .join('; '),
      ]),
    ),
  ]);
}
