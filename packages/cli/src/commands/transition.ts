import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
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
  type SimStats,
  scenarioEnvironment,
  scenarioSchema,
  simulate,
  sysfsAt,
  type TransitionLog,
} from '@klpsim/livepatch';
import { POLICY_NAMES } from '@klpsim/unwind';
import { z } from 'zod';
import { BUNDLED_CAPTURES } from '../bundled.js';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import {
  type CommandDef,
  JSON_FLAG,
  oneOf,
  parseCommand,
  SEED,
  UsageError,
  uint,
  type ValueDef,
} from '../flags.js';
import { runsReport, transitionReport } from '../html/livepatch.js';
import { renderPage } from '../html/page.js';
import { checkOutputPath, writeFileAtomic } from '../html/write.js';
import type { Logger } from '../log.js';
import { createProgress } from '../progress.js';
import { defaultWorkers, renderRuns, runMany } from '../runs.js';
import { count } from '../text.js';

/** A time in seconds, 0 to a day (the longest scenario). */
const TIME: ValueDef<number> = {
  schema: z
    .string()
    .regex(/^[0-9]+(\.[0-9]+)?$/)
    .transform(Number)
    .pipe(z.number().min(0).max(86_400)),
  expected: 'a time in seconds from 0 to 86400',
};

/** A kernel version klpsim models. */
const KERNEL_VERSION: ValueDef<string> = {
  schema: z.string().refine((v) => parseKernelVersion(v) !== null),
  expected: 'a kernel version from 6.1 on, as 6.12 or 7.2.13',
};

/** The largest --runs: a million runs is hours of work already. */
const MAX_RUNS = 1_000_000;

