import { basename, dirname, relative } from 'node:path';
import type { Machine } from '@klpsim/kernel';
import {
  type CheckName,
  compareWithKernel,
  type OracleComparison,
  POLICY_NAMES,
  type Policy,
  Walker,
  type WalkResult,
} from '@klpsim/unwind';
import { type Paint, PLAIN } from '../colour.js';
import type { CommandContext } from '../context.js';
import { EXIT_OK, EXIT_VERDICT } from '../errors.js';
import { CHECK_FLAG, type CommandDef, JSON_FLAG, oneOf, parseCommand, uint } from '../flags.js';
import { renderPage } from '../html/page.js';
import { walkReportHtml } from '../html/walk.js';
import { checkOutputPath, writeFileAtomic } from '../html/write.js';
import type { Logger } from '../log.js';
import { renderWalk } from '../render.js';
import { chooseChecks, choosePolicy, chooseTasks, openCapture } from '../select.js';
import { count } from '../text.js';

/** Bounds a user can meet, and why they are where they are. */
// PID_MAX_LIMIT on 64-bit (include/linux/threads.h): pids are below 4 * 1024 * 1024.
const PID_MAX = 4 * 1024 * 1024 - 1;
// Far more entries than frame records fit on every stack a task can cross
// (THREAD_SIZE 16 KiB and the per-CPU stacks hold at most a few thousand).
export const SIZE_MAX = 65536;

