import { formatAddr } from '@klpsim/arm64';
import type { Machine, Task } from '@klpsim/kernel';
import { POLICIES, POLICY_NAMES, type TraceEntry, Walker } from '@klpsim/unwind';
import type { WalkReport } from '../commands/walk.js';
import { type ChainRecord, readChain } from './chain.js';
import { esc, type Html, h, join, raw, table } from './page.js';

/**
 * A walk drawn for people: every policy's verdict side by side, and for the
 * task clicked, its stack as memory with the frame-record chain as arrows,
 * each record's symbol and source marker, exception boundaries, addresses
 * recovered from the tracers, and where the walk stopped and why.
 */

type ReportTask = WalkReport['tasks'][number];

/** One policy's verdict on a task, as a table cell. */
function verdictCell(
  walkers: Map<string, Walker | null>,
  name: string,
  task: Task,
  checks: WalkReport['checks'],
): Html {
  const w = walkers.get(name) ?? null;
  if (w === null)
    return h('span', { class: 'muted', title: 'the kernel has no meta frame records' }, 'refuses');
  const policy = POLICIES[name as keyof typeof POLICIES];
  if (!policy.hasReliableWalk) {
    w.walk(task, { reliable: false, checks });
    return h(
      'span',
      { class: 'muted', title: 'no reliable walk: the debug walk, no verdict' },
      `debug (${w.trace.len})`,
    );
  }
  w.walk(task, { reliable: true, checks });
  const r = w.result();
  return r.reliable === true
    ? h('span', { class: 'good' }, 'reliable')
    : h(
        'span',
        { class: 'bad', title: r.reason?.message ?? '' },
        `UNRELIABLE: ${r.reason?.code ?? ''}`,
      );
}

const ROW = 40;

// The vector the record below a pt_regs returns into says which exception it was (entry.S names).
const VECTORS: Readonly<Record<string, string>> = {
  irq: 'EL1 IRQ',
  fiq: 'EL1 FIQ',
  sync: 'EL1 synchronous exception',
  error: 'EL1 SError',
};

function exceptionKind(machine: Machine, below: ChainRecord | null): string {
  const sym = below === null ? '' : machine.kallsyms.formatS(below.lr);
  const m = /^el1[ht]_64_(irq|fiq|sync|error)\+/.exec(sym);
  return m === null ? 'EL1 exception' : VECTORS[m[1]!]!;
}

/** The two words of a record as drawn: a meta record's are zero, a pt_regs shows its pc. */
function wordText(r: ChainRecord, which: 'fp' | 'lr'): string {
  if (r.kind === 'final' && r.fp === 0) return `${which} 0`;
  if (which === 'fp')
    return r.kind === 'pt_regs' ? `regs[29] ${formatAddr(r.fp)}` : `fp ${formatAddr(r.fp)}`;
  if (r.kind === 'pt_regs') return `pc ${r.regsPc === null ? '?' : formatAddr(r.regsPc)}`;
  return `lr ${formatAddr(r.lr)}`;
}
const BOX_X = 170;
const BOX_W = 250;

/** The task stack as memory: one row per record, highest address on top, arrows along the chain. */
export function stackSvg(machine: Machine, task: Task, t: ReportTask): Html {
  const chain = readChain(machine, task);
  const recs = [...chain.records].sort((a, b) => b.at - a.at);
  const rowOf = new Map(recs.map((r, i) => [r.at, i]));
  // Match return addresses with the walk's entries, in order, for their source markers.
  const unused = [...t.trace.slice(1)];
  const recovered = unused.filter((e) => e.source.includes('F') || e.source.includes('K'));
  const take = (addr: string): TraceEntry | null => {
    const i = unused.findIndex((e) => e.address === addr);
    return i < 0 ? null : unused.splice(i, 1)[0]!;
  };
  const labels = new Map<number, { text: string; cls: string }>();
  let previous: ChainRecord | null = null;
  for (const r of chain.records) {
    const before = previous;
    previous = r;
    if (r.kind === 'final') {
      const what =
        machine.config.ptRegs.meta !== null
          ? 'FINAL meta record'
          : "the task's pt_regs->stackframe";
      labels.set(r.at, { text: `${what}: the end of the stack`, cls: 'good' });
      continue;
    }
    if (r.kind === 'pt_regs') {
      const pc = r.regsPc === null ? '?' : machine.kallsyms.formatS(r.regsPc);
      labels.set(r.at, {
        text: `pt_regs: ${exceptionKind(machine, before)}, PC=${pc}`,
        cls: 'warn',
      });
      continue;
    }
    if (r.trampoline !== null) {
      const rec = recovered.shift();
      const tramp = machine.kallsyms.formatS(r.lr);
      labels.set(r.at, {
        text: `${tramp} (${r.trampoline}) -> recovered ${rec?.symbol ?? '(not recovered)'}${rec !== undefined ? ` (${rec.source})` : ''}`,
        cls: rec === undefined ? 'bad' : 'warn',
      });
      continue;
    }
    const e = take(formatAddr(r.lr));
    const sym = machine.kallsyms.formatS(r.lr);
    labels.set(r.at, {
      text:
        e === null
          ? `${sym}  (not in the trace)`
          : `${sym}${e.source !== '' ? ` (${e.source})` : ''}`,
      cls: e === null ? 'muted' : '',
    });
  }
  const height = recs.length * ROW + 40;
  const parts: string[] = [
    '<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#2458a6"/></marker></defs>',
  ];
  recs.forEach((r, i) => {
    const y = 20 + i * ROW;
    const fill = r.kind === 'pt_regs' ? '#fff4e0' : r.kind === 'final' ? '#e7f6ec' : '#f1f5fb';
    const l = labels.get(r.at)!;
    const colour =
      l.cls === 'bad'
        ? '#b42318'
        : l.cls === 'warn'
          ? '#a15c00'
          : l.cls === 'good'
            ? '#157347'
            : l.cls === 'muted'
              ? '#8a939c'
              : '#1d232a';
    parts.push(
      `<g class="record" data-at="${formatAddr(r.at)}">`,
      `<text x="4" y="${y + 22}">${esc(formatAddr(r.at))}</text>`,
      `<rect x="${BOX_X}" y="${y}" width="${BOX_W}" height="${ROW - 8}" fill="${fill}" stroke="#8aa2c8"/>`,
      `<text x="${BOX_X + 6}" y="${y + 13}">${esc(wordText(r, 'fp'))}</text>`,
      `<text x="${BOX_X + 6}" y="${y + 27}">${esc(wordText(r, 'lr'))}</text>`,
      `<text x="${BOX_X + BOX_W + 12}" y="${y + 20}" fill="${colour}">${esc(l.text)}</text>`,
      '</g>',
    );
    const target = rowOf.get(r.fp);
    if (target !== undefined && r.kind !== 'final') {
      const y2 = 20 + target * ROW + 16;
      const y1 = y + 16;
      const bend = BOX_X - 20 - Math.min(60, Math.abs(i - target) * 6);
      parts.push(
        `<path class="link" d="M${BOX_X},${y1} C${bend},${y1} ${bend},${y2} ${BOX_X - 2},${y2}" fill="none" stroke="#2458a6" marker-end="url(#arrow)"/>`,
      );
    }
  });
  parts.push(`<text x="4" y="${height - 6}" fill="#5b6570">chain ends at ${esc(chain.end)}</text>`);
  return raw(
    `<svg class="stack" width="1000" height="${height}" viewBox="0 0 1000 ${height}" role="img" aria-label="task stack">${parts.join('')}</svg>`,
  );
}

