import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCapture } from '@klpsim/kernel';
import { POLICIES } from '@klpsim/unwind';
import { describe, expect, it } from 'vitest';
import {
  predictTransition,
  type ScenarioInput,
  scenarioEnvironment,
  scenarioSchema,
  simulate,
  type TransitionLog,
} from '../src/index.js';

/**
 * Checked against real transitions: fixtures/transitions/linux-7.2-livepatch
 * holds what a Linux 7.2.13 arm64 kernel with CONFIG_LIVEPATCH did (its
 * pr_debug lines per attempt, signals, completion) and the captures taken
 * just before two of the enables. Every expected value here is read from
 * that record, never from klpsim.
 */

const DIR = fileURLToPath(
  new URL('../../../fixtures/transitions/linux-7.2-livepatch/', import.meta.url),
);

interface RealAttempt {
  n: number;
  tasks: { pid: number; comm: string; reason: string; function?: string }[];
}
interface RealPhase {
  phase: string;
  patch: string;
  attempts: RealAttempt[];
  completingAttempt: { n: number; afterForce: boolean } | null;
  signalsInferred: { afterAttempt: number }[];
  checkedFunctions: { name: string; start: string; end: string; which: string }[];
}
interface RealRecord {
  phases: RealPhase[];
  patchedFunctions: { patch: string; object: string; name: string; newSize: number }[];
}
const record = JSON.parse(readFileSync(`${DIR}transitions.json`, 'utf8')) as RealRecord;
const phase = (name: string) => record.phases.find((p) => p.phase === name)!;

/** The patch as the real module had it: the functions, their objects and the replacements' sizes. */
function patchSpec(name: string) {
  return {
    name,
    funcs: record.patchedFunctions
      .filter((f) => f.patch === name)
      .map((f) => ({
        oldName: f.name,
        newSize: f.newSize,
        ...(f.object !== 'vmlinux' ? { object: f.object } : {}),
      })),
  };
}

const sleepersOf = (a: RealAttempt): (string | number)[][] =>
  a.tasks
    .filter((t) => t.reason === 'sleeping_on_function')
    .map((t) => [t.pid, t.function ?? ''])
    .sort();

describe('klpsim predict on the captures taken before the real enables', () => {
  for (const [name, file] of [
    ['user', 'capture-user-pre.json'],
    ['kthread', 'capture-kthread-pre.json'],
  ] as const) {
    it(`${name}: exactly the tasks and functions of the kernel's first attempt`, () => {
      const cap = loadCapture(`${DIR}${file}`);
      if (!cap.ok) throw new Error(cap.error.message);
      const p = predictTransition(
        cap.value.machine,
        POLICIES.mainline,
        patchSpec(phase(name).patch),
        false,
      );
      if (!p.ok) throw new Error(p.error.message);
      expect(p.value.enableResult).toBe(0);
      const predicted = p.value.tasks
        .filter((t) => t.result === 'sleeping')
        .map((t) => [t.pid, t.function])
        .sort();
      expect(predicted).toEqual(sleepersOf(phase(name).attempts[0]!));
    });
  }

  it('a capture of a kernel without SDEI loads, with those stacks absent', () => {
    const cap = loadCapture(`${DIR}capture-user-pre.json`);
    if (!cap.ok) throw new Error(cap.error.message);
    expect(cap.value.machine.cpus.every((c) => c.sdeiNormalStack === null)).toBe(true);
  });

  it('under a policy with no reliable stack trace (linux-6.1) every task is unreliable, as klp_try_switch_task would have it', () => {
    const cap = loadCapture(`${DIR}capture-user-pre.json`);
    if (!cap.ok) throw new Error(cap.error.message);
    const p = predictTransition(
      cap.value.machine,
      POLICIES['linux-6.1'],
      patchSpec('lp_user'),
      false,
    );
    if (!p.ok) throw new Error(p.error.message);
    expect(p.value.tasks.length).toBeGreaterThan(0);
    expect(
      p.value.tasks.filter((t) => t.result !== 'running').every((t) => t.result === 'unreliable'),
    ).toBe(true);
  });
});

