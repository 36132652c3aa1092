import { basename, dirname, relative } from 'node:path';
import type { Machine } from '@klpsim/kernel';
import type { TransitionLog } from '@klpsim/livepatch';
import { POLICIES, POLICY_NAMES, type PolicyName, Walker } from '@klpsim/unwind';
import { bundledCaptures } from '../bundled.js';
import type { CommandContext } from '../context.js';
import { EXIT_OK, EXIT_VIOLATION } from '../errors.js';
import { type CommandDef, JSON_FLAG, parseCommand } from '../flags.js';
import { renderPage, table } from '../html/page.js';
import { blockedLongest, transitionHtml } from '../html/transition.js';
import { walkReportHtml } from '../html/walk.js';
import { checkOutputPath, writeFileAtomic } from '../html/write.js';
import { count } from '../text.js';
import { loadScenario, renderTransition, runScenario, transitionAnswer } from './transition.js';
import { renderReport, type WalkReport, walkCapture, walkSummary } from './walk.js';

export const MAIN_COMMAND = {
  name: '',
  args: '',
  positionals: [0, 0],
  summary: 'the answer first: the bundled captures and the built-in transition',
  description:
    'Walks every task of the bundled real captures (fixtures/captures/) under the policy that fits\n' +
    "each kernel, compares every trace and verdict with the kernel's own, shows how every policy\n" +
    'judges each capture, and simulates the built-in livepatch transition. The first screen is\n' +
    'the answer; --verbose adds every trace and the whole transition.',
  flags: {
    verbose: { type: 'boolean', short: 'v', help: 'also every trace and the whole transition log' },
    html: {
      type: 'string',
      arg: 'FILE',
      help: 'also write a self-contained HTML report to FILE: every stack drawn, the transition charted',
    },
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

/** Reliable tasks per policy for one capture; null where the policy refuses the kernel or has no reliable walk. */
type PolicyTable = Record<PolicyName, { reliable: number; of: number } | null>;

interface CaptureAnswer {
  readonly capture: string;
  readonly kernel: string;
  readonly policy: PolicyName;
  readonly walk: WalkReport['walk'];
  readonly tasks: number;
  readonly entries: number;
  /** Tasks and entries whose trace (and verdict, where the kernel recorded one) match the kernel's. */
  readonly agreement: ReturnType<typeof walkSummary>['kernel'];
  /** Verdicts compared with the kernel's own `arch_stack_walk_reliable`; null where it recorded none. */
  readonly verdicts: { readonly matching: number; readonly of: number } | null;
  readonly policies: PolicyTable;
}

function policyTable(machine: Machine): PolicyTable {
  const cell = (name: PolicyName) => {
    const policy = POLICIES[name];
    if (!policy.hasReliableWalk || policy.checkLayout(machine) !== null) return null;
    const w = new Walker(machine, policy);
    const reliable = machine.tasks.filter((t) => w.walk(t, { reliable: true }) === 0).length;
    return { reliable, of: machine.tasks.length };
  };
  return Object.fromEntries(POLICY_NAMES.map((name) => [name, cell(name)])) as PolicyTable;
}

/** The policies with a reliable walk: the columns of the policy table. */
const RELIABLE = POLICY_NAMES.filter((name) => POLICIES[name].hasReliableWalk);

/** A cell of the policy table: a count, or why the policy does not walk that kernel. */
const policyCell = (c: CaptureAnswer, name: PolicyName) =>
  c.policies[name] === null ? 'refuses (no meta)' : cellText(c.policies[name]);

function answer(report: WalkReport, machine: Machine): CaptureAnswer {
  const s = walkSummary(report);
  const judged = report.tasks.filter((t) => t.kernel?.verdictMatches != null);
  return {
    capture: report.capture,
    kernel: report.kernel,
    policy: report.policy,
    walk: report.walk,
    tasks: s.tasks,
    entries: s.entries,
    agreement: s.kernel,
    verdicts:
      judged.length === 0
        ? null
        : { matching: judged.filter((t) => t.kernel!.verdictMatches).length, of: judged.length },
    policies: policyTable(machine),
  };
}

/** The built-in transition in a few numbers, and its answer as `klpsim transition` leads with it. */
function transitionSummary(t: TransitionLog) {
  const longest = blockedLongest(t, 1)[0];
  return {
    answer: transitionAnswer(t),
    pendingAtEnd: t.pendingAtEnd,
    scenario: t.scenario,
    policy: t.policy,
    seed: t.seed,
    tasks: t.tasks.length,
    completed: t.completed,
    completedAt: t.completedAt,
    attempts: t.attempts,
    signalsSent: t.signalsSent,
    forced: t.forced,
    violations: t.violations.length,
    blockedLongest:
      longest === undefined
        ? null
        : {
            pid: longest.pid,
            comm: longest.comm,
            switchedAt: longest.switchedAt,
            via: longest.via,
            blockedBy: longest.blockedBy,
          },
  };
}

const shortName = (file: string) => basename(dirname(file));
const cellText = (c: PolicyTable[PolicyName]) =>
  c === null ? 'no reliable walk' : `${c.reliable}/${c.of}`;

function renderAnswer(
  caps: readonly CaptureAnswer[],
  t: ReturnType<typeof transitionSummary>,
): string[] {
  const out = [
    "kernel agreement: every task walked under the policy that fits the kernel, against the kernel's own",
  ];
  for (const c of caps) {
    const a = c.agreement;
    const frames =
      a === null ? 'not compared' : `${a.tasks}/${a.of} tasks, ${a.entries}/${a.ofEntries} frames`;
    const verdicts =
      c.verdicts === null
        ? 'no verdicts recorded'
        : `${c.verdicts.matching}/${c.verdicts.of} verdicts`;
    out.push(`  ${shortName(c.capture).padEnd(24)}${c.policy.padEnd(11)}${frames}, ${verdicts}`);
  }
  out.push('', 'reliable tasks by policy (arch_stack_walk_reliable; linux-6.1 has none):');
  out.push(`  ${'capture'.padEnd(24)}${RELIABLE.map((n) => n.padEnd(18)).join('')}`.trimEnd());
  for (const c of caps)
    out.push(
      `  ${shortName(c.capture).padEnd(24)}${RELIABLE.map((n) => policyCell(c, n).padEnd(18)).join('')}`.trimEnd(),
    );
  out.push(
    '',
    `the built-in livepatch transition (klpsim transition): ${count(t.tasks, 'task')}, policy ${t.policy}`,
  );
  for (const line of t.answer) out.push(`  ${line}`);
  out.push(`  consistency violations: ${t.violations}`);
  return out;
}

/** The main job as one HTML page: the answer, each capture's tasks, the transition. */
function mainReport(
  caps: readonly CaptureAnswer[],
  walks: readonly { report: WalkReport; machine: Machine }[],
  log: TransitionLog,
): string {
  const answerTable = table(
    ['capture', 'kernel', 'policy', 'agreement with the kernel', 'verdicts', ...RELIABLE],
    caps.map((c) => [
      shortName(c.capture),
      c.kernel,
      c.policy,
      c.agreement === null
        ? 'not compared'
        : `${c.agreement.tasks}/${c.agreement.of} tasks, ${c.agreement.entries}/${c.agreement.ofEntries} frames`,
      c.verdicts === null ? 'none recorded' : `${c.verdicts.matching}/${c.verdicts.of}`,
      ...RELIABLE.map((n) => policyCell(c, n)),
    ]),
  );
  return renderPage({
    title: 'klpsim: the bundled kernels and the built-in transition',
    subtitle: 'Real arm64 captures walked as their kernels walk them, every policy side by side',
    sections: [
      { id: 'answer', title: 'The answer', body: answerTable },
      ...walks.map((w, i) => ({
        id: `capture-${i}`,
        title: shortName(w.report.capture),
        body: walkReportHtml(w.report, w.machine, `capture-${i}`),
      })),
      { id: 'transition', title: 'The built-in transition', body: transitionHtml(log) },
    ],
  });
}

const NEXT_STEPS = [
  ['./klpsim --verbose', 'every trace and the whole transition'],
  ['./klpsim --html klpsim-report.html', 'every stack drawn, in a browser'],
  ['./klpsim --json', 'all of it as JSON'],
  ['./klpsim walk fixtures/captures/linux-7.2-arm64-plain/capture.json --pid 1', 'one task'],
  ['./klpsim transition', 'who held the transition up, and why'],
  ['./klpsim --help', 'every command'],
] as const;

/**
 * The main job of a fresh checkout, answer first: how the walker agrees
 * with each bundled kernel and how every policy judges its tasks, the
 * built-in transition's outcome, then what to run next. Exit code 3 if the
 * consistency checker saw a violation.
 */
export function runDefault(argv: readonly string[], ctx: CommandContext): number {
  const { flags } = parseCommand(MAIN_COMMAND, argv);
  if (flags.html !== undefined) checkOutputPath(flags.html, '--html');
  const caps: CaptureAnswer[] = [];
  const details: string[] = [];
  const walks: { report: WalkReport; machine: Machine }[] = [];
  for (const file of bundledCaptures()) {
    const { report, machine } = walkCapture({ capture: file, compare: true }, ctx.log);
    caps.push(answer(report, machine));
    if (flags.html !== undefined) walks.push({ report, machine });
    if (flags.verbose === true)
      details.push(
        `== ${shortName(file)} ==`,
        renderReport(report, machine, { paint: ctx.paint }),
        '',
      );
  }
  const log = runScenario(loadScenario(null), null, ctx.log);
  const t = transitionSummary(log);
  const code = t.violations > 0 ? EXIT_VIOLATION : EXIT_OK;
  if (flags.html !== undefined) writeFileAtomic(flags.html, mainReport(caps, walks, log), '--html');
  if (flags.json === true) {
    const rel = caps.map((c) => ({
      ...c,
      capture: relative(process.cwd(), c.capture) || c.capture,
    }));
    ctx.print(
      JSON.stringify({ captures: rel, transition: flags.verbose === true ? log : t }, null, 2),
    );
    return code;
  }
  for (const line of renderAnswer(caps, t)) ctx.print(line);
  ctx.print('');
  if (flags.verbose === true) {
    for (const line of details) ctx.print(line);
    ctx.print('== the built-in livepatch transition (klpsim transition) ==');
    ctx.print(renderTransition(log));
    ctx.print('');
  }
  ctx.print('next:');
  const width = Math.max(...NEXT_STEPS.map(([, w]) => w.length)) + 3;
  for (const [cmd, what] of NEXT_STEPS)
    ctx.print(`  ${`${what}:`.padEnd(width)}${ctx.paint.strong(cmd)}`);
  return code;
}
