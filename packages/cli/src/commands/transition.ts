import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type InputError,
  type LoadedCapture,
  loadCapture,
  type Result,
  validate,
} from '@klpsim/kernel';
import {
  defaultScenario,
  type Scenario,
  scenarioEnvironment,
  scenarioSchema,
  simulate,
  type TransitionLog,
} from '@klpsim/livepatch';
import { BUNDLED_CAPTURES } from '../bundled.js';
import { CliError } from '../errors.js';
import type { Logger } from '../log.js';

export const TRANSITION_USAGE = `klpsim transition [scenario.json] [--policy P] [--seed N] [--debug] [--json]

Simulates a livepatch transition over simulated time (without a file: the built-in
scenario, a 64-CPU server of ~2000 tasks drawn from the bundled 7.2 capture).
Prints time to completion, retries, signals, and the tasks that blocked longest.
--debug also logs the kernel's pr_debug messages ("%s:%d is sleeping on function %s").
Exit code 3 if the consistency checker saw a task switch with a changed function
on its stack (never expected, except after force, which it reports separately).`;

/** Resolves a scenario's capture: "bundled:linux-6.1", "bundled:linux-7.2", or a path relative to the scenario. */
export function captureLoader(
  scenarioFile: string | null,
): (ref: string) => Result<LoadedCapture, InputError> {
  return (ref) => {
    if (ref.startsWith('bundled:')) {
      const name = ref.slice('bundled:'.length);
      const file = BUNDLED_CAPTURES.find((f) => f.includes(`/${name}-arm64-plain/`));
      if (file === undefined) {
        return {
          ok: false,
          error: {
            code: 'KLPSIM_INPUT_INVALID',
            message: `no bundled capture "${name}"`,
            field: 'machine.capture',
            expected: 'bundled:linux-6.1 or bundled:linux-7.2',
          },
        };
      }
      return loadCapture(file);
    }
    return loadCapture(scenarioFile === null ? ref : resolve(dirname(scenarioFile), ref));
  };
}

/** Loads and validates a scenario file, or the built-in one. */
export function loadScenario(file: string | null): Scenario {
  if (file === null) return scenarioSchema.parse(defaultScenario());
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError('KLPSIM_INPUT_INVALID', `${file}: ${(e as Error).message}`);
  }
  const r = validate(scenarioSchema, json, file);
  if (!r.ok) throw CliError.fromInput(r.error);
  return r.value;
}

/** Runs a scenario (throws CliError on bad input). */
export function runScenario(sc: Scenario, file: string | null, log: Logger): TransitionLog {
  const env = scenarioEnvironment(sc, captureLoader(file));
  if (!env.ok)
    throw CliError.fromInput({
      ...env.error,
      file: env.error.file ?? file ?? '(built-in scenario)',
    });
  const t0 = performance.now();
  const out = simulate(sc, env.value);
  if (!out.ok) throw CliError.fromInput({ ...out.error, file: file ?? '(built-in scenario)' });
  log.debug({ ms: Math.round(performance.now() - t0) }, 'simulated');
  return out.value;
}

/** Human summary of a transition log. */
export function renderTransition(t: TransitionLog): string {
  const out = [
    `scenario: ${t.scenario} (policy ${t.policy}, seed ${t.seed}, ${t.tasks.length} tasks)`,
  ];
  out.push(
    t.completed
      ? `completed at ${t.completedAt} s of simulated time, after ${t.attempts} attempts; ${t.signalsSent} tasks signalled${t.forced ? '; FORCED' : ''}`
      : `NOT completed within the time limit: ${t.attempts} attempts, ${t.signalsSent} tasks signalled${t.forced ? ', forced' : ''}`,
  );
  if (t.violations.length > 0) {
    out.push(`CONSISTENCY VIOLATIONS: ${t.violations.length}`);
    for (const v of t.violations.slice(0, 10))
      out.push(`  ${v.t} s ${v.comm}:${v.pid} switched (${v.via}) with ${v.function} on its stack`);
  }
  const via = new Map<string, number>();
  for (const task of t.tasks) via.set(task.via ?? 'never', (via.get(task.via ?? 'never') ?? 0) + 1);
  out.push(
    `switched by: ${[...via]
      .sort()
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );
  const slow = t.tasks
    .filter((x) => x.blockedBy.length > 0)
    .sort(
      (a, b) =>
        (b.switchedAt ?? Number.POSITIVE_INFINITY) - (a.switchedAt ?? Number.POSITIVE_INFINITY) ||
        a.pid - b.pid,
    )
    .slice(0, 10);
  if (slow.length > 0) {
    out.push('blocked longest:');
    for (const s of slow) {
      const why = s.blockedBy
        .map((b) => `${b.reason}${b.function !== null ? ` ${b.function}` : ''} x${b.count}`)
        .join('; ');
      out.push(
        `  ${s.comm}:${s.pid} switched ${s.switchedAt === null ? 'never' : `at ${s.switchedAt} s via ${s.via}`}: ${why}`,
      );
    }
  }
  out.push('timeline:');
  for (const e of t.timeline)
    out.push(
      `  ${e.t.toFixed(3).padStart(9)} s  ${e.event === 'message' ? '' : `[${e.event}] `}${e.text}`,
    );
  return out.join('\n');
}

/** `klpsim transition`: returns the exit code. */
export function runTransition(argv: string[], log: Logger, print: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      policy: { type: 'string' },
      seed: { type: 'string' },
      debug: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 1) {
    print(TRANSITION_USAGE);
    return 2;
  }
  const file = positionals[0] ?? null;
  let sc = loadScenario(file);
  if (values.policy !== undefined) {
    if (!['mainline', 'linux-6.1', 'symcode-v8'].includes(values.policy)) {
      throw new CliError(
        'KLPSIM_USAGE',
        `--policy: unknown policy "${values.policy}" (expected one of mainline, linux-6.1, symcode-v8)`,
      );
    }
    sc = { ...sc, policy: values.policy as Scenario['policy'] & string };
  }
  if (values.seed !== undefined) {
    const seed = Number(values.seed);
    if (!Number.isInteger(seed))
      throw new CliError('KLPSIM_USAGE', `--seed: "${values.seed}" is not an integer`);
    sc = { ...sc, seed };
  }
  if (values.debug === true) sc = { ...sc, debug: true };
  const t = runScenario(sc, file, log);
  print(values.json === true ? JSON.stringify(t, null, 2) : renderTransition(t));
  if (t.violations.length > 0) {
    process.stderr.write(
      `klpsim: ${t.violations.length} consistency violations: a task switched with a changed function on its stack\n`,
    );
    return 3;
  }
  return 0;
}
