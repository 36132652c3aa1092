import {
  defaultScenario,
  measurePass,
  type Scenario,
  scaleScenario,
  scenarioEnvironment,
  scenarioSchema,
  simulate,
} from '@klpsim/livepatch';
import { POLICY_NAMES } from '@klpsim/unwind';
import { BUNDLED_CAPTURES } from '../bundled.js';
import type { CommandContext } from '../context.js';
import { CliError, EXIT_OK } from '../errors.js';
import { type CommandDef, JSON_FLAG, listOf, oneOf, parseCommand, uint } from '../flags.js';
import { createProgress } from '../progress.js';
import { choosePolicy, openCapture } from '../select.js';
import { count, seconds as seconds_ } from '../text.js';
import { cReferenceYardstick } from './bench-walk.js';
import { captureLoader } from './transition.js';

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

/** `klpsim bench transition`: returns the exit code. */
export function runBenchTransition(argv: string[], ctx: CommandContext): number {
  const { flags } = parseCommand(BENCH_TRANSITION_COMMAND, argv);
  const sizes = flags.tasks ?? [100_000, 1_000_000];
  const rows = [];
  const yardstick = machineYardstick();
  const progress = createProgress('bench transition');
  for (const [i, n] of sizes.entries()) {
    progress.update(i / sizes.length);
    // Said before the work: a million tasks take a minute or two.
    if (flags.json !== true && process.stderr.isTTY)
      process.stderr.write(`bench transition: ${count(n, 'task')}...\n`);
    // One copy of the capture for the pass and the scenario (each runs on a clone of its machine).
    const capture = openCapture(BUNDLED_CAPTURES[1], undefined);
    const loader = captureLoader(null);
    const load = (ref: string) =>
      ref === BUNDLED_72 ? { ok: true as const, value: capture } : loader(ref);
    const policy = choosePolicy(capture.machine, flags.policy);
    const pass = measurePass(capture.machine, policy, n, {
      name: 'bench',
      funcs: [{ oldName: 'do_nanosleep' }, { oldName: 'kthread_worker_fn' }],
    });
    const passRss = rssMiB();
    // The built-in scenario never completes without force (it patches the kthread workers'
    // thread function): forced at 60 s, so every size simulates the same minute and ends.
    const base = scaleScenario(defaultScenario(), n);
    const parsed = scenarioSchema.parse({
      ...base,
      timeLimit: 120,
      actions: [...(base.actions ?? []), { at: 60, do: 'force', patch: 'livepatch_default' }],
    });
    const sc =
      flags.policy === undefined
        ? parsed
        : { ...parsed, policy: flags.policy as Scenario['policy'] };
    const env = scenarioEnvironment(sc, load);
    if (!env.ok) throw CliError.fromInput({ ...env.error, file: '(built-in scenario)' });
    const stats = { events: 0, dropped: 0 };
    const t0 = performance.now();
    const out = simulate(sc, env.value, {
      stats,
      progress: (f) => progress.update((i + f) / sizes.length),
    });
    const wall = (performance.now() - t0) / 1000;
    if (!out.ok) throw CliError.fromInput({ ...out.error, file: '(built-in scenario)' });
    const t = out.value;
    const transitionRss = rssMiB();
    // The log keeps its task reports in columns: reading them all as objects (what --json
    // or a consumer iterating t.tasks does) is timed on its own.
    const r0 = performance.now();
    const tasks = t.tasks.length;
    const reportsWall = (performance.now() - r0) / 1000;
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
        tasks,
        simulatedSeconds: simulated,
        wallSeconds: wall,
        wallPerSimulatedSecond: wall / simulated,
        events: stats.events,
        eventsDropped: stats.dropped,
        eventsPerSecond: stats.events / wall,
        completed: t.completed,
        completedAt: t.completedAt,
        attempts: t.attempts,
        maxRssMiB: transitionRss,
      },
      reports: { seconds: reportsWall, maxRssMiB: rssMiB() },
    };
    rows.push(row);
    if (flags.json === true) continue;
    ctx.print(`${count(n, 'task')}, policy ${policy.name}:`);
    ctx.print(
      `  one klp_try_complete_transition pass: ${seconds_(pass.seconds)} (${mega(n / pass.seconds)}tasks/s; ${pass.switched} switched, ${pass.blocked} blocked); peak memory ${passRss} MiB`,
    );
    ctx.print(
      `  whole simulated transition (built-in scenario scaled to ${count(tasks, 'task')}, forced at 60 s): ${seconds_(wall)} wall for ${seconds_(simulated)} simulated (${seconds_(wall / simulated)} per simulated second), ${t.completed ? (t.forced ? 'completed (forced at 60 s)' : 'completed') : 'not completed'}, ${count(t.attempts, 'attempt')}`,
    );
    ctx.print(
      `  ${count(stats.events, 'event')} (${rate(stats.events / wall)}events/s; ${count(stats.dropped, 'event')} of switched tasks dropped); peak memory ${transitionRss} MiB`,
    );
    ctx.print(
      `  then the log's ${count(tasks, 'task report')} read as objects: ${seconds_(reportsWall)}; peak memory ${row.reports.maxRssMiB} MiB`,
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

/** The scenario's name for the bundled 7.2 capture (the built-in scenario's machine). */
const BUNDLED_72 = 'bundled:linux-7.2';

/**
 * The machine's speed, from the same run: the C reference walker on the 7.2
 * capture. Its own function, so that capture is garbage before the runs.
 */
function machineYardstick(): ReturnType<typeof cReferenceYardstick> {
  const yard = openCapture(BUNDLED_CAPTURES[1], undefined).machine;
  return cReferenceYardstick(yard, choosePolicy(yard, undefined), 2);
}