export const WALK_COMMAND = {
  name: 'walk',
  args: '<capture.json>',
  positionals: [1, 1],
  summary: 'walk tasks of a capture under a policy',
  description:
    'Walks tasks of a real capture (format arm64-stack-capture/v1) as the kernel would, and prints each\n' +
    'trace as the kernel prints a backtrace, then the verdict and, when the walk fails, the rule that failed.',
  flags: {
    pid: {
      type: 'string',
      multiple: true,
      unique: true,
      arg: 'N',
      value: uint(0, PID_MAX),
      help: 'a task to walk (repeat for more); default: every captured task',
    },
    all: { type: 'boolean', help: 'every captured task (the default)' },
    policy: {
      type: 'string',
      arg: 'P',
      value: oneOf(POLICY_NAMES),
      help: 'the policy; default: mainline if the kernel has meta frame records, else linux-6.1',
    },
    check: CHECK_FLAG,
    'best-effort': {
      type: 'boolean',
      help: 'the debug walk (arch_stack_walk) instead of arch_stack_walk_reliable',
    },
    size: {
      type: 'string',
      arg: 'N',
      value: uint(1, SIZE_MAX),
      help: 'trace buffer entries (default 100 reliable, as livepatch; 512 debug)',
    },
    text: {
      type: 'string',
      arg: 'FILE',
      help: 'the kernel text dump (default: the file the capture names, beside it)',
    },
    compare: {
      type: 'boolean',
      help: "compare each task with the kernel's own trace and verdict in the capture",
    },
    'unreliable-only': {
      type: 'boolean',
      help: 'print only the tasks whose walk failed (or stopped early)',
    },
    summary: {
      type: 'boolean',
      help: 'print only the summary: tasks, entries, verdicts, kernel agreement',
    },
    html: {
      type: 'string',
      arg: 'FILE',
      help: 'also write a self-contained HTML report to FILE: each stack drawn, every policy side by side',
    },
    'fail-on-unreliable': { type: 'boolean', help: 'exit with code 1 when a reliable walk failed' },
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

export interface WalkReport {
  readonly capture: string;
  readonly kernel: string;
  readonly policy: Policy['name'];
  readonly checks: readonly CheckName[];
  readonly walk: 'reliable' | 'debug';
  readonly tasks: readonly (Pick<
    WalkResult,
    'pid' | 'comm' | 'reliable' | 'error' | 'reason' | 'trace'
  > & {
    readonly kernel?: OracleComparison;
  })[];
  readonly skipped: readonly { pid: number; comm: string; reason: string }[];
}

export interface WalkRequest {
  readonly capture: string;
  readonly text?: string | undefined;
  readonly pids?: readonly number[] | undefined;
  readonly policy?: string | undefined;
  readonly checks?: readonly string[] | undefined;
  readonly bestEffort?: boolean | undefined;
  readonly size?: number | undefined;
  readonly compare?: boolean | undefined;
}

/** Walks the requested tasks of a capture; throws CliError on bad input. */
export function walkCapture(
  req: WalkRequest,
  log: Logger,
): { report: WalkReport; machine: Machine } {
  const t0 = performance.now();
  const loaded = openCapture(req.capture, req.text);
  log.debug({ file: req.capture, ms: Math.round(performance.now() - t0) }, 'capture loaded');
  const { machine } = loaded;
  const policy = choosePolicy(machine, req.policy);
  const checks = chooseChecks(req.checks);
  const tasks = chooseTasks(machine, req.pids);
  const reliable = !(req.bestEffort ?? false) && policy.hasReliableWalk;
  const walker = new Walker(machine, policy);
  const out: WalkReport['tasks'][number][] = [];
  for (const task of tasks) {
    walker.walk(task, { reliable, checks, ...(req.size !== undefined ? { size: req.size } : {}) });
    const r = walker.result();
    const entry = {
      pid: r.pid,
      comm: r.comm,
      reliable: r.reliable,
      error: r.error,
      reason: r.reason,
      trace: r.trace,
    };
    out.push(
      req.compare === true
        ? { ...entry, kernel: compareWithKernel(r, loaded.oracle.get(task.pid)) }
        : entry,
    );
  }
  return {
    machine,
    report: {
      capture: req.capture,
      kernel: machine.config.release,
      policy: policy.name,
      checks,
      walk: reliable ? 'reliable' : 'debug',
      tasks: out,
      skipped: machine.skippedTasks.map((s) => ({ pid: s.pid, comm: s.comm, reason: s.reason })),
    },
  };
}

/** What to print of a walk report. */
export interface RenderOptions {
  /** Only the tasks whose walk failed or stopped early. */
  readonly unreliableOnly?: boolean;
  /** Only the header and the summary. */
  readonly summary?: boolean;
  readonly paint?: Paint;
}

/** Whether a task's walk failed (reliable walk) or stopped before the end (debug walk). */
export function walkFailed(t: WalkReport['tasks'][number]): boolean {
  return t.reliable === false || t.reason !== null;
}

/** Human text for a walk report. */
export function renderReport(
  report: WalkReport,
  machine: Machine,
  options: RenderOptions = {},
): string {
  const paint = options.paint ?? PLAIN;
  const how =
    report.walk === 'reliable'
      ? 'arch_stack_walk_reliable'
      : 'arch_stack_walk (debug walk: no verdict)';
  const out = [
    `${relative(process.cwd(), report.capture) || report.capture}`,
    `kernel ${report.kernel}, policy ${report.policy}, ${how}, checks: ${report.checks.length > 0 ? report.checks.join(', ') : 'none'}`,
    '',
  ];
  if (options.summary !== true) {
    for (const t of report.tasks) {
      if (options.unreliableOnly === true && !walkFailed(t)) continue;
      const task = machine.tasks.find((x) => x.pid === t.pid)!;
      const r = {
        ...t,
        policy: report.policy,
        checks: report.checks,
        walk: report.walk,
      } as WalkResult;
      out.push(renderWalk(r, task.kthread, task.state, t.kernel ?? null, paint), '');
    }
  }
  out.push(summaryLine(report));
  for (const s of report.skipped) out.push(`not captured: ${s.comm} (pid ${s.pid}): ${s.reason}`);
  return out.join('\n');
}

/** Totals of a walk report: tasks, entries, verdicts, and agreement with the kernel's own results. */
export function walkSummary(report: WalkReport): {
  tasks: number;
  entries: number;
  reliable: number | null;
  kernel: { tasks: number; of: number; entries: number; ofEntries: number } | null;
} {
  const frames = report.tasks.reduce((a, t) => a + t.trace.length, 0);
  const reliable =
    report.walk === 'reliable' ? report.tasks.filter((t) => t.reliable === true).length : null;
  const compared = report.tasks.filter(
    (t) => t.kernel !== undefined && t.kernel.traceMatches !== null,
  );
  let kernel = null;
  if (compared.length > 0) {
    const same = compared.filter(
      (t) => t.kernel!.traceMatches === true && t.kernel!.verdictMatches !== false,
    );
    kernel = {
      tasks: same.length,
      of: compared.length,
      entries: same.reduce((a, t) => a + t.trace.length, 0),
      ofEntries: frames,
    };
  }
  return { tasks: report.tasks.length, entries: frames, reliable, kernel };
}

function summaryLine(report: WalkReport): string {
  const s = walkSummary(report);
  const parts = [`${count(s.tasks, 'task')}, ${count(s.entries, 'entry', 'entries')}`];
  if (s.reliable !== null) parts.push(`${s.reliable} reliable, ${s.tasks - s.reliable} unreliable`);
  if (s.kernel !== null)
    parts.push(
      `kernel agreement: ${s.kernel.tasks}/${s.kernel.of} tasks, ${s.kernel.entries}/${s.kernel.ofEntries} entries`,
    );
  return `summary: ${parts.join('; ')}`;
}

/** The report's header fields, for `--summary --json`. */
function withoutTasks(report: WalkReport): Omit<WalkReport, 'tasks'> {
  const { tasks: _tasks, ...rest } = report;
  return rest;
}

/** `klpsim walk`: parses its arguments, walks, prints; returns the exit code. */
export function runWalk(argv: string[], ctx: CommandContext): number {
  const { flags, positionals } = parseCommand(WALK_COMMAND, argv);
  if (flags.html !== undefined) checkOutputPath(flags.html, '--html');
  const { report, machine } = walkCapture(
    {
      capture: positionals[0]!,
      text: flags.text,
      pids: flags.all === true ? undefined : flags.pid,
      policy: flags.policy,
      checks: flags.check,
      bestEffort: flags['best-effort'],
      size: flags.size,
      compare: flags.compare,
    },
    ctx.log,
  );
  if (flags.html !== undefined) {
    const page = renderPage({
      title: `klpsim walk: ${basename(dirname(report.capture))}`,
      subtitle: `${report.kernel}: ${count(report.tasks.length, 'task')}, ${report.policy}`,
      sections: [{ id: 'tasks', title: 'Tasks', body: walkReportHtml(report, machine, 'walk') }],
    });
    writeFileAtomic(flags.html, page, '--html');
  }
  if (flags.json === true) {
    const shown =
      flags['unreliable-only'] === true
        ? { ...report, tasks: report.tasks.filter(walkFailed) }
        : report;
    ctx.print(
      JSON.stringify(
        flags.summary === true ? { ...withoutTasks(shown), summary: walkSummary(report) } : shown,
        null,
        2,
      ),
    );
  } else
    ctx.print(
      renderReport(report, machine, {
        unreliableOnly: flags['unreliable-only'] === true,
        summary: flags.summary === true,
        paint: ctx.paint,
      }),
    );
  const failed = report.walk === 'reliable' && report.tasks.some((t) => t.reliable === false);
  if (flags['fail-on-unreliable'] === true && report.walk !== 'reliable')
    process.stderr.write(
      `klpsim walk: --fail-on-unreliable has nothing to judge: these were debug walks (${flags['best-effort'] === true ? '--best-effort' : `policy ${report.policy} has no reliable walk`})\n`,
    );
  return flags['fail-on-unreliable'] === true && failed ? EXIT_VERDICT : EXIT_OK;
}
