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
  parseKernelVersion,
  patchStateAt,
  type Scenario,
  scenarioEnvironment,
  scenarioSchema,
  simulate,
  sysfsAt,
  type TransitionLog,
} from '@klpsim/livepatch';
import { BUNDLED_CAPTURES } from '../bundled.js';
import { CliError } from '../errors.js';
import { runsReport, transitionReport } from '../html/livepatch.js';
import { renderPage } from '../html/page.js';
import { checkOutputPath, writeFileAtomic } from '../html/write.js';
import type { Logger } from '../log.js';
import { defaultWorkers, progressBar, renderRuns, runMany } from '../runs.js';

export const TRANSITION_USAGE = `klpsim transition [scenario.json] [--policy P] [--kernel V] [--seed N] [--runs N [--workers W]]
                  [--sysfs-at T] [--html FILE] [--debug] [--json]

Simulates a livepatch transition over simulated time (without a file: the built-in
scenario, a 64-CPU server of ~2000 tasks drawn from the bundled 7.2 capture).
Leads with the answer: completes (when, at which attempt) or not (who is still
pending, why, and what would end the wait), then the details and the timeline.
--kernel V: the kernel version whose scheduler hook applies (6.1-6.3 none, 6.4-6.15
cond_resched(), 6.16+ freezable sleeps in __schedule()); default the scenario's.
--runs N: N runs with seeds S, S+1, ... (S from --seed or the scenario) over W worker
threads (default: one per core, at most 8), summed up: completion probability, time to
completion (median, p90, p99, max), signals, force, kpatch's window, who held it up.
The same N and S give the same bytes whatever W is. A progress bar on a terminal.
--debug also logs the kernel's pr_debug messages ("%s:%d is sleeping on function %s").
Exit codes: 0 completed (with --runs: in every run); 1 did not complete within the
scenario's time limit (or the kernel refused the patch); 3 the consistency checker saw a task switch while
running another version of a patched function (forced switches excepted).`;

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

const sec = (x: number): string => `${x.toFixed(3)} s`;
const plural = (n: number, w: string): string => `${n} ${n === 1 ? w : `${w}s`}`;

/** The answer first: will it complete, when, and who holds it up and why. */
export function transitionAnswer(t: TransitionLog): string[] {
  const out: string[] = [];
  const first = t.transitions[0];
  if (first === undefined) {
    const failed = t.timeline.filter((e) => e.event === 'action' && /: -\d+/.test(e.text));
    out.push(
      `NO TRANSITION: the kernel refused the patch (${failed.map((e) => e.text).join('; ') || 'no enable'})`,
    );
    for (const e of t.timeline.filter((x) => x.level === 'err' || x.level === 'warn'))
      out.push(`  ${e.text}`);
    return out;
  }
  const last = t.transitions[t.transitions.length - 1]!;
  if (t.completed && last.reversedAt !== null) {
    const back = last.target === 1 ? 'unpatched' : 'patched';
    out.push(
      `REVERSED: the ${last.target === 1 ? 'patching' : 'unpatching'} of ${last.patch} was reversed at ${sec(last.reversedAt)}${t.kpatch?.gaveUp === true ? ' (kpatch gave up)' : ''}; back to ${back} at ${sec(last.completedAt!)}, at attempt ${last.completingAttempt}`,
    );
  } else if (t.completed) {
    out.push(
      `COMPLETES${t.forced ? ' (FORCED)' : ''}: at ${sec(last.completedAt!)} of simulated time, ${sec(last.completedAt! - last.startedAt)} after it started, at attempt ${last.completingAttempt}${last.signalRounds.length > 0 ? `, after ${plural(last.signalRounds.length, 'signal round')}` : ''}`,
    );
  } else {
    const forceOnly =
      t.pendingAtEnd.length > 0 && t.pendingAtEnd.every((p) => p.remedy.startsWith('force'));
    out.push(
      `${forceOnly ? 'NEVER COMPLETES WITHOUT FORCE' : 'NOT COMPLETED'}: ${plural(t.pendingAtEnd.length, 'task')} still pending at the ${t.timeLimit} s limit, after ${plural(t.attempts, 'attempt')}`,
    );
    for (const p of t.pendingAtEnd.slice(0, 8))
      out.push(`  ${p.comm}:${p.pid} ${p.reason}; ends with ${p.remedy}`);
    if (t.pendingAtEnd.length > 8)
      out.push(`  ... and ${t.pendingAtEnd.length - 8} more (--json lists them all)`);
  }
  if (t.kpatch !== null)
    out.push(
      `kpatch load: ${t.kpatch.completedInWindow ? 'completed inside its window' : t.kpatch.gaveUp ? 'gave up and disabled the patch' : 'still waiting'}`,
    );
  if (t.violations.length > 0) out.push(`CONSISTENCY VIOLATIONS: ${t.violations.length}`);
  const v = parseKernelVersion(t.kernel);
  if (v !== null && (v.major < 6 || (v.major === 6 && v.minor < 17)))
    out.push(
      `note: mainline arm64 has livepatch from 6.17 (fd1e0fd71f65); kernel ${t.kernel} here is one that backports it`,
    );
  return out;
}

