import { buildMachine } from '@klpsim/kernel';
import {
  type BoundaryTask,
  boundaryTasks,
  type CheckName,
  drawInstructions,
  drawSource,
  type JudgedRow,
  judge,
  POLICY_NAMES,
  populationDesc,
  type ReliableLabel,
} from '@klpsim/unwind';
import { BUNDLED_CAPTURES } from '../bundled.js';
import type { CommandContext } from '../context.js';
import { CliError, EXIT_OK } from '../errors.js';
import {
  CHECK_FLAG,
  type CommandDef,
  helpText,
  JSON_FLAG,
  parseCommand,
  SEED,
  TEXT_FLAG,
  uint,
} from '../flags.js';
import { chooseChecks, openCapture } from '../select.js';

/** The bundled capture with tasks stopped at exception boundaries. */
const DEFAULT_CAPTURE = BUNDLED_CAPTURES[2];
const DEFAULT_TASKS = 2000;

export const JUDGE_COMMAND = {
  name: 'judge',
  args: '[capture.json]',
  positionals: [0, 1],
  summary:
    'every policy judged against the true chain, on tasks interrupted anywhere in a real kernel',
  description:
    "Draws instructions uniformly from the capture's kernel text (default: the bundled\n" +
    'linux-7.2-arm64-hard), builds a kthread IRQ-preempted at each with the frame state the real\n' +
    "kernel has there (docs/judge.md), and labels every policy's verdict against the true chain:\n" +
    'right, unsound (reliable but wrong), needless (refused though its own debug walk was right),\n' +
    "refused rightly; debug walks: complete, frames missing, invented. Then the capture's own tasks\n" +
    "stopped at an exception boundary, under each policy, and whether the kernel's trace is complete.",
  flags: {
    tasks: {
      type: 'string',
      arg: 'N',
      value: uint(1, 100_000),
      help: `tasks to draw (default ${DEFAULT_TASKS})`,
    },
    seed: { type: 'string', arg: 'S', value: SEED, help: 'the seed of the draws (default 1)' },
    check: { ...CHECK_FLAG, help: 'judge this check set too, besides none (default: call-site)' },
    text: TEXT_FLAG,
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

const LABELS: readonly ReliableLabel[] = ['right', 'unsound', 'needless', 'refused-rightly'];
const STATES = ['L', 'S', 'F', 'none'] as const;

/** `klpsim judge`: returns the exit code. */
export function runJudge(argv: string[], ctx: CommandContext): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    ctx.print(helpText(JUDGE_COMMAND));
    return EXIT_OK;
  }
  const { flags, positionals } = parseCommand(JUDGE_COMMAND, argv);
  const file = positionals[0] ?? DEFAULT_CAPTURE;
  const count = flags.tasks ?? DEFAULT_TASKS;
  const seed = flags.seed ?? 1;
  const extra: CheckName[] = flags.check === undefined ? ['call-site'] : chooseChecks(flags.check);
  const checkSets: (readonly CheckName[])[] = [[], extra];
  const capture = openCapture(file, flags.text);
  const real = capture.machine;
  const source = drawSource(real);
  const draws = drawInstructions(source, count, seed);
  ctx.log.debug({ functions: source.functions.length, draws: draws.length }, 'drawn');
  const layout = real.config.ptRegs.meta !== null ? 'mainline' : 'linux-6.1';
  const built = buildMachine(
    populationDesc(draws, real.config.kernelPacEnabled, layout),
    '(judge population)',
  );
  if (!built.ok) throw CliError.fromInput(built.error);
  const rows = judge(
    built.value.machine,
    built.value.tasks,
    POLICY_NAMES,
    checkSets,
    (i) => draws[i]!.state,
  );
  const boundaries = boundaryTasks(real, capture.oracle, POLICY_NAMES);
  const states = Object.fromEntries(
    STATES.map((s) => [s, draws.filter((d) => d.state === s).length]),
  );
  if (flags.json === true) {
    ctx.print(
      JSON.stringify(
        {
          capture: file,
          kernel: real.config.release,
          seed,
          tasks: count,
          instructions: source.instructions,
          drawnStates: states,
          rows,
          boundaries,
        },
        null,
        1,
      ),
    );
    return EXIT_OK;
  }
  ctx.print(`${file} (Linux ${real.config.release}): every policy judged against the true chain`);
  ctx.print(
    `  population  ${count} kthreads IRQ-preempted at instructions drawn uniformly (seed ${seed}) from ${source.instructions} instructions of ${source.functions.length} functions`,
  );
  ctx.print(
    `  drawn state ${STATES.map((s) => `${s} ${states[s]}`).join(', ')} (the real kernel's frame state at each drawn pc)`,
  );
  ctx.print('');
  printRows(ctx, rows, count);
  ctx.print('');
  printBoundaries(ctx, boundaries);
  return EXIT_OK;
}

