import { buildMachine, type Machine, syntheticKernelDesc } from '@klpsim/kernel';
import {
  defaultScenario,
  measurePass,
  type Scenario,
  scaleScenario,
  scenarioSchema,
} from '@klpsim/livepatch';
import { type CheckName, POLICY_NAMES, type Policy, Walker } from '@klpsim/unwind';
import { BUNDLED_CAPTURES, DEFAULT_BENCH_CAPTURE } from '../bundled.js';
import type { CommandContext } from '../context.js';
import { CliError, EXIT_OK } from '../errors.js';
import {
  CHECK_FLAG,
  type CommandDef,
  decimal,
  JSON_FLAG,
  listOf,
  oneOf,
  parseCommand,
  UsageError,
  uint,
} from '../flags.js';
import { createProgress } from '../progress.js';
import { choosePolicy, openCapture } from '../select.js';
import { count, seconds as seconds_ } from '../text.js';
import { runScenario } from './transition.js';

// Each synthetic task has a 16 KiB stack (THREAD_SIZE); 100,000 of them is 1.6 GB.
const BENCH_TASKS_MAX = 100_000;
// Chains spread to 1.5 times the mean, frames up to 80 bytes: 100 still fits THREAD_SIZE.
const BENCH_DEPTH_MAX = 100;
// bench transition: a million tasks is the figure the docs quote; twice that still fits 24 GiB.
const TRANSITION_TASKS_MAX = 2_000_000;

