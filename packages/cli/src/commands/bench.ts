import { parseArgs } from 'node:util';
import { buildMachine, type Machine, syntheticKernelDesc } from '@klpsim/kernel';
import {
  defaultScenario,
  measurePass,
  type Scenario,
  scaleScenario,
  scenarioSchema,
} from '@klpsim/livepatch';
import { type CheckName, type Policy, Walker } from '@klpsim/unwind';
import { BUNDLED_CAPTURES, DEFAULT_BENCH_CAPTURE } from '../bundled.js';
import { CliError } from '../errors.js';
import type { Logger } from '../log.js';
import { chooseChecks, choosePolicy, openCapture } from '../select.js';
import { runScenario } from './transition.js';
import { parsePositiveInt } from './walk.js';

export const BENCH_USAGE = `klpsim bench walk [capture.json] [--policy P] [--check C]... [--seconds S]
                  [--tasks N] [--depth D] [--text FILE]
klpsim bench transition [--tasks N,N...] [--policy P]

bench transition: for 100000 and 1000000 tasks (or --tasks), the wall-clock time of one
klp_try_complete_transition pass over tasks asleep in the bundled 7.2 capture's stacks,
and of the whole built-in scenario scaled to that many tasks; peak memory after each.


Prints frames per second of the reliable walk (the debug walk for linux-6.1, which
has no other), repeating every task of a capture (default: the bundled 6.1 one),
then the same for a synthetic kernel of N tasks (default 10000) of mean depth D
(default 16), and the peak memory.
  --policy P   default: the capture's own (mainline with meta records, else symcode-v8,
               the policy with a reliable walk that fits a 6.1 kernel)
  --seconds S  how long to repeat each measurement (default 3)`;

/** Repeats walks of `tasks` for about `seconds`; frames and walks per second. */
export function measureWalks(
  machine: Machine,
  policy: Policy,
  checks: readonly CheckName[],
  seconds: number,
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
  } while (elapsed < seconds);
  return {
    framesPerSecond: frames / elapsed,
    walksPerSecond: walks / elapsed,
    meanDepth: frames / walks,
    passes,
  };
}

const mega = (x: number) => `${(x / 1e6).toFixed(1)} M`;

/** `klpsim bench walk`: returns the exit code. */
export function runBench(argv: string[], log: Logger, print: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      policy: { type: 'string' },
      check: { type: 'string', multiple: true },
      seconds: { type: 'string' },
      tasks: { type: 'string' },
      depth: { type: 'string' },
      text: { type: 'string' },
    },
  });
  if (positionals[0] === 'transition' && positionals.length === 1)
    return runBenchTransition(values, log, print);
  if (positionals[0] !== 'walk' || positionals.length > 2) {
    print(BENCH_USAGE);
    return 2;
  }
  const seconds = values.seconds === undefined ? 3 : Number(values.seconds);
  if (!(seconds > 0 && seconds <= 600))
    throw new CliError('KLPSIM_USAGE', `--seconds: "${values.seconds}" is not between 0 and 600`);
  const ntasks = values.tasks === undefined ? 10_000 : parsePositiveInt('--tasks', values.tasks);
  const depth = values.depth === undefined ? 16 : parsePositiveInt('--depth', values.depth);
  const checks = chooseChecks(values.check);
  const file = positionals[1] ?? DEFAULT_BENCH_CAPTURE;

  const { machine } = openCapture(file, values.text);
  const capPolicy = choosePolicy(
    machine,
    values.policy ?? (machine.config.ptRegs.meta !== null ? 'mainline' : 'symcode-v8'),
  );
  const perPass = machine.tasks.length;
  const cap = measureWalks(machine, capPolicy, checks, seconds);
  const walkName = capPolicy.hasReliableWalk
    ? 'reliable walk'
    : 'debug walk (the policy has no reliable one)';
  print(`capture ${file}`);
  print(
    `  kernel ${machine.config.release}, ${perPass} tasks, mean depth ${cap.meanDepth.toFixed(1)}, policy ${capPolicy.name}, ${walkName}, checks: ${checks.join(', ') || 'none'}`,
  );
  print(
    `  ${mega(cap.framesPerSecond)}frames/s, ${mega(cap.walksPerSecond)}walks/s (${cap.passes} passes in ${seconds} s)`,
  );

  const t0 = performance.now();
  const built = buildMachine(syntheticKernelDesc({ tasks: ntasks, meanDepth: depth, seed: 1 }));
  if (!built.ok) throw CliError.fromInput(built.error);
  const buildSeconds = (performance.now() - t0) / 1000;
  const synPolicy = choosePolicy(built.value.machine, values.policy);
  const syn = measureWalks(built.value.machine, synPolicy, checks, seconds);
  print(
    `synthetic kernel: ${ntasks} tasks, mean depth ${syn.meanDepth.toFixed(1)} (built in ${buildSeconds.toFixed(1)} s), policy ${synPolicy.name}`,
  );
  print(
    `  ${mega(syn.framesPerSecond)}frames/s, ${mega(syn.walksPerSecond)}walks/s (${syn.passes} passes in ${seconds} s)`,
  );
  print(`peak memory (max RSS): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  log.debug({ cap, syn }, 'bench done');
  return 0;
}

const rssMiB = () => `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`;

function runBenchTransition(
  values: { tasks?: string | undefined; policy?: string | undefined },
  log: Logger,
  print: (s: string) => void,
): number {
  const sizes = (values.tasks ?? '100000,1000000')
    .split(',')
    .map((s) => parsePositiveInt('--tasks', s.trim()));
  for (const n of sizes) {
    const { machine } = openCapture(BUNDLED_CAPTURES[1], undefined);
    const policy = choosePolicy(machine, values.policy);
    const pass = measurePass(machine, policy, n, {
      name: 'bench',
      funcs: [{ oldName: 'do_nanosleep' }, { oldName: 'kthread_worker_fn' }],
    });
    print(`${n} tasks, policy ${policy.name}:`);
    print(
      `  one klp_try_complete_transition pass: ${pass.seconds.toFixed(3)} s (${mega(n / pass.seconds)}tasks/s; ${pass.switched} switched, ${pass.blocked} blocked); peak memory ${rssMiB()}`,
    );
    // Ten simulated minutes: time for the busy kthread workers to leave, whatever the task count.
    const sc = scenarioSchema.parse({ ...scaleScenario(defaultScenario(), n), timeLimit: 600 });
    const t0 = performance.now();
    const t = runScenario(
      values.policy === undefined ? sc : { ...sc, policy: values.policy as Scenario['policy'] },
      null,
      log,
    );
    const wall = (performance.now() - t0) / 1000;
    print(
      `  whole simulated transition (built-in scenario scaled to ${t.tasks.length} tasks): ${wall.toFixed(1)} s wall, ${t.completed ? `completed at ${t.completedAt} s simulated` : 'not completed'}, ${t.attempts} attempts; peak memory ${rssMiB()}`,
    );
  }
  return 0;
}
