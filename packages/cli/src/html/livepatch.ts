import type { Prediction, RunsSummary, TransitionLog } from '@klpsim/livepatch';
import { seconds } from '../text.js';
import { type Html, h, join, type Section, table } from './page.js';
import { lineChart } from './svg.js';
import { blockedLongest, transitionHtml } from './transition.js';

/**
 * The livepatch commands' reports: `transition --html` (the answer, tasks
 * pending over time, who held it up, and a drill-down from each task to the
 * stack that blocked it), `transition --runs N --html` (the distribution of
 * completion times) and `predict --html` (each task that would not switch,
 * with its walked stack and the blocking frame marked).
 */

/** A task's stack as a list of frames, the ones in `blocking` functions marked. */
function framesHtml(frames: readonly string[], blocking: readonly string[]): Html {
  return h(
    'ol',
    { class: 'mono frames' },
    ...frames.map((f) => {
      const fn = f.replace(/\+0x.*$/, '');
      return blocking.includes(fn)
        ? h('li', { class: 'bad blocking' }, `${f}   <- the patched function it sleeps on`)
        : h('li', {}, f);
    }),
  );
}

/** The answer lines, as the command prints them first. */
const answerHtml = (lines: readonly string[]) => h('pre', { class: 'mono' }, lines.join('\n'));

/** `klpsim transition --html`. */
export function transitionReport(t: TransitionLog, answer: readonly string[]): Section[] {
  const slow = blockedLongest(t, 25).filter((x) => x.blockedIn !== null);
  const drill = join([
    h(
      'p',
      { class: 'muted' },
      'Click a task for the stack that blocked it at its last refused check.',
    ),
    h(
      'div',
      { class: 'tasklist' },
      table(
        ['task', 'switched', 'why'],
        slow.map((s) => [
          `${s.comm}:${s.pid}`,
          s.switchedAt === null ? 'never' : `at ${seconds(s.switchedAt)} via ${s.via}`,
          s.blockedBy
            .map((b) => `${b.reason}${b.function !== null ? ` ${b.function}` : ''} (${b.count})`)
            .join('; '),
        ]),
        (i) => ({ 'data-target': `blocked-${i}` }),
      ),
    ),
    h(
      'div',
      { class: 'panels' },
      ...slow.map((s, i) =>
        h(
          'div',
          { class: 'panel', id: `blocked-${i}` },
          h(
            'h3',
            {},
            `${s.comm}:${s.pid}: ${s.blockedBy[0]?.reason ?? ''} ${s.blockedBy[0]?.function ?? ''}`,
          ),
          framesHtml(
            s.blockedIn!,
            s.blockedBy.flatMap((b) =>
              b.reason === 'sleeping on function' && b.function !== null ? [b.function] : [],
            ),
          ),
        ),
      ),
    ),
  ]);
  return [
    { id: 'answer', title: 'The answer', body: answerHtml(answer) },
    { id: 'transition', title: 'Tasks pending over simulated time', body: transitionHtml(t) },
    { id: 'blocked', title: 'Who held it up, and the stack that did', body: drill },
  ];
}

/** `klpsim transition --runs N --html`: the distribution of completion times. */
export function runsReport(r: RunsSummary, text: string): Section[] {
  const n = r.durations.length;
  const cdf: [number, number][] = [[0, 0]];
  r.durations.forEach((d, i) => {
    cdf.push([d, (100 * (i + 1)) / r.runs]);
  });
  const body = join([
    lineChart({
      xLabel: 'seconds after the enable',
      yLabel: '% of runs completed',
      series: [{ name: `completed (${n} of ${r.runs} runs)`, points: cdf }],
      markers:
        r.timeToCompletion === null
          ? []
          : [
              { x: r.timeToCompletion.median, label: 'median' },
              { x: r.timeToCompletion.p90, label: 'p90' },
            ],
    }),
    h('h3', {}, 'Held up by'),
    table(
      ['task group: why', 'runs'],
      r.blockers.map((b) => [b.who, b.runs]),
    ),
  ]);
  return [
    { id: 'answer', title: 'The answer', body: answerHtml(text.split('\n')) },
    { id: 'distribution', title: 'Time to completion over the runs', body },
  ];
}

/** `klpsim predict --html`: who would not switch, and why, with the stack walked. */
export function predictReport(p: Prediction): Section[] {
  const blocked = p.tasks.filter((t) => t.result !== 'switches');
  const counts = new Map<string, number>();
  for (const t of p.tasks) counts.set(t.result, (counts.get(t.result) ?? 0) + 1);
  const body = join([
    h('p', {}, [...counts].map(([k, v]) => `${v} ${k}`).join(', ')),
    h(
      'div',
      { class: 'tasklist' },
      table(
        ['task', 'result', 'why'],
        blocked.map((t) => [`${t.comm}:${t.pid}`, t.result, t.why ?? t.reason?.message ?? '']),
        (i) => ({ 'data-target': `task-${i}` }),
      ),
    ),
    h(
      'div',
      { class: 'panels' },
      ...blocked.map((t, i) =>
        h(
          'div',
          { class: 'panel', id: `task-${i}` },
          h('h3', {}, `${t.comm}:${t.pid} ${t.why ?? ''}`),
          t.trace.length === 0
            ? h('p', { class: 'muted' }, 'its stack was not walked (running, or no reliable walk)')
            : framesHtml(t.trace, t.function !== null ? [t.function] : []),
        ),
      ),
    ),
  ]);
  return [
    {
      id: 'predict',
      title: `${p.patch.unpatch ? 'Unpatching' : 'Patching'} ${p.patch.functions.join(', ')} under ${p.policy}: the first pass`,
      body,
    },
  ];
}