function pct(n: number, of: number): string {
  return of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`;
}

function printRows(ctx: CommandContext, rows: readonly JudgedRow[], n: number): void {
  ctx.print(
    'policy        checks      right   unsound  needless  refused-rightly | debug: complete  missing  invented',
  );
  for (const r of rows) {
    const checks = r.checks.length === 0 ? 'none' : r.checks.join('+');
    const rel = r.reliable;
    const cells =
      rel === null
        ? `${'(no reliable walk)'.padEnd(49)}`
        : LABELS.map((l, i) => String(rel[l]).padStart(i === 3 ? 15 : i === 0 ? 5 : 8)).join('  ');
    ctx.print(
      `${r.policy.padEnd(13)} ${checks.padEnd(10)} ${cells} | ${String(r.debug.complete).padStart(15)}  ${String(r.debug.missing).padStart(7)}  ${String(r.debug.invented).padStart(8)}`,
    );
  }
  ctx.print('');
  ctx.print(`soundness and completeness (of ${n} tasks), and what each refusal cost:`);
  for (const r of rows) {
    const rel = r.reliable;
    if (rel === null) continue;
    const called = rel.right + rel.unsound;
    const refusals = Object.entries(r.refusals)
      .map(([code, v]) => `${code} ${v.count} (${v.needless} needless)`)
      .join(', ');
    ctx.print(
      `  ${r.policy} ${r.checks.length === 0 ? '' : `+${r.checks.join('+')} `}: unsound ${rel.unsound} of ${called} reliable verdicts; right ${pct(rel.right, n)} of all; refusals: ${refusals === '' ? 'none' : refusals}`,
    );
  }
  ctx.print('');
  ctx.print('by the drawn state (no checks): right / unsound / needless / refused-rightly');
  for (const r of rows) {
    if (r.reliable === null || r.checks.length > 0) continue;
    const parts = STATES.filter((s) => r.byGroup[s] !== undefined).map((s) => {
      const g = r.byGroup[s]!;
      return `${s} ${LABELS.map((l) => g[l]).join('/')}`;
    });
    ctx.print(`  ${r.policy.padEnd(13)} ${parts.join('   ')}`);
  }
}

function printBoundaries(ctx: CommandContext, tasks: readonly BoundaryTask[]): void {
  ctx.print(`the capture's tasks stopped at an exception boundary: ${tasks.length}`);
  for (const t of tasks) {
    const kernel =
      t.kernelTraceComplete === null
        ? ''
        : t.kernelTraceComplete
          ? "; the kernel's own trace has it"
          : `; the kernel's own arch_stack_walk misses ${t.hidden} (${t.lr.symbol})`;
    ctx.print(
      `  ${t.comm} (pid ${t.pid}): interrupted at ${t.symbol}, state ${t.state}; regs[30] ${t.lr.symbol}${t.lr.calls === null ? '' : `, after a call to ${t.lr.calls}`}${kernel}`,
    );
    for (const v of t.verdicts) {
      const verdict =
        v.reliable === null ? 'debug walk' : v.reliable ? 'reliable' : `UNRELIABLE ${v.reason}`;
      const after = v.trace.findIndex((e) => e.source.startsWith('P'));
      const shown =
        after < 0
          ? '(ends before the pt_regs pc)'
          : v.trace
              .slice(after, after + 3)
              .map((e) => `${e.symbol}${e.source === '' ? '' : ` (${e.source})`}`)
              .join(' <- ');
      ctx.print(
        `    ${v.policy.padEnd(12)} ${verdict.padEnd(28)} ${v.trace.length} entries; ${shown}`,
      );
    }
  }
}