/** Human summary of a transition log: the answer, then the details. */
export function renderTransition(t: TransitionLog): string {
  const out = transitionAnswer(t);
  out.push(
    `scenario: ${t.scenario} (kernel ${t.kernel}: scheduler hook ${t.schedHook}; policy ${t.policy}; seed ${t.seed}; ${plural(t.tasks.length, 'task')})`,
  );
  out.push(
    `${plural(t.attempts, 'attempt')}; ${plural(t.signalsSent, 'signal')} to ${plural(t.tasksSignalled, 'task')}${t.forced ? '; forced' : ''}`,
  );
  for (const v of t.violations.slice(0, 10))
    out.push(`  ${v.t} s ${v.comm}:${v.pid} switched (${v.via}) with ${v.function} on its stack`);
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
    out.push('blocked longest (attempts that found it so):');
    for (const s of slow) {
      const why = s.blockedBy
        .map(
          (b) =>
            `${b.reason}${b.function !== null ? ` ${b.function}` : ''} (${plural(b.count, 'attempt')})`,
        )
        .join('; ');
      out.push(
        `  ${s.comm}:${s.pid} switched ${s.switchedAt === null ? 'never' : `at ${sec(s.switchedAt)} via ${s.via}`}: ${why}`,
      );
    }
  }
  out.push('timeline:');
  for (const e of t.timeline)
    out.push(
      `  ${sec(e.t).padStart(11)}  ${e.event === 'message' ? '' : `[${e.event}] `}${e.text}`,
    );
  return out.join('\n');
}

/** /sys/kernel/livepatch and every task's /proc/PID/patch_state at one moment of a run. */
export function sysfsView(t: TransitionLog, at: number) {
  return {
    t: at,
    patches: sysfsAt(t, at).patches,
    tasks: t.tasks.map((x) => ({
      pid: x.pid,
      comm: x.comm,
      patch_state: patchStateAt(t, x.pid, at),
    })),
  };
}

function renderSysfs(v: ReturnType<typeof sysfsView>): string {
  const out = [`/sys/kernel/livepatch at ${v.t} s:`];
  if (v.patches.length === 0) out.push('  (no patch)');
  for (const p of v.patches) {
    out.push(
      `  ${p.name}/ enabled=${p.enabled} transition=${p.transition} replace=${p.replace} stack_order=${p.stack_order} ${Object.entries(
        p.objects,
      )
        .map(([o, x]) => `${o}/patched=${x}`)
        .join(' ')}`,
    );
  }
  const counts = new Map<number, number>();
  for (const x of v.tasks) counts.set(x.patch_state, (counts.get(x.patch_state) ?? 0) + 1);
  out.push(
    `/proc/*/patch_state: ${[...counts]
      .sort((a, b) => a[0] - b[0])
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ')} (-1 idle, 0 unpatched, 1 patched; --json lists every task)`,
  );
  return out.join('\n');
}

/** A whole number from the command line, within bounds; the error names the flag as typed. */
function intFlag(flag: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new CliError(
      'KLPSIM_USAGE',
      `${flag}: "${text}" is not a whole number from ${min} to ${max}`,
    );
  return n;
}

