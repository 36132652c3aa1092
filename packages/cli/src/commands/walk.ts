import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { Machine } from '@klpsim/kernel';
import {
  type CheckName,
  compareWithKernel,
  type OracleComparison,
  type Policy,
  Walker,
  type WalkResult,
} from '@klpsim/unwind';
import { CliError } from '../errors.js';
import type { Logger } from '../log.js';
import { renderWalk } from '../render.js';
import { chooseChecks, choosePolicy, chooseTasks, openCapture } from '../select.js';

export const WALK_USAGE = `klpsim walk <capture.json> [--pid N]... [--all] [--policy P] [--check C]...
             [--best-effort] [--size N] [--text FILE] [--compare] [--json]

Walks tasks of a real capture (format arm64-stack-capture/v1) as the kernel would.
  --pid N          a task to walk (repeat for more); default and --all: every captured task
  --policy P       mainline | linux-6.1 | symcode-v8 (default: mainline if the kernel has
                   meta frame records, else linux-6.1)
  --check C        extra reliability check: call-site | start-in-schedule (repeatable)
  --best-effort    the debug walk (arch_stack_walk) instead of arch_stack_walk_reliable
  --size N         trace buffer entries (default 100 reliable, 512 debug)
  --text FILE      the kernel text dump (default: the file the capture names, beside it)
  --compare        compare each task with the kernel's own trace and verdict in the capture
  --json           one JSON document on stdout`;

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
  readonly pids?: readonly string[] | undefined;
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

/** Human text for a walk report. */
export function renderReport(report: WalkReport, machine: Machine): string {
  const how =
    report.walk === 'reliable'
      ? 'arch_stack_walk_reliable'
      : 'arch_stack_walk (debug walk: no verdict)';
  const out = [
    `${relative(process.cwd(), report.capture) || report.capture}`,
    `kernel ${report.kernel}, policy ${report.policy}, ${how}, checks: ${report.checks.length > 0 ? report.checks.join(', ') : 'none'}`,
    '',
  ];
  for (const t of report.tasks) {
    const task = machine.tasks.find((x) => x.pid === t.pid)!;
    const r = {
      ...t,
      policy: report.policy,
      checks: report.checks,
      walk: report.walk,
    } as WalkResult;
    out.push(renderWalk(r, task.kthread, task.state, t.kernel ?? null), '');
  }
  out.push(summaryLine(report));
  for (const s of report.skipped) out.push(`not captured: ${s.comm} (pid ${s.pid}): ${s.reason}`);
  return out.join('\n');
}

function summaryLine(report: WalkReport): string {
  const n = report.tasks.length;
  const frames = report.tasks.reduce((a, t) => a + t.trace.length, 0);
  const parts = [`${n} tasks, ${frames} entries`];
  if (report.walk === 'reliable') {
    const ok = report.tasks.filter((t) => t.reliable === true).length;
    parts.push(`${ok} reliable, ${n - ok} unreliable`);
  }
  const compared = report.tasks.filter(
    (t) => t.kernel?.traceMatches !== null && t.kernel !== undefined,
  );
  if (compared.length > 0) {
    const same = compared.filter(
      (t) => t.kernel!.traceMatches === true && t.kernel!.verdictMatches !== false,
    );
    const sameFrames = same.reduce((a, t) => a + t.trace.length, 0);
    parts.push(
      `kernel agreement: ${same.length}/${compared.length} tasks, ${sameFrames}/${frames} entries`,
    );
  }
  return `summary: ${parts.join('; ')}`;
}

/** `klpsim walk`: parses its arguments, walks, prints; returns the exit code. */
export function runWalk(argv: string[], log: Logger, print: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      pid: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      policy: { type: 'string' },
      check: { type: 'string', multiple: true },
      'best-effort': { type: 'boolean' },
      size: { type: 'string' },
      text: { type: 'string' },
      compare: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) {
    print(WALK_USAGE);
    return 2;
  }
  const size = values.size === undefined ? undefined : parsePositiveInt('--size', values.size);
  const { report, machine } = walkCapture(
    {
      capture: positionals[0]!,
      text: values.text,
      pids: values.all === true ? undefined : values.pid,
      policy: values.policy,
      checks: values.check,
      bestEffort: values['best-effort'],
      size,
      compare: values.compare,
    },
    log,
  );
  print(values.json === true ? JSON.stringify(report, null, 2) : renderReport(report, machine));
  return 0;
}

export function parsePositiveInt(flag: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1)
    throw new CliError('KLPSIM_USAGE', `${flag}: "${s}" is not a positive integer`);
  return n;
}
