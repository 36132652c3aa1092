import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from './run.js';

const CAP72 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-7.2-arm64-plain/capture.json', import.meta.url),
);
const EXAMPLE = fileURLToPath(
  new URL('../../../examples/busy-kthread.scenario.json', import.meta.url),
);

describe('klpsim predict', () => {
  it('--json: one entry per task with result, function and reason', async () => {
    const r = await run('predict', CAP72, '--patch', 'do_nanosleep,kthread_worker_fn', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as {
      policy: string;
      patch: { functions: string[] };
      tasks: { pid: number; result: string; function: string | null; reason: unknown }[];
    };
    expect(doc.policy).toBe('mainline');
    expect(doc.patch.functions).toEqual(['do_nanosleep', 'kthread_worker_fn']);
    expect(doc.tasks).toHaveLength(72);
    const sleeping = doc.tasks.filter((t) => t.result === 'sleeping');
    expect(new Set(sleeping.map((t) => t.function))).toEqual(
      new Set(['do_nanosleep', 'kthread_worker_fn']),
    );
    expect(sleeping).toHaveLength(9);
  });

  it('an unknown function is an input error', async () => {
    const r = await run('predict', CAP72, '--patch', 'no_such_function');
    expect(r.code).toBe(2);
    expect(r.err).toContain('no function no_such_function');
  });
});

describe('klpsim transition', () => {
  it('runs a scenario file and explains who blocked', async () => {
    const r = await run('transition', EXAMPLE);
    expect(r.code).toBe(0);
    expect(r.out).toContain('completed at 11 s of simulated time');
    expect(r.out).toMatch(
      /busy:\d+ switched at 11 s via stack-check: sleeping on function busymod_work_func x9; running x1/,
    );
  });

  it('--json has the documented shape and is deterministic', async () => {
    const a = await run('transition', EXAMPLE, '--json', '--seed', '3');
    const b = await run('transition', EXAMPLE, '--json', '--seed', '3');
    expect(a.out).toBe(b.out);
    const doc = JSON.parse(a.out);
    expect(Object.keys(doc)).toEqual(
      expect.arrayContaining([
        'completed',
        'completedAt',
        'attempts',
        'signalsSent',
        'forced',
        'tasks',
        'timeline',
      ]),
    );
    expect(Object.keys(doc.tasks[0])).toEqual(['pid', 'comm', 'switchedAt', 'via', 'blockedBy']);
  });

  it('the built-in scenario completes, held up by the busy kthread workers', async () => {
    const r = await run('transition', '--json');
    const doc = JSON.parse(r.out) as {
      completed: boolean;
      completedAt: number;
      violations: unknown[];
      tasks: { comm: string; switchedAt: number }[];
    };
    expect(doc.completed).toBe(true);
    expect(doc.violations).toEqual([]);
    const last = doc.tasks.reduce((a, t) => (t.switchedAt > a.switchedAt ? t : a));
    expect(last.comm).toMatch(/^kthread_worker/);
    expect(doc.completedAt).toBe(last.switchedAt);
  });

  it('a bad scenario file names the file and the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'klpsim-'));
    const f = join(dir, 's.json');
    writeFileSync(
      f,
      JSON.stringify({
        machine: { cpus: 2 },
        tasks: [{ comm: 'x', count: 1, behaviour: { chains: [], sleep: 'forever' } }],
      }),
    );
    const r = await run('transition', f);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${f}: tasks[0].behaviour.chains`);
  });
});
