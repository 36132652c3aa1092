import {
  defaultScenario,
  measurePass,
  type Scenario,
  scaleScenario,
  scenarioSchema,
} from '@klpsim/livepatch';
import { POLICY_NAMES } from '@klpsim/unwind';
import { BUNDLED_CAPTURES } from '../bundled.js';
import type { CommandContext } from '../context.js';
import { EXIT_OK } from '../errors.js';
import {
  type CommandDef,
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
import { cReferenceYardstick, runBenchWalk } from './bench-walk.js';
import { runScenario } from './transition.js';

export { BENCH_WALK_COMMAND } from './bench-walk.js';

// bench transition: a million tasks is the figure the docs quote; twice that still fits 24 GiB.
const TRANSITION_TASKS_MAX = 2_000_000;

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

const mega = (x: number) => `${(x / 1e6).toFixed(1)} M`;
/** A rate in M (millions) or k (thousands), whichever reads. */
const rate = (x: number) => (x >= 1e6 ? mega(x) : `${(x / 1e3).toFixed(0)} k`);

const rssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

/** `klpsim bench walk` and `klpsim bench transition`: return the exit code. */
export function runBench(argv: string[], ctx: CommandContext): number | Promise<number> {
  const [what, ...rest] = argv;
  if (what === 'walk') return runBenchWalk(rest, ctx);
  if (what === 'transition') return runBenchTransition(rest, ctx);
  throw new UsageError(
    'bench',
    what === undefined
      ? 'expected walk, transition or start'
      : `unknown benchmark "${what}" (expected walk, transition or start)`,
  );
}

function runBenchTransition(argv: string[], ctx: CommandContext): number {
  const { flags } = parseCommand(BENCH_TRANSITION_COMMAND, argv);
  const sizes = flags.tasks ?? [100_000, 1_000_000];
  const rows = [];
  // The machine's speed, from the same run: the C reference walker on the 7.2 capture.
  const yard = openCapture(BUNDLED_CAPTURES[1], undefined).machine;
  const yardstick = cReferenceYardstick(yard, choosePolicy(yard, undefined), 2);
  const progress = createProgress('bench transition');
  for (const [i, n] of sizes.entries()) {
    progress.update(i / sizes.length);
    // Said before the work: a million tasks take a minute or two.
    if (flags.json !== true && process.stderr.isTTY)
      process.stderr.write(`bench transition: ${count(n, 'task')}...\n`);
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
      `  whole simulated transition (built-in scenario scaled to ${count(t.tasks.length, 'task')}, forced at 60 s): ${seconds_(wall)} wall for ${seconds_(simulated)} simulated (${seconds_(wall / simulated)} per simulated second), ${t.completed ? (t.forced ? 'completed (forced at 60 s)' : 'completed') : 'not completed'}, ${count(t.attempts, 'attempt')}`,
    );
    ctx.print(
      `  ${count(stats.events, 'event')} (${rate(stats.events / wall)}events/s; ${count(stats.dropped, 'event')} of switched tasks dropped); peak memory ${row.transition.maxRssMiB} MiB`,
    );
  }
  const yardText =
    'missing' in yardstick
      ? `C reference: missing (${yardstick.missing})`
      : `C reference (machine yardstick, bundled 7.2 capture, reliable walk): ${mega(yardstick.framesPerSecond)}frames/s`;
  if (flags.json === true)
    ctx.print(
      JSON.stringify(
        {
          runs: rows,
          cReference:
            'missing' in yardstick
              ? { missing: yardstick.missing }
              : { framesPerSecond: yardstick.framesPerSecond },
        },
        null,
        2,
      ),
    );
  else ctx.print(yardText);
  return EXIT_OK;
}