/**
 * The same workload as a scenario on the real capture: every captured task
 * keeps sleeping where it was captured, except the ones the workload drives:
 * the /proc reader (74) and the ioctl caller (75), whose system calls loop
 * until a signal interrupts them (the read restarts, the ioctl returns
 * -EINTR and the workload does not call it again), and lp_busy (192), which
 * spins for 20 ms and sleeps 10 ms in msleep (D).
 */
function workload(capture: string, driven: (pid: number) => ScenarioInput['tasks'][number] | null) {
  const cap = loadCapture(`${DIR}${capture}`);
  if (!cap.ok) throw new Error(cap.error.message);
  const tasks: ScenarioInput['tasks'] = [];
  for (const t of cap.value.machine.tasks) {
    if (t.comm.startsWith('swapper/')) continue;
    tasks.push(
      driven(t.pid) ?? {
        comm: t.comm,
        count: 1,
        kthread: t.kthread,
        behaviour: {
          chains: [{ from: { capturePid: t.pid } }],
          sleep: 'forever',
          user: !t.kthread,
        },
      },
    );
  }
  return tasks;
}

/** lp_busy as the record's README describes it: spins 20 ms in its module, then msleep(10) in D, forever. */
const lpBusy = {
  comm: 'lp_busy',
  count: 1,
  kthread: true,
  behaviour: {
    chains: [{ from: { capturePid: 192 } }],
    state: 'D' as const,
    sleep: { const: 10 },
    run: { const: 20 },
  },
};

function simulateOn(capture: string, input: Omit<ScenarioInput, 'machine'>): TransitionLog {
  const sc = scenarioSchema.parse({ ...input, machine: { cpus: 2, capture } });
  const env = scenarioEnvironment(sc, (ref) => loadCapture(`${DIR}${ref}`));
  if (!env.ok) throw new Error(env.error.message);
  const log = simulate(sc, env.value);
  if (!log.ok) throw new Error(log.error.message);
  return log.value;
}

/** Attempt n's sleepers, from the pr_debug lines the simulation printed (dynamic debug on, as on the real kernel). */
function simulatedSleepers(
  log: TransitionLog,
  transition: number,
  n: number,
): (string | number)[][] {
  const tr = log.transitions[transition]!;
  const attemptTimes = log.pending.filter(
    ([t]) => t >= tr.startedAt && (tr.completedAt === null || t <= tr.completedAt),
  );
  const at = attemptTimes[n - 1]![0];
  return log.timeline
    .filter((e) => e.event === 'debug' && e.t === at && e.text.includes('is sleeping on function'))
    .map((e) => {
      const m = /: \S+:(\d+) is sleeping on function (\S+)$/.exec(e.text)!;
      return [Number(m[1]), m[2]!];
    })
    .sort();
}

