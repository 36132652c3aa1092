import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type ScenarioInput,
  scenarioEnvironment,
  scenarioSchema,
  simulate,
  type TransitionLog,
} from '../src/index.js';

/**
 * One example scenario per kernel-version difference (examples/*.scenario.json),
 * each run under the versions whose rules differ. The expectations are the
 * kernel's rules, cited at each test; none is taken from klpsim's output.
 */

function example(name: string): ScenarioInput {
  const url = new URL(`../../../examples/${name}.scenario.json`, import.meta.url);
  return JSON.parse(readFileSync(fileURLToPath(url), 'utf8')) as ScenarioInput;
}

function run(input: ScenarioInput): TransitionLog {
  const sc = scenarioSchema.parse(input);
  const env = scenarioEnvironment(sc, () => {
    throw new Error('built kernels only');
  });
  if (!env.ok) throw new Error(env.error.message);
  const log = simulate(sc, env.value);
  if (!log.ok) throw new Error(log.error.message);
  return log.value;
}

const task = (t: TransitionLog, comm: string) => t.tasks.find((x) => x.comm === comm)!;

describe('a kthread whose thread function is patched (examples/kthread-threadfn.scenario.json)', () => {
  // klp_check_stack finds my_threadfn on every stack the kthread will ever have (kthread() calls
  // threadfn() and it never returns); a kthread has no kernel exit (klp_update_patch_state is never
  // reached); klp_send_signals only wakes it (wake_up_state) and it goes back round its loop.
  it('never completes without force', () => {
    const t = run(example('kthread-threadfn'));
    expect(t.completed).toBe(false);
    expect(t.pendingAtEnd.map((p) => [p.comm, p.function])).toEqual([
      ['my_kthread', 'my_threadfn'],
    ]);
    expect(t.pendingAtEnd[0]!.remedy).toMatch(/^force/);
    expect(t.transitions[0]!.signalRounds.length).toBeGreaterThan(0);
  });

  // force_store -> klp_force_transition switches every task; the delayed work, already scheduled,
  // completes the transition at its next attempt (not at the write), after klp_synchronize_transition.
  it('with force at 30 s, completes then, at the next attempt', () => {
    const sc = example('kthread-threadfn');
    const t = run({
      ...sc,
      actions: [...sc.actions!, { at: 30, do: 'force', patch: 'livepatch_threadfn' }],
    });
    const syncMs = scenarioSchema.parse(sc).machine.syncMs;
    const tr = t.transitions[0]!;
    expect(t.completed).toBe(true);
    expect(task(t, 'my_kthread').via).toBe('force');
    const nextAttempt = t.pending.map(([at]) => at).find((at) => at >= tr.forcedAt!)!;
    expect(tr.completedAt).toBeCloseTo(nextAttempt + syncMs / 1000, 9);
    // Retries come every second (round_jiffies_relative(HZ)): the next one is within a second of the write.
    expect(nextAttempt - tr.forcedAt!).toBeLessThan(1);
  });
});

describe('a CPU-bound kthread calling cond_resched() (examples/cond-resched.scenario.json)', () => {
  // It is always on a CPU: klp_check_and_switch_task says -EBUSY ("is running") at every attempt.
  // 6.4-6.15: cond_resched() -> klp_sched_try_switch() -> __klp_sched_try_switch() checks its own
  // stack (livepatch,sched: "Add livepatch task switching to cond_resched()"), which is clean.
  it('6.4-6.15: switches at its first cond_resched() after the enable', () => {
    const t = run({ ...example('cond-resched'), kernel: '6.12' });
    expect(t.schedHook).toBe('cond-resched');
    expect(task(t, 'cruncher').via).toBe('sched-hook');
    expect(task(t, 'cruncher').switchedAt).toBeLessThan(1.01);
    expect(t.completed).toBe(true);
  });

  // 6.16+: cond_resched() no longer calls it (676e8cf70cb0); 6.1-6.3 had no hook at all.
  for (const kernel of ['7.2', '6.1']) {
    it(`${kernel}: never switches; only force ends the transition`, () => {
      const t = run({ ...example('cond-resched'), kernel });
      expect(t.completed).toBe(false);
      expect(t.pendingAtEnd.map((p) => [p.comm, p.reason])).toEqual([['cruncher', 'running']]);
    });
  }
});

describe('a busy kthread with short freezable sleeps (examples/freezable-sleeper.scenario.json)', () => {
  // 6.16+: __schedule() calls klp_sched_try_switch(prev), which switches a task whose __state has
  // TASK_FREEZABLE ("sched,livepatch: Untangle cond_resched() and live-patching").
  it('6.16+: switches as it goes to sleep, in __schedule()', () => {
    const t = run(example('freezable-sleeper'));
    expect(t.schedHook).toBe('freezable-schedule');
    expect(task(t, 'scanner').via).toBe('sched-hook');
    expect(task(t, 'scanner').switchedAt).toBeLessThanOrEqual(1.901);
  });

  // 6.4-6.15 check only in cond_resched(), which it does not call; 6.1-6.3 have no hook.
  for (const kernel of ['6.12', '6.1']) {
    it(`${kernel}: no scheduler hook switches it`, () => {
      const t = run({ ...example('freezable-sleeper'), kernel });
      expect(task(t, 'scanner').via).not.toBe('sched-hook');
    });
  }
});
