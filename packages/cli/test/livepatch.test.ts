import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
    // The kernel's own reliable traces in the capture say who sleeps on either function.
    const cap = JSON.parse(readFileSync(CAP72, 'utf8')) as {
      tasks: { pid: number; kernelReliable: { trace: { symbol: string }[] } }[];
      skippedTasks: unknown[];
    };
    const holders = cap.tasks
      .filter((t) =>
        t.kernelReliable.trace.some((e) => /^(do_nanosleep|kthread_worker_fn)\+/.test(e.symbol)),
      )
      .map((t) => t.pid)
      .sort((a, b) => a - b);
    expect(doc.policy).toBe('mainline');
    expect(doc.patch.functions).toEqual(['do_nanosleep', 'kthread_worker_fn']);
    expect(doc.tasks).toHaveLength(cap.tasks.length + cap.skippedTasks.length);
    const sleeping = doc.tasks.filter((t) => t.result === 'sleeping');
    expect(sleeping.map((t) => t.pid).sort((a, b) => a - b)).toEqual(holders);
    expect(new Set(sleeping.map((t) => t.function))).toEqual(
      new Set(['do_nanosleep', 'kthread_worker_fn']),
    );
  });

  it('a function the kernel cannot find: the kernel refuses the patch, with its message (exit 1)', async () => {
    const r = await run('predict', CAP72, '--patch', 'no_such_function');
    expect(r.code).toBe(1);
    // klp_find_object_symbol (kernel/livepatch/core.c).
    expect(r.out).toContain("livepatch: symbol 'no_such_function' not found in symbol table");
  });
});

describe('klpsim transition', () => {
  it('runs a scenario file and explains who blocked', async () => {
    const r = await run('transition', EXAMPLE);
    expect(r.code).toBe(0);
    // The busy kthread sleeps in the patched function until 10 s; the retries come every second
    // (round_jiffies_relative(HZ)), so the first after it leaves, at 11 s, completes.
    expect(r.out.split('\n')[0]).toBe(
      'COMPLETES: at 11.010 s of simulated time, 10.010 s after it started, at attempt 11',
    );
    // Every attempt before 11 s found it blocked: asleep there, or waking from there onto a CPU.
    expect(r.out).toMatch(
      /busy:\d+ switched at 11\.000 s via stack-check: sleeping on function busymod_work_func \(\d+ attempts\)/,
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
    expect(Object.keys(doc.tasks[0])).toEqual([
      'pid',
      'comm',
      'kthread',
      'switchedAt',
      'via',
      'switches',
      'blockedIn',
      'blockedBy',
    ]);
  });

  it("the built-in scenario never completes without force: kthread_worker_fn is the kthread workers' thread function", async () => {
    const r = await run('transition', '--json');
    // Not completed: exit code 1.
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out) as {
      completed: boolean;
      violations: unknown[];
      pendingAtEnd: { comm: string; function: string | null; remedy: string }[];
    };
    expect(doc.completed).toBe(false);
    expect(doc.violations).toEqual([]);
    // kthread() calls the thread function, which never returns: klp_check_stack finds it on every stack.
    expect(doc.pendingAtEnd.map((p) => p.function)).toEqual(Array(4).fill('kthread_worker_fn'));
    expect(doc.pendingAtEnd.every((p) => p.remedy.startsWith('force'))).toBe(true);
  });

  it('--runs: the same bytes for 1 and 2 workers; the distribution comes from the scenario', async () => {
    const runs = (workers: string) =>
      run('transition', EXAMPLE, '--runs', '6', '--seed', '5', '--workers', workers, '--json');
    const one = await runs('1');
    const two = await runs('2');
    expect(one.code).toBe(0);
    expect(one.out).toBe(two.out);
    const doc = JSON.parse(one.out) as {
      runs: number;
      seeds: number[];
      completionProbability: number;
    };
    expect(doc).toMatchObject({ runs: 6, seeds: [5, 10], completionProbability: 1 });
  });

  it('--runs, --seed, --workers and --kernel are validated before any work, naming the flag', async () => {
    for (const [args, msg] of [
      [['--runs', '0'], '--runs "0": expected an integer from 1 to 1000000'],
      [['--runs', '1e3'], '--runs "1e3": expected an integer'],
      [['--seed', '4294967296'], '--seed "4294967296": expected an integer from 0 to 4294967295'],
      [
        ['--runs', '5', '--seed', '4294967295'],
        '--runs 5: seeds 4294967295 to 4294967299 go past 4294967295',
      ],
      [['--workers', '0'], '--workers "0": expected an integer from 1 to 64'],
      [['--kernel', '5.4'], '--kernel "5.4": expected a kernel version from 6.1 on'],
      [['--sysfs-at', 'soon'], '--sysfs-at "soon": expected a time in seconds'],
    ] as const) {
      const r = await run('transition', EXAMPLE, ...args);
      expect(r.code).toBe(2);
      expect(r.err).toContain(msg);
    }
  });

  it('kpatch load gives up after its 15 + 60 s window, disables the patch and lists the stalled task (exit 1)', async () => {
    const KPATCH = fileURLToPath(
      new URL('../../../examples/kpatch-stalled.scenario.json', import.meta.url),
    );
    const r = await run('transition', KPATCH);
    expect(r.code).toBe(1);
    // Enabled at 1 s: the stall is declared at 1 + 15 s, the give-up at 1 + 15 + 60 s.
    // kpatch (kpatch/kpatch: wait_for_patch_transition, signal_stalled_processes): no `signal` sysfs file
    // on current kernels, so it leaves the signals to the kernel; on giving up it lists the stalled
    // tasks, then disables the patch.
    const kp = r.out
      .split('\n')
      .filter((l) => l.includes('[kpatch]'))
      .map((l) => l.trim());
    expect(kp).toEqual([
      '1.000 s  [kpatch] waiting (up to 15 seconds) for patch transition to complete...',
      '16.000 s  [kpatch] patch transition has stalled!',
      '16.000 s  [kpatch] kpatch: Livepatch process signaling is performed automatically on your system.',
      '16.000 s  [kpatch] kpatch: Skipping manual process signaling.',
      '16.000 s  [kpatch] waiting (up to 60 seconds) for patch transition to complete...',
      '76.000 s  [kpatch] Stalled processes:',
      expect.stringMatching(/^76\.000 s {2}\[kpatch\] \d+ my_kthread$/),
      '76.000 s  [kpatch] module livepatch_threadfn did not complete its transition, unloading...',
      '76.000 s  [kpatch] disabling patch module: livepatch_threadfn',
    ]);
    expect(r.out.split('\n')[0]).toMatch(
      /^REVERSED: the patching of livepatch_threadfn was reversed at 76\.000 s/,
    );
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