function traceTable(t: ReportTask): Html {
  const stopAt = t.reason?.frame ?? -1;
  return table(
    ['#', 'address', 'symbol', 'source', 'stack'],
    t.trace.map((e, i) => [
      i,
      h('span', { class: 'mono' }, e.address),
      h('span', { class: i === stopAt ? 'bad mono' : 'mono' }, e.symbol),
      e.source,
      e.stack ?? '',
    ]),
  );
}

/** The verdict table and one drill-down panel per task; ids start with `prefix`. */
export function walkReportHtml(report: WalkReport, machine: Machine, prefix: string): Html {
  const walkers = new Map<string, Walker | null>();
  for (const name of POLICY_NAMES) {
    const p = POLICIES[name];
    walkers.set(name, p.checkLayout(machine) === null ? new Walker(machine, p) : null);
  }
  const byPid = new Map(machine.tasks.map((t) => [t.pid, t]));
  const id = (pid: number) => `${prefix}-task-${pid}`;
  const rows = report.tasks.map((t) => {
    const task = byPid.get(t.pid)!;
    return [
      t.pid,
      t.comm,
      task.state,
      t.trace.length,
      ...POLICY_NAMES.map((n) => verdictCell(walkers, n, task, report.checks)),
    ];
  });
  const failed =
    report.tasks.find((t) => t.reliable === false || t.reason !== null) ?? report.tasks[0];
  const panels = report.tasks.map((t) => {
    const task = byPid.get(t.pid)!;
    const verdict =
      t.reliable === null
        ? h('span', { class: 'muted' }, `debug walk: ${t.trace.length} entries`)
        : t.reliable
          ? h('span', { class: 'good' }, `reliable under ${report.policy}`)
          : h(
              'span',
              { class: 'bad' },
              `UNRELIABLE under ${report.policy}: ${t.reason?.code ?? ''}`,
            );
    const why =
      t.reason === null
        ? h('p', { class: 'muted' }, 'The walk reached the end of the stack.')
        : h(
            'p',
            { class: 'stop bad' },
            `The walk stopped at entry ${t.reason.frame}${t.reason.address !== null ? ` (${t.reason.address})` : ''}: ${t.reason.message}`,
          );
    return h(
      'div',
      { class: t === failed ? 'panel shown' : 'panel', id: id(t.pid) },
      h(
        'h3',
        {},
        `${t.comm} (pid ${t.pid}, ${task.state}, ${task.kthread ? 'kthread' : 'user'}): `,
        verdict,
      ),
      why,
      stackSvg(machine, task, t),
      traceTable(t),
    );
  });
  return join([
    h(
      'p',
      { class: 'muted' },
      `kernel ${report.kernel}; the walk shown: ${report.policy}, ${report.walk}; checks: ${report.checks.join(', ') || 'none'}. Click a task for its stack.`,
    ),
    h(
      'div',
      { class: 'walk' },
      h(
        'div',
        { class: 'tasklist' },
        table(['pid', 'comm', 'state', 'entries', ...POLICY_NAMES], rows, (i) => ({
          'data-target': id(report.tasks[i]!.pid),
          class: report.tasks[i] === failed ? 'selected' : undefined,
        })),
      ),
      h('div', { class: 'panels' }, ...panels),
    ),
  ]);
}