export const TRANSITION_COMMAND = {
  name: 'transition',
  args: '[scenario.json]',
  positionals: [0, 1],
  summary: 'simulate a livepatch transition over time',
  description:
    'Simulates a livepatch transition over simulated time (without a file: the built-in scenario, a\n' +
    '64-CPU Linux 7.2 server of ~2,000 tasks drawn from the bundled 7.2 capture). Leads with the\n' +
    'answer: completes (when, at which attempt) or not (who is still pending, why, and what would\n' +
    'end the wait), then the details and the timeline. Exit codes: 0 completed (with --runs: in\n' +
    'every run); 1 not completed within the time limit, refused by the kernel, or kpatch gave up;\n' +
    '3 the consistency checker saw a task switch while running another version of a patched function.',
  flags: {
    policy: {
      type: 'string',
      arg: 'P',
      value: oneOf(POLICY_NAMES),
      help: "the walk policy; default: the scenario's, else the one that fits the kernel",
    },
    kernel: {
      type: 'string',
      arg: 'V',
      value: KERNEL_VERSION,
      help: 'the scheduler hook of this version: 6.1-6.3 none, 6.4-6.15 cond_resched(), 6.16+ freezable __schedule()',
    },
    seed: { type: 'string', arg: 'N', value: SEED, help: "the seed; default: the scenario's" },
    runs: {
      type: 'string',
      arg: 'N',
      value: uint(1, MAX_RUNS),
      help: 'N seeded runs (S, S+1, ...) summed up: completion probability, time to completion, blockers',
    },
    workers: {
      type: 'string',
      arg: 'W',
      value: uint(1, 64),
      help: 'worker threads for --runs (default: one per core, at most 8); the output is the same for any W',
    },
    'sysfs-at': {
      type: 'string',
      arg: 'T',
      value: TIME,
      help: "instead: /sys/kernel/livepatch and every task's patch_state at T seconds",
    },
    html: {
      type: 'string',
      arg: 'FILE',
      help: 'also a self-contained page: the chart, who held it up and the stack that did (--runs: the distribution)',
    },
    debug: { type: 'boolean', help: "also the kernel's pr_debug lines (dynamic debug)" },
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

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
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError('KLPSIM_INPUT_INVALID', `${file}: cannot read: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliError(
      'KLPSIM_INPUT_INVALID',
      `${file}: not JSON: ${(e as Error).message.replace(/\r?\n/g, '\\n')}`,
    );
  }
  if ((json as { format?: unknown } | null)?.format === 'arm64-stack-capture/v1')
    throw new CliError(
      'KLPSIM_INPUT_INVALID',
      `${file}: a capture (arm64-stack-capture/v1), not a scenario: walk and predict read captures; a scenario names one in machine.capture (docs/livepatch.md)`,
    );
  const r = validate(scenarioSchema, json, file);
  if (!r.ok) throw CliError.fromInput(r.error);
  return r.value;
}

/** Runs a scenario (throws CliError on bad input). */
export function runScenario(
  sc: Scenario,
  file: string | null,
  log: Logger,
  stats?: SimStats,
): TransitionLog {
  const env = scenarioEnvironment(sc, captureLoader(file));
  if (!env.ok)
    throw CliError.fromInput({
      ...env.error,
      file: env.error.file ?? file ?? '(built-in scenario)',
    });
  const t0 = performance.now();
  const bar = createProgress('simulating');
  const out = simulate(sc, env.value, {
    progress: (f) => bar.update(f),
    ...(stats !== undefined ? { stats } : {}),
  });
  bar.done();
  if (!out.ok) throw CliError.fromInput({ ...out.error, file: file ?? '(built-in scenario)' });
  log.debug({ ms: Math.round(performance.now() - t0) }, 'simulated');
  return out.value;
}

// A kernel timeline is read to the millisecond: three decimals always, not text.ts's seconds().
const sec = (x: number): string => `${x.toFixed(3)} s`;

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
      `COMPLETES${t.forced ? ' (FORCED)' : ''}: at ${sec(last.completedAt!)} of simulated time, ${sec(last.completedAt! - last.startedAt)} after it started, at attempt ${last.completingAttempt}${last.signalRounds.length > 0 ? `, after ${count(last.signalRounds.length, 'signal round')}` : ''}`,
    );
  } else {
    const forceOnly = t.pendingAtEnd.some((p) => p.needsForce);
    out.push(
      `${forceOnly ? 'NEVER COMPLETES WITHOUT FORCE' : 'NOT COMPLETED'}: ${count(t.pendingAtEnd.length, 'task')} still pending at the ${t.timeLimit} s limit, after ${count(t.attempts, 'attempt')}`,
    );
    // Tasks held for the same reason with the same way out share a line.
    const groups = new Map<string, typeof t.pendingAtEnd>();
    for (const p of t.pendingAtEnd) {
      const key = `${p.reason}; ends with ${p.remedy}`;
      groups.set(key, [...(groups.get(key) ?? []), p]);
    }
    for (const [why, ps] of [...groups].slice(0, 8)) {
      const who = ps.slice(0, 4).map((p) => `${p.comm}:${p.pid}`);
      if (ps.length > 4) who.push(`${ps.length - 4} more`);
      out.push(`  ${who.join(', ')}: ${why}`);
    }
    if (groups.size > 8)
      out.push(`  ... and ${groups.size - 8} more reasons (--json lists every task)`);
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
    `scenario: ${t.scenario} (kernel ${t.kernel}: scheduler hook ${t.schedHook}; policy ${t.policy}; seed ${t.seed}; ${count(t.tasks.length, 'task')})`,
  );
  out.push(
    `${count(t.attempts, 'attempt')}; ${count(t.signalsSent, 'signal')} to ${count(t.tasksSignalled, 'task')}${t.forced ? '; forced' : ''}`,
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
            `${b.reason}${b.function !== null ? ` ${b.function}` : ''} (${count(b.count, 'attempt')})`,
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
      .map(
        ([k, n]) =>
          `${count(n, 'task')} ${k === -1 ? 'idle (-1)' : k === 0 ? 'unpatched (0)' : 'patched (1)'}`,
      )
      .join(', ')} (--json lists every task)`,
  );
  return out.join('\n');
}

/** `klpsim transition`: returns the exit code. */
export async function runTransition(argv: string[], ctx: CommandContext): Promise<number> {
  const { flags: values, positionals } = parseCommand(TRANSITION_COMMAND, argv);
  const { log, print } = ctx;
  const file = positionals[0] ?? null;
  if (values.html !== undefined) checkOutputPath(values.html, '--html');
  let sc = loadScenario(file);
  if (values.policy !== undefined) sc = { ...sc, policy: values.policy };
  if (values.kernel !== undefined) sc = { ...sc, kernel: values.kernel };
  if (values.seed !== undefined) sc = { ...sc, seed: values.seed };
  const runs = values.runs ?? null;
  if (runs !== null && sc.seed + runs - 1 > 0xffffffff)
    throw new UsageError(
      'transition',
      `--runs ${runs}: seeds ${sc.seed} to ${sc.seed + runs - 1} go past 4294967295 (lower --seed or --runs)`,
    );
  const workers = values.workers ?? defaultWorkers();
  if (values.debug === true) sc = { ...sc, debug: true };
  if (runs !== null) {
    // Validate the environment here, where an error can name the file, before any worker starts.
    const env = scenarioEnvironment(sc, captureLoader(file));
    if (!env.ok)
      throw CliError.fromInput({
        ...env.error,
        file: env.error.file ?? file ?? '(built-in scenario)',
      });
    const bar = createProgress(`${runs} runs`);
    const summary = await runMany(sc, file, runs, workers, (done, total) =>
      bar.update(done / total),
    );
    bar.done();
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
  const at = values['sysfs-at'] ?? null;
  if (at !== null && at > sc.timeLimit)
    throw new UsageError(
      'transition',
      `--sysfs-at ${at}: after the scenario's time limit (${sc.timeLimit} s)`,
    );
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
      `klpsim: ${count(t.violations.length, 'consistency violation')}: a task switched while running another version of a patched function\n`,
    );
    return 3;
  }
  // kpatch giving up is a failed load even though the reversal completed.
  return t.completed && t.kpatch?.gaveUp !== true ? 0 : 1;
}