/** The largest --runs: a million runs is hours of work already. */
const MAX_RUNS = 1_000_000;

/** `klpsim transition`: returns the exit code. */
export async function runTransition(
  argv: string[],
  log: Logger,
  print: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      policy: { type: 'string' },
      seed: { type: 'string' },
      runs: { type: 'string' },
      workers: { type: 'string' },
      kernel: { type: 'string' },
      'sysfs-at': { type: 'string' },
      html: { type: 'string' },
      debug: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 1) {
    print(TRANSITION_USAGE);
    return 2;
  }
  const file = positionals[0] ?? null;
  if (values.html !== undefined) checkOutputPath(values.html, '--html');
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
  if (values.kernel !== undefined) {
    if (parseKernelVersion(values.kernel) === null)
      throw new CliError(
        'KLPSIM_USAGE',
        `--kernel: "${values.kernel}" is not a kernel version klpsim models (6.1 or later, e.g. 6.12)`,
      );
    sc = { ...sc, kernel: values.kernel };
  }
  const runs = values.runs === undefined ? null : intFlag('--runs', values.runs, 1, MAX_RUNS);
  if (values.seed !== undefined)
    sc = { ...sc, seed: intFlag('--seed', values.seed, 0, 0xffffffff - (runs ?? 1) + 1) };
  else if (runs !== null && sc.seed + runs - 1 > 0xffffffff)
    throw new CliError(
      'KLPSIM_USAGE',
      `--runs: seeds ${sc.seed}..${sc.seed + runs - 1} go past 4294967295`,
    );
  const workers =
    values.workers === undefined ? defaultWorkers() : intFlag('--workers', values.workers, 1, 64);
  if (values.debug === true) sc = { ...sc, debug: true };
  if (runs !== null) {
    // Validate the environment here, where an error can name the file, before any worker starts.
    const env = scenarioEnvironment(sc, captureLoader(file));
    if (!env.ok)
      throw CliError.fromInput({
        ...env.error,
        file: env.error.file ?? file ?? '(built-in scenario)',
      });
    const summary = await runMany(sc, file, runs, workers, progressBar());
    const text = renderRuns(summary);
    if (values.html !== undefined)
      writeFileAtomic(
        values.html,
        renderPage({
          title: `klpsim: ${sc.name}, ${runs} runs`,
          sections: runsReport(summary, text),
        }),
        '--html',
      );
    print(values.json === true ? JSON.stringify(summary, null, 2) : text);
    return summary.completionProbability === 1 ? 0 : 1;
  }
  let at: number | null = null;
  if (values['sysfs-at'] !== undefined) {
    at = Number(values['sysfs-at']);
    if (!/^\d+(\.\d+)?$/.test(values['sysfs-at']) || at > sc.timeLimit)
      throw new CliError(
        'KLPSIM_USAGE',
        `--sysfs-at: "${values['sysfs-at']}" is not a time in seconds from 0 to the time limit (${sc.timeLimit})`,
      );
  }
  const t = runScenario(sc, file, log);
  if (at !== null) {
    const view = sysfsView(t, at);
    print(values.json === true ? JSON.stringify(view, null, 2) : renderSysfs(view));
    return 0;
  }
  if (values.html !== undefined)
    writeFileAtomic(
      values.html,
      renderPage({
        title: `klpsim: ${t.scenario}`,
        subtitle: `kernel ${t.kernel}, policy ${t.policy}, seed ${t.seed}`,
        sections: transitionReport(t, transitionAnswer(t)),
      }),
      '--html',
    );
  print(values.json === true ? JSON.stringify(t, null, 2) : renderTransition(t));
  if (t.violations.length > 0) {
    process.stderr.write(
      `klpsim: ${plural(t.violations.length, 'consistency violation')}: a task switched while running another version of a patched function\n`,
    );
    return 3;
  }
  // kpatch giving up is a failed load even though the reversal completed.
  return t.completed && t.kpatch?.gaveUp !== true ? 0 : 1;
}
