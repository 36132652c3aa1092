import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCapture } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import {
  defaultScenario,
  type ScenarioInput,
  type SimStats,
  scaleScenario,
  scenarioEnvironment,
  scenarioSchema,
  simulate,
} from '../src/index.js';

/**
 * The simulation stops following a task once nothing it does can change the
 * log (`inert` in sim/run.ts). That is an optimisation only if it is
 * invisible: every scenario here is run with and without it, and the two
 * logs must be the same byte for byte, while the skipping run handles fewer
 * events.
 */

const ROOT = new URL('../../../', import.meta.url);
const CAPTURES: Record<string, string> = {
  'bundled:linux-7.2': 'fixtures/captures/linux-7.2-arm64-plain/capture.json',
};

function both(input: ScenarioInput): { skipped: SimStats; full: SimStats } {
  const sc = scenarioSchema.parse(input);
  const env = scenarioEnvironment(sc, (ref) =>
    loadCapture(fileURLToPath(new URL(CAPTURES[ref] ?? ref, ROOT))),
  );
  if (!env.ok) throw new Error(env.error.message);
  const skipped: SimStats = { events: 0, dropped: 0 };
  const full: SimStats = { events: 0, dropped: 0 };
  const a = simulate(sc, env.value, { stats: skipped });
  const b = simulate(sc, env.value, { stats: full, skipInert: false });
  if (!a.ok || !b.ok) throw new Error('simulation failed');
  expect(JSON.stringify(a.value)).toBe(JSON.stringify(b.value));
  expect(full.dropped).toBe(0);
  return { skipped, full };
}

describe('dropping the events of tasks that can no longer matter changes nothing', () => {
  it('the built-in scenario, forced at 60 s: same log, most events dropped', () => {
    const base = scaleScenario(defaultScenario(), 4000);
    const { skipped, full } = both({
      ...base,
      timeLimit: 90,
      actions: [...(base.actions ?? []), { at: 60, do: 'force', patch: 'livepatch_default' }],
    });
    expect(skipped.dropped).toBeGreaterThan(0);
    expect(skipped.events - skipped.dropped).toBeLessThan(full.events / 2);
  });

  it('a disable still to come keeps every task followed until it has happened', () => {
    const base = defaultScenario();
    const { skipped } = both({
      ...base,
      timeLimit: 60,
      actions: [
        ...(base.actions ?? []),
        { at: 20, do: 'disable', patch: 'livepatch_default' },
        { at: 50, do: 'force', patch: 'livepatch_default' },
      ],
    });
    expect(skipped.dropped).toBeGreaterThan(0);
  });

  it('an idle task held by a patched do_idle keeps the tasks of its CPU followed', () => {
    // A busy CPU's idle task is checked in the pass (do_idle on its stack: blocked) and
    // switches when its CPU next idles. The user tasks switch at their first tick, in user
    // space on their CPUs, but their CPUs idle only when they next sleep, ten seconds on:
    // until the idle tasks have switched, their events must still be followed.
    const { skipped } = both({
      name: 'idle tasks behind busy CPUs',
      seed: 3,
      kernel: '7.2',
      timeLimit: 60,
      machine: { cpus: 2, capture: 'bundled:linux-7.2' },
      tasks: [
        {
          comm: 'spinner',
          count: 2,
          behaviour: {
            chains: [{ from: { capturePid: 113 } }],
            sleep: { const: 1 },
            run: { const: 1 },
            user: true,
            userTime: { const: 10_000 },
          },
        },
        {
          comm: 'kthread_worker',
          count: 1,
          kthread: true,
          behaviour: { chains: [{ from: { capturePid: 3 } }], sleep: 'forever' },
        },
      ],
      patches: [{ name: 'p', funcs: [{ oldName: 'do_idle' }, { oldName: 'kthread_worker_fn' }] }],
      actions: [
        { at: 1, do: 'enable', patch: 'p' },
        { at: 40, do: 'force', patch: 'p' },
      ],
    });
    expect(skipped.dropped).toBeGreaterThan(0);
  });

  it('a scenario whose tasks fork as they go', () => {
    const base = defaultScenario();
    both({
      ...base,
      timeLimit: 40,
      tasks: base.tasks.map((g, i) =>
        i % 3 === 0 && g.count >= 10
          ? { ...g, behaviour: { ...g.behaviour, forkEvery: { exp: 5000 } } }
          : g,
      ) as ScenarioInput['tasks'],
      actions: [...(base.actions ?? []), { at: 30, do: 'force', patch: 'livepatch_default' }],
    });
  });

  for (const f of readdirSync(new URL('examples/', ROOT)).filter((x) => x.endsWith('.json'))) {
    it(`examples/${f}`, () => {
      both(JSON.parse(readFileSync(new URL(`examples/${f}`, ROOT), 'utf8')) as ScenarioInput);
    });
  }
});