describe('the real transitions, modelled as scenarios on their captures', () => {
  it('user, then unuser: first attempt, the signal round after attempt 16, completion at attempt 17; unpatching blocks on the new function while naming the old', () => {
    const log = simulateOn('capture-user-pre.json', {
      debug: true,
      kernel: '7.2',
      timeLimit: 60,
      tasks: workload('capture-user-pre.json', (pid) =>
        pid === 74
          ? {
              comm: 'workload',
              count: 1,
              behaviour: {
                chains: [{ from: { capturePid: 74 } }],
                sleep: 'forever',
                user: true,
                syscall: 'until-signal',
                userTime: { const: 1 },
              },
            }
          : pid === 75
            ? {
                comm: 'workload',
                count: 1,
                behaviour: {
                  chains: [{ from: { capturePid: 75 } }],
                  sleep: 'forever',
                  user: true,
                  syscall: 'until-signal',
                  userTime: 'forever',
                },
              }
            : pid === 192
              ? lpBusy
              : null,
      ),
      patches: [patchSpec('lp_user')],
      actions: [
        { at: 1, do: 'enable', patch: 'lp_user' },
        { at: 25, do: 'disable', patch: 'lp_user' },
      ],
    });
    const user = phase('user');
    const unuser = phase('unuser');
    const [patching, unpatching] = log.transitions;
    expect(patching!.signalRounds).toEqual(user.signalsInferred.map((s) => s.afterAttempt));
    expect(patching!.completingAttempt).toBe(user.completingAttempt!.n);
    expect(unpatching!.signalRounds).toEqual(unuser.signalsInferred.map((s) => s.afterAttempt));
    expect(unpatching!.completingAttempt).toBe(unuser.completingAttempt!.n);
    // First attempts: the same functions as the kernel's (pids are the simulation's own).
    const fnsOf = (xs: (string | number)[][]) => xs.map((x) => x[1]).sort();
    expect(fnsOf(simulatedSleepers(log, 0, 1))).toEqual(fnsOf(sleepersOf(user.attempts[0]!)));
    expect(fnsOf(simulatedSleepers(log, 1, 1))).toEqual(fnsOf(sleepersOf(unuser.attempts[0]!)));
    // The tasks released by the signal round switched at their kernel exit.
    const released = log.tasks.filter(
      (t) =>
        t.comm === 'workload' &&
        t.switches.some((s) => s.transition === 0 && s.via === 'kernel-exit'),
    );
    expect(released.length).toBe(sleepersOf(user.attempts[0]!).length);
    // Unpatching checks the new function (the real record: "new (to-be-unpatched)"), the message names the old.
    expect(unuser.checkedFunctions[0]!.which).toMatch(/^new/);
    expect(simulatedSleepers(log, 1, 1).map((x) => x[1])).toEqual(
      sleepersOf(unuser.attempts[0]!).map((x) => x[1]),
    );
    expect(log.violations).toEqual([]);
  });

  it('kthread: woken by the signal rounds, the kthreads go back to sleep in the patched functions; only force ends it, at the next attempt', () => {
    const kt = phase('kthread');
    const forcedAfter = kt.attempts.length; // the kernel was forced after its last blocked attempt
    const log = simulateOn('capture-kthread-pre.json', {
      debug: true,
      kernel: '7.2',
      timeLimit: 120,
      tasks: workload('capture-kthread-pre.json', (pid) =>
        pid === 56
          ? {
              comm: 'sm_msleep',
              count: 1,
              kthread: true,
              behaviour: {
                chains: [{ from: { capturePid: 56 } }],
                sleep: { const: 100 },
                run: { const: 0.01 },
              },
            }
          : pid === 192
            ? lpBusy
            : null,
      ),
      patches: [patchSpec('lp_kthread')],
      actions: [
        { at: 1, do: 'enable', patch: 'lp_kthread' },
        // Forced between its attempt 45 and 46, as the real transition was.
        { at: 1 + forcedAfter - 0.5, do: 'force', patch: 'lp_kthread' },
      ],
    });
    const tr = log.transitions[0]!;
    expect(tr.signalRounds).toEqual(kt.signalsInferred.map((s) => s.afterAttempt));
    expect(tr.completingAttempt).toBe(kt.completingAttempt!.n);
    expect(kt.completingAttempt!.afterForce).toBe(true);
    expect(tr.forcedAt).not.toBeNull();
    expect(simulatedSleepers(log, 0, 1).map((x) => x[1])).toEqual(
      sleepersOf(kt.attempts[0]!).map((x) => x[1]),
    );
    // Every blocked attempt, like the kernel's, still finds both kthreads on their functions.
    expect(simulatedSleepers(log, 0, forcedAfter).map((x) => x[1])).toEqual(
      sleepersOf(kt.attempts[forcedAfter - 1]!).map((x) => x[1]),
    );
  });
});
