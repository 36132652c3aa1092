import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { relative } from 'node:path';
import { KLPSIM_BIN as BIN } from '../bin.js';
import { DEFAULT_BENCH_CAPTURE } from '../bundled.js';
import type { CommandContext } from '../context.js';
import { CliError, EXIT_OK } from '../errors.js';
import { type CommandDef, JSON_FLAG, parseCommand, uint } from '../flags.js';
import { createProgress } from '../progress.js';

// A hundred runs of a 0.5 s walk is a minute; a thousand is as many as anyone waits for.
const RUNS_MAX = 1000;
const RUNS_DEFAULT = 10;

export const BENCH_START_COMMAND = {
  name: 'bench start',
  args: '[capture.json]',
  positionals: [0, 1],
  summary: 'start-up time of klpsim itself',
  description:
    'Wall-clock time from starting node to its exit for `klpsim --version`, `klpsim --help` and\n' +
    '`klpsim walk` of a capture (default: the bundled 6.1 one), each in a fresh process, after one\n' +
    'warm-up run, beside `node -e 0` on the same machine: minimum, median and maximum in ms.\n' +
    'Figures, never assertions: see docs/performance.md, "Start-up".',
  flags: {
    runs: {
      type: 'string',
      arg: 'N',
      value: uint(1, RUNS_MAX),
      help: `timed runs of each command (default ${RUNS_DEFAULT})`,
    },
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

/** One measured command: what it runs and its wall-clock times. */
interface StartFigure {
  readonly command: string;
  readonly minMs: number;
  readonly medianMs: number;
  readonly maxMs: number;
}

/** Runs `node args` once, stdout discarded; its wall-clock ms, or a CliError quoting its stderr. */
function timeOnce(label: string, args: readonly string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) {
    const why = r.error?.message ?? r.stderr.toString('utf8').split('\n')[0] ?? '';
    throw new CliError(
      'KLPSIM_INPUT_INVALID',
      `bench start: \`${label}\` failed (exit ${r.status}): ${why}`,
    );
  }
  return ms;
}

/** Minimum, median and maximum of `runs` timed runs after one untimed warm-up (disk cache, JIT of node itself). */
function measure(
  label: string,
  args: readonly string[],
  runs: number,
  tick: () => void,
): StartFigure {
  timeOnce(label, args);
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    ms.push(timeOnce(label, args));
    tick();
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  const median = ms.length % 2 === 1 ? ms[mid]! : (ms[mid - 1]! + ms[mid]!) / 2;
  // Tenths of a millisecond: finer is below what the clock of a loaded machine can tell apart.
  const tenth = (x: number) => Math.round(x * 10) / 10;
  return {
    command: label,
    minMs: tenth(ms[0]!),
    medianMs: tenth(median),
    maxMs: tenth(ms[ms.length - 1]!),
  };
}

/** `klpsim bench start`: times the start-up of klpsim's commands; returns the exit code. */
export function runBenchStart(argv: string[], ctx: CommandContext): number {
  const { flags, positionals } = parseCommand(BENCH_START_COMMAND, argv);
  const runs = flags.runs ?? RUNS_DEFAULT;
  const capture = positionals[0] ?? DEFAULT_BENCH_CAPTURE;
  if (!existsSync(capture))
    throw new CliError(
      'KLPSIM_FILE_UNREADABLE',
      `${capture}: no such capture (the bundled ones ship with the repository; name one)`,
    );
  const shown = relative(process.cwd(), capture) || capture;
  const plan: [string, string[]][] = [
    ['node -e 0', ['-e', '0']],
    ['klpsim --version', [BIN, '--version']],
    ['klpsim --help', [BIN, '--help']],
    [`klpsim walk ${shown}`, [BIN, 'walk', capture]],
  ];
  const progress = createProgress('bench start');
  let done = 0;
  const tick = () => progress.update(++done / (plan.length * runs));
  const figures = plan.map(([label, args]) => measure(label, args, runs, tick));
  progress.done();

  const machine = { node: process.version, cpus: availableParallelism() };
  if (flags.json === true) {
    ctx.print(JSON.stringify({ ...machine, runs, figures }, null, 2));
    return EXIT_OK;
  }
  ctx.print(
    `start-up, wall clock from spawn to exit, ${runs} run${runs === 1 ? '' : 's'} each after a warm-up (node ${machine.node}, ${machine.cpus} CPUs)`,
  );
  const width = Math.max(...figures.map((f) => f.command.length)) + 2;
  const ms = (x: number) => `${Math.round(x)} ms`.padStart(7);
  for (const f of figures)
    ctx.print(
      `  ${f.command.padEnd(width)}min ${ms(f.minMs)}   median ${ms(f.medianMs)}   max ${ms(f.maxMs)}`,
    );
  return EXIT_OK;
}