export const BENCH_WALK_COMMAND = {
  name: 'bench walk',
  args: '[capture.json]',
  positionals: [0, 1],
  summary: 'frames per second of the reliable walk',
  description:
    'Frames per second of the reliable walk (the debug walk for linux-6.1, which has no other),\n' +
    'repeating every task of a capture (default: the bundled 6.1 one), then the same for a\n' +
    'synthetic kernel, and the peak memory. Figures, never assertions: see docs/performance.md.',
  flags: {
    policy: {
      type: 'string',
      arg: 'P',
      value: oneOf(POLICY_NAMES),
      help: "default: the capture's own (mainline with meta records, else symcode-v8, the reliable policy that fits 6.1)",
    },
    check: CHECK_FLAG,
    seconds: {
      type: 'string',
      arg: 'S',
      value: decimal(0, 600),
      help: 'how long to repeat each measurement (default 3)',
    },
    tasks: {
      type: 'string',
      arg: 'N',
      value: uint(1, BENCH_TASKS_MAX),
      help: 'tasks of the synthetic kernel (default 10000)',
    },
    depth: {
      type: 'string',
      arg: 'D',
      value: uint(1, BENCH_DEPTH_MAX),
      help: 'mean depth of its chains (default 16)',
    },
    text: { type: 'string', arg: 'FILE', help: 'the kernel text dump of the capture' },
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

export const BENCH_TRANSITION_COMMAND = {
  name: 'bench transition',
  args: '',
  positionals: [0, 0],
  summary: 'time and memory of the transition at 100k and 1M tasks',
  description:
    'For 100000 and 1000000 tasks (or --tasks), the wall-clock time of one\n' +
    "klp_try_complete_transition pass over tasks asleep in the bundled 7.2 capture's stacks,\n" +
    'and of the whole built-in scenario scaled to that many tasks; peak memory after each.',
  flags: {
    tasks: {
      type: 'string',
      arg: 'N,N',
      value: listOf(uint(1, TRANSITION_TASKS_MAX), 8),
      help: 'task counts (default 100000,1000000)',
    },
    policy: { type: 'string', arg: 'P', value: oneOf(POLICY_NAMES), help: 'default: mainline' },
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

/** Repeats walks of `tasks` for about `seconds`; frames and walks per second. */
export function measureWalks(
  machine: Machine,
  policy: Policy,
  checks: readonly CheckName[],
  seconds: number,
  onProgress: (fraction: number) => void = () => {},
): { framesPerSecond: number; walksPerSecond: number; meanDepth: number; passes: number } {
  const walker = new Walker(machine, policy);
  const options = { reliable: policy.hasReliableWalk, checks };
  const tasks = machine.tasks;
  // Warm up (a tenth of the time, at least 20 passes) so the figure is the optimised code's.
  const warm = performance.now();
  for (let i = 0; i < 20 || performance.now() - warm < seconds * 100; i++)
    for (const t of tasks) walker.walk(t, options);
  let frames = 0;
  let walks = 0;
  let passes = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    for (const t of tasks) {
      walker.walk(t, options);
      frames += walker.trace.len;
    }
    walks += tasks.length;
    passes++;
    elapsed = (performance.now() - t0) / 1000;
    onProgress(elapsed / seconds);
  } while (elapsed < seconds);
  return {
    framesPerSecond: frames / elapsed,
    walksPerSecond: walks / elapsed,
    meanDepth: frames / walks,
    passes,
  };
}

const mega = (x: number) => `${(x / 1e6).toFixed(1)} M`;
/** A rate in M (millions) or k (thousands), whichever reads. */
const rate = (x: number) => (x >= 1e6 ? mega(x) : `${(x / 1e3).toFixed(0)} k`);

const rssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

/** `klpsim bench walk` and `klpsim bench transition`: return the exit code. */
export function runBench(argv: string[], ctx: CommandContext): number {
  const [what, ...rest] = argv;
  if (what === 'walk') return runBenchWalk(rest, ctx);
  if (what === 'transition') return runBenchTransition(rest, ctx);
  throw new UsageError(
    'bench',
    what === undefined
      ? 'expected walk or transition'
      : `unknown benchmark "${what}" (expected walk or transition)`,
  );
}

function runBenchWalk(argv: string[], ctx: CommandContext): number {
  // Every flag is checked before the first capture is read or kernel built.
  const { flags, positionals } = parseCommand(BENCH_WALK_COMMAND, argv);
  const seconds = flags.seconds ?? 3;
  const ntasks = flags.tasks ?? 10_000;
  const depth = flags.depth ?? 16;
  const checks = flags.check ?? [];
  const file = positionals[0] ?? DEFAULT_BENCH_CAPTURE;

  const { machine } = openCapture(file, flags.text);
  const capPolicy = choosePolicy(
    machine,
    flags.policy ?? (machine.config.ptRegs.meta !== null ? 'mainline' : 'symcode-v8'),
  );
  const t0 = performance.now();
  const built = buildMachine(syntheticKernelDesc({ tasks: ntasks, meanDepth: depth, seed: 1 }));
  if (!built.ok) throw CliError.fromInput(built.error);
  const buildSeconds = (performance.now() - t0) / 1000;
  const synPolicy = choosePolicy(built.value.machine, flags.policy);

  const progress = createProgress('bench walk');
  const cap = measureWalks(machine, capPolicy, checks, seconds, (f) => progress.update(f / 2));
  const syn = measureWalks(built.value.machine, synPolicy, checks, seconds, (f) =>
    progress.update(0.5 + f / 2),
  );
  progress.done();
  ctx.log.debug({ cap, syn }, 'bench done');

  const walkName = capPolicy.hasReliableWalk ? 'reliable' : 'debug';
  if (flags.json === true) {
    ctx.print(
      JSON.stringify(
        {
          capture: {
            file,
            kernel: machine.config.release,
            tasks: machine.tasks.length,
            policy: capPolicy.name,
            walk: walkName,
            checks,
            seconds,
            ...cap,
          },
          synthetic: {
            tasks: ntasks,
            depth,
            buildSeconds,
            policy: synPolicy.name,
            seconds,
            ...syn,
          },
          maxRssMiB: rssMiB(),
        },
        null,
        2,
      ),
    );
    return EXIT_OK;
  }
  ctx.print(`capture ${file}`);
  ctx.print(
    `  kernel ${machine.config.release}, ${count(machine.tasks.length, 'task')}, mean depth ${cap.meanDepth.toFixed(1)}, policy ${capPolicy.name}, ${capPolicy.hasReliableWalk ? 'reliable walk' : 'debug walk (the policy has no reliable one)'}, checks: ${checks.join(', ') || 'none'}`,
  );
  ctx.print(
    `  ${mega(cap.framesPerSecond)}frames/s, ${mega(cap.walksPerSecond)}walks/s (${count(cap.passes, 'pass', 'passes')} in ${seconds_(seconds)})`,
  );
  ctx.print(
    `synthetic kernel: ${count(ntasks, 'task')}, mean depth ${syn.meanDepth.toFixed(1)} (built in ${seconds_(buildSeconds)}), policy ${synPolicy.name}`,
  );
  ctx.print(
    `  ${mega(syn.framesPerSecond)}frames/s, ${mega(syn.walksPerSecond)}walks/s (${count(syn.passes, 'pass', 'passes')} in ${seconds_(seconds)})`,
  );
  ctx.print(`peak memory (max RSS): ${rssMiB()} MiB`);
  return EXIT_OK;
}

function runBenchTransition(argv: string[], ctx: CommandContext): number {
  const { flags } = parseCommand(BENCH_TRANSITION_COMMAND, argv);
  const sizes = flags.tasks ?? [100_000, 1_000_000];
  const rows = [];
  const progress = createProgress('bench transition');
  for (const [i, n] of sizes.entries()) {
    progress.update(i / sizes.length);
    // Said before the work: a million tasks take a minute or two.
    if (flags.json !== true) process.stderr.write(`bench transition: ${count(n, 'task')}...\n`);
    const { machine } = openCapture(BUNDLED_CAPTURES[1], undefined);
    const policy = choosePolicy(machine, flags.policy);
    const pass = measurePass(machine, policy, n, {
      name: 'bench',
      funcs: [{ oldName: 'do_nanosleep' }, { oldName: 'kthread_worker_fn' }],
    });
    const passRss = rssMiB();
    // The built-in scenario never completes without force (it patches the kthread workers'
    // thread function): forced at 60 s, so every size simulates the same minute and ends.
    const base = scaleScenario(defaultScenario(), n);
    const sc = scenarioSchema.parse({
      ...base,
      timeLimit: 120,
      actions: [...(base.actions ?? []), { at: 60, do: 'force', patch: 'livepatch_default' }],
    });
    const stats = { events: 0, dropped: 0 };
    const t0 = performance.now();
    const t = runScenario(
      flags.policy === undefined ? sc : { ...sc, policy: flags.policy as Scenario['policy'] },
      null,
      ctx.log,
      stats,
    );
    const wall = (performance.now() - t0) / 1000;
    // The run ends when the (forced) transition completes: that is how much time it simulated.
    const simulated = t.completedAt ?? sc.timeLimit;
    progress.done();
    const row = {
      tasks: n,
      policy: policy.name,
      pass: {
        seconds: pass.seconds,
        switched: pass.switched,
        blocked: pass.blocked,
        maxRssMiB: passRss,
      },
      transition: {
        tasks: t.tasks.length,
        simulatedSeconds: simulated,
        wallSeconds: wall,
        wallPerSimulatedSecond: wall / simulated,
        events: stats.events,
        eventsDropped: stats.dropped,
        eventsPerSecond: stats.events / wall,
        completed: t.completed,
        completedAt: t.completedAt,
        attempts: t.attempts,
        maxRssMiB: rssMiB(),
      },
    };
    rows.push(row);
    if (flags.json === true) continue;
    ctx.print(`${count(n, 'task')}, policy ${policy.name}:`);
    ctx.print(
      `  one klp_try_complete_transition pass: ${seconds_(pass.seconds)} (${mega(n / pass.seconds)}tasks/s; ${pass.switched} switched, ${pass.blocked} blocked); peak memory ${passRss} MiB`,
    );
    ctx.print(
      `  whole simulated transition (built-in scenario scaled to ${count(t.tasks.length, 'task')}, forced at 60 s): ${seconds_(wall)} wall for ${seconds_(simulated)} simulated (${seconds_(wall / simulated)} per simulated second), ${t.completed ? 'completed' : 'not completed'}, ${count(t.attempts, 'attempt')}`,
    );
    ctx.print(
      `  ${count(stats.events, 'event')} (${rate(stats.events / wall)}events/s; ${count(stats.dropped, 'event')} of switched tasks dropped); peak memory ${row.transition.maxRssMiB} MiB`,
    );
  }
  if (flags.json === true) ctx.print(JSON.stringify({ runs: rows }, null, 2));
  return EXIT_OK;
}
