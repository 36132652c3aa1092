import {
  type FrameDesc,
  IDLE_TASK,
  type KernelDesc,
  KTHREAD_TAIL,
  SCHEDULE_TOP,
  SYSCALL_TAIL,
} from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import {
  patchStateAt,
  type ScenarioInput,
  scenarioEnvironment,
  scenarioSchema,
  simulate,
  sysfsAt,
  type TransitionLog,
} from '../src/index.js';

/**
 * The kernel's livepatch selftests (tools/testing/selftests/livepatch),
 * rebuilt as simulations on a built kernel whose tasks are the chains below.
 */

const NANOSLEEP: FrameDesc[] = [
  ...SCHEDULE_TOP,
  { fn: 'do_nanosleep' },
  { fn: 'hrtimer_nanosleep' },
  { fn: '__arm64_sys_clock_nanosleep' },
  ...SYSCALL_TAIL,
];

/** Chains, by index: the builder tasks a behaviour refers to. */
const CHAINS = {
  busy: 0, // a kthread asleep in busymod_work_func (patched)
  idleKthread: 1, // a kthread asleep in worker_thread
  nanosleep: 2, // a user task asleep in do_nanosleep
  pipe: 3, // a user task asleep in pipe_read
  idle: 4, // the idle task
  hiddenNanosleep: 5, // do_nanosleep on the stack, but a corrupted LR hides it
} as const;

const KERNEL: KernelDesc = {
  functions: [{ name: 'mod_worker', section: 'module', module: 'klp_mod' }],
  tasks: [
    {
      frames: [
        ...SCHEDULE_TOP,
        { fn: 'busymod_work_func' },
        { fn: 'process_one_work' },
        { fn: 'worker_thread' },
        ...KTHREAD_TAIL,
      ],
    },
    { frames: [...SCHEDULE_TOP, { fn: 'worker_thread' }, ...KTHREAD_TAIL] },
    { frames: NANOSLEEP },
    {
      frames: [
        ...SCHEDULE_TOP,
        { fn: 'pipe_read' },
        { fn: 'vfs_read' },
        { fn: 'ksys_read' },
        ...SYSCALL_TAIL,
      ],
    },
    { frames: [...IDLE_TASK] },
    { frames: NANOSLEEP, corrupt: [{ kind: 'lr-not-text', frame: 2 }] },
  ],
};

const chain = (i: number) => ({ from: { builderTask: i } });

/**
 * The busy kthread of test_klp_callbacks_busy: asleep in busymod_work_func
 * (patched) until `until` ms, then asleep in worker_thread for good.
 */
function busyUntil(until: number, state: 'S' | 'D' = 'D') {
  return {
    comm: 'busy',
    count: 1,
    kthread: true,
    behaviour: {
      chains: [chain(CHAINS.idleKthread)],
      sleep: 'forever' as const,
      state,
      initial: { chain: chain(CHAINS.busy).from, until },
    },
  };
}

type RunInput = Omit<ScenarioInput, 'machine'> & { machine?: Partial<ScenarioInput['machine']> };

function environment(input: RunInput) {
  const sc = scenarioSchema.parse({
    ...input,
    // No grace period unless a test asks for one: attempt times stay whole seconds.
    machine: {
      cpus: 2,
      kernel: KERNEL,
      idleChain: chain(CHAINS.idle),
      syncMs: 0,
      unpatchSyncMs: 0,
      ...input.machine,
    },
  });
  const env = scenarioEnvironment(sc, () => {
    throw new Error('no captures here');
  });
  if (!env.ok) throw new Error(env.error.message);
  return { sc, env: env.value };
}

function run(input: RunInput): TransitionLog {
  const { sc, env } = environment(input);
  const log = simulate(sc, env);
  if (!log.ok) throw new Error(log.error.message);
  return log.value;
}

/** A kthread asleep in the patched function that never wakes: only force or reverse end its wait. */
const stuck = {
  comm: 'stuck',
  count: 1,
  kthread: true,
  behaviour: { chains: [chain(CHAINS.busy)], sleep: 'forever' as const, state: 'D' as const },
};

const quiet = [
  {
    comm: 'kworker',
    count: 20,
    kthread: true,
    behaviour: { chains: [chain(CHAINS.idleKthread)], sleep: { exp: 500 } },
  },
  {
    comm: 'reader',
    count: 20,
    behaviour: { chains: [chain(CHAINS.pipe)], sleep: { exp: 2000 }, user: true },
  },
];
const patchOn = (name: string, ...fns: string[]) => ({
  name,
  funcs: fns.map((oldName) => ({ oldName })),
});
/** The kernel log lines (notice, warn, err), as printed. */
const messages = (t: TransitionLog) =>
  t.timeline.filter((e) => e.event === 'message').map((e) => e.text);
const debugLines = (t: TransitionLog) =>
  t.timeline.filter((e) => e.event === 'debug').map((e) => e.text);

describe('livepatch selftests as simulations', () => {
  it('basic: a patch no task sleeps on completes at the second attempt', () => {
    // The first, synchronous attempt finds every online CPU's idle task running
    // (-EBUSY) and wakes it; it switches in the idle loop, and the retry a second
    // later completes, as on a real SMP machine.
    const t = run({
      tasks: quiet,
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    expect(t.completed).toBe(true);
    expect(t.completedAt).toBe(2);
    expect(t.attempts).toBe(2);
    expect(messages(t)).toEqual([
      "livepatch: enabling patch 'p'",
      "livepatch: 'p': starting patching transition",
      "livepatch: 'p': patching complete",
    ]);
    expect(t.violations).toEqual([]);
  });

  it('busy kthread (test_klp_callbacks_busy): the transition waits until it leaves the patched function', () => {
    const busy = busyUntil(10_000);
    const t = run({
      tasks: [...quiet, busy],
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    const task = t.tasks.find((x) => x.comm === 'busy')!;
    // pr_debug stays out of the log unless asked for.
    expect(t.timeline.filter((e) => e.event === 'debug')).toEqual([]);
    expect(task.blockedBy[0]).toMatchObject({
      reason: 'sleeping on function',
      function: 'busymod_work_func',
    });
    expect(t.completedAt).toBe(11);
    expect(task.switchedAt).toBe(11);
    expect(task.via).toBe('stack-check');
  });

  it('signals unblock sleeping user tasks at the 15th retry', () => {
    const sleeper = {
      comm: 'sleeper',
      count: 3,
      behaviour: { chains: [chain(CHAINS.nanosleep)], sleep: 'forever' as const, user: true },
    };
    const t = run({
      tasks: [...quiet, sleeper],
      patches: [patchOn('p', 'do_nanosleep')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    expect(messages(t)).toContain('livepatch: signaling remaining tasks');
    expect(t.timeline.find((e) => e.event === 'signals')?.t).toBe(16);
    expect(t.completedAt).toBe(17);
    for (const s of t.tasks.filter((x) => x.comm.startsWith('sleeper')))
      expect(s.via).toBe('kernel-exit');
  });

  it('force: every task takes the target state; the checker reports no violation for forced switches', () => {
    const t = run({
      tasks: [...quiet, stuck],
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [
        { at: 1, do: 'enable', patch: 'p' },
        { at: 5.5, do: 'force', patch: 'p' },
      ],
    });
    expect(t.forced).toBe(true);
    expect(messages(t)).toContain('livepatch: forcing remaining tasks to the patched state');
    expect(t.completedAt).toBe(6);
    expect(t.tasks.find((x) => x.comm === 'stuck')!.via).toBe('force');
    expect(t.violations).toEqual([]);
  });

  it('reverse: writing enabled=0 mid-transition flips the target and completes the unpatching', () => {
    const t = run({
      tasks: [...quiet, stuck],
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [
        { at: 1, do: 'enable', patch: 'p' },
        { at: 3.5, do: 'disable', patch: 'p' },
      ],
    });
    expect(messages(t)).toEqual([
      "livepatch: enabling patch 'p'",
      "livepatch: 'p': starting patching transition",
      "livepatch: 'p': starting unpatching transition",
      "livepatch: 'p': unpatching complete",
    ]);
    // The idle tasks, pending again after the reversal, switch as their CPUs go idle (do_idle calls
    // klp_update_patch_state); the sleepers switch by stack check at the 4 s retry, which completes.
    expect(t.completedAt).toBe(4);
  });

  it('a module loaded during the transition is patched as it comes', () => {
    const busy = busyUntil(6000, 'S');
    const t = run({
      tasks: [...quiet, busy],
      patches: [
        {
          name: 'p',
          funcs: [{ oldName: 'busymod_work_func' }, { oldName: 'mod_worker', object: 'klp_mod' }],
        },
      ],
      actions: [
        { at: 1, do: 'enable', patch: 'p' },
        { at: 3, do: 'load-module', module: 'klp_mod' },
      ],
    });
    expect(messages(t)).toContain("livepatch: applying patch 'p' to loading module 'klp_mod'");
    expect(t.completed).toBe(true);
    expect(t.completedAt).toBe(7);
  });

  it('a module unloaded during the transition is unpatched as it goes; pr_debug messages on request', () => {
    const busy = busyUntil(3500);
    const t = run({
      debug: true,
      tasks: [...quiet, busy],
      patches: [
        {
          name: 'p',
          funcs: [{ oldName: 'busymod_work_func' }, { oldName: 'mod_worker', object: 'klp_mod' }],
        },
      ],
      actions: [
        { at: 1, do: 'enable', patch: 'p' },
        { at: 2, do: 'unload-module', module: 'klp_mod' },
      ],
    });
    expect(messages(t)).toContain("livepatch: reverting patch 'p' on unloading module 'klp_mod'");
    // pr_debug lines carry the function name (transition.c: "%s: %s:%d is sleeping on function %s").
    expect(debugLines(t)).toContain(
      `livepatch: klp_try_switch_task: busy:${t.tasks.find((x) => x.comm === 'busy')!.pid} is sleeping on function busymod_work_func`,
    );
    expect(t.completedAt).toBe(4);
  });

  it('atomic replace: the replaced patch is unpatched, nops are discarded', () => {
    const t = run({
      tasks: quiet,
      patches: [
        patchOn('a', 'busymod_work_func'),
        { ...patchOn('b', 'do_nanosleep'), replace: true },
      ],
      actions: [
        { at: 1, do: 'enable', patch: 'a' },
        { at: 3, do: 'enable', patch: 'b' },
      ],
    });
    expect(messages(t)).toEqual([
      "livepatch: enabling patch 'a'",
      "livepatch: 'a': starting patching transition",
      "livepatch: 'a': patching complete",
      "livepatch: enabling patch 'b'",
      "livepatch: 'b': starting patching transition",
      "livepatch: 'b': patching complete",
    ]);
    expect(t.completedAt).toBe(4);
  });

  it("fork during a transition: children inherit the parent's state", () => {
    const busy = busyUntil(4000);
    const forker = {
      comm: 'forker',
      count: 2,
      behaviour: {
        chains: [chain(CHAINS.pipe)],
        sleep: { const: 50 },
        user: true,
        userTime: { const: 10 },
        forkEvery: { const: 700 },
      },
    };
    const t = run({
      tasks: [...quiet, busy, forker],
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
      timeLimit: 8,
    });
    expect(t.completed).toBe(true);
    expect(t.tasks.filter((x) => x.via === 'fork').length).toBeGreaterThan(0);
    expect(t.violations).toEqual([]);
  });

  it("offline CPUs' idle tasks switch at once; online ones at the idle loop", () => {
    const t = run({
      machine: { cpus: 4, offlineCpus: [2, 3] },
      tasks: quiet,
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    const idle = t.tasks.filter((x) => x.comm.startsWith('swapper/'));
    // klp_try_complete_transition: "offline idle tasks can be switched immediately".
    expect(idle.map((x) => x.via)).toEqual([
      'idle-loop',
      'idle-loop',
      'offline-cpu',
      'offline-cpu',
    ]);
    // wake_up_if_idle kicks the idle CPUs: their idle tasks go round do_idle right after the pass.
    expect(idle.map((x) => x.switchedAt)).toEqual([1, 1, 1, 1]);
    expect(idle[0]!.blockedBy).toEqual([{ reason: 'running', function: null, count: 1 }]);
    expect(t.completedAt).toBe(2);
  });
});

describe('the consistency checker', () => {
  it('catches mainline switching a task whose corrupted LR hid a patched function; symcode-v8 refuses the stack', () => {
    const hidden = {
      comm: 'hidden',
      count: 1,
      behaviour: {
        chains: [chain(CHAINS.hiddenNanosleep)],
        sleep: 'forever' as const,
        state: 'D' as const,
        user: true,
      },
    };
    const base = {
      tasks: [...quiet, hidden],
      patches: [patchOn('p', 'do_nanosleep')],
      actions: [{ at: 1, do: 'enable' as const, patch: 'p' }],
      timeLimit: 5,
    };
    const ml = run({ ...base, policy: 'mainline' });
    expect(ml.violations).toEqual([
      {
        t: 1,
        pid: ml.tasks.find((x) => x.comm === 'hidden')!.pid,
        comm: 'hidden',
        function: 'do_nanosleep',
        via: 'stack-check',
      },
    ]);
    const v8 = run({ ...base, policy: 'symcode-v8' });
    expect(v8.violations).toEqual([]);
    expect(v8.tasks.find((x) => x.comm === 'hidden')!.blockedBy[0]).toMatchObject({
      reason: 'unreliable stack',
      function: 'NOT_KERNEL_TEXT',
    });
  });
});

describe('bad scenarios fail before they run', () => {
  it('a missing chain, function, patch or module names its field', () => {
    const env = scenarioEnvironment(
      scenarioSchema.parse({
        machine: { cpus: 2, kernel: KERNEL },
        tasks: quiet,
        actions: [{ at: 1, do: 'enable', patch: 'p' }],
        patches: [patchOn('p', 'do_nanosleep')],
      }),
      () => {
        throw new Error('no captures here');
      },
    );
    if (!env.ok) throw new Error(env.error.message);
    const field = (input: Partial<ScenarioInput>) => {
      const r = simulate(
        scenarioSchema.parse({
          machine: { cpus: 2, kernel: KERNEL },
          tasks: quiet,
          patches: [patchOn('p', 'do_nanosleep')],
          actions: [{ at: 1, do: 'enable', patch: 'p' }],
          ...input,
        }),
        env.value,
      );
      return r.ok ? null : r.error.field;
    };
    expect(
      field({
        tasks: [{ comm: 'x', count: 1, behaviour: { chains: [chain(99)], sleep: 'forever' } }],
      }),
    ).toBe('tasks[0].behaviour.chains[0].from');
    expect(field({ actions: [{ at: 1, do: 'enable', patch: 'nope' }] })).toBe('actions[0].patch');
    expect(field({ actions: [{ at: 1, do: 'load-module', module: 'nope' }] })).toBe(
      'actions[0].module',
    );
    expect(field({})).toBeNull();
  });
});

describe('determinism', () => {
  it('the same scenario and seed give byte-identical JSON', () => {
    const input = {
      seed: 7,
      tasks: [
        ...quiet,
        {
          comm: 'sleeper',
          count: 5,
          behaviour: { chains: [chain(CHAINS.nanosleep)], sleep: { exp: 9000 }, user: true },
        },
      ],
      patches: [patchOn('p', 'do_nanosleep')],
      actions: [{ at: 1, do: 'enable' as const, patch: 'p' }],
    };
    expect(JSON.stringify(run(input))).toBe(JSON.stringify(run(input)));
    expect(JSON.stringify(run(input))).not.toBe(JSON.stringify(run({ ...input, seed: 8 })));
  });
});

/** A kthread on a CPU for good: every stack check finds it running (-EBUSY). */
const onCpuForGood = (comm: string) => ({
  comm,
  count: 1,
  kthread: true,
  behaviour: {
    chains: [chain(CHAINS.idleKthread)],
    sleep: { const: 1 },
    run: 'forever' as const,
  },
});

const task = (t: TransitionLog, comm: string) => t.tasks.find((x) => x.comm === comm)!;

const lines = (t: TransitionLog, from: string) => {
  const all = t.timeline
    .filter((e) => e.event !== 'action' && e.event !== 'signals' && e.event !== 'complete')
    .map((e) => e.text);
  return all.slice(all.indexOf(from));
};

describe('enable failures, in the kernel order and with its messages (kernel/livepatch/core.c, patch.c)', () => {
  it('a notrace target: klp_patch_func finds no ftrace location, the enable fails and is cancelled', () => {
    const t = run({
      debug: true,
      machine: { notrace: ['do_nanosleep'] },
      tasks: quiet,
      patches: [patchOn('p', 'do_nanosleep')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    // __klp_enable_patch: patch_object fails -> "failed to patch object", "failed to enable patch", klp_cancel_transition.
    expect(lines(t, "livepatch: enabling patch 'p'")).toEqual([
      "livepatch: enabling patch 'p'",
      "livepatch: 'p': initializing patching transition",
      "livepatch: failed to find location for function 'do_nanosleep'",
      "livepatch: failed to patch object 'vmlinux'",
      "livepatch: failed to enable patch 'p'",
      "livepatch: 'p': canceling patching transition, going to unpatch",
      "livepatch: 'p': completing unpatching transition",
      "livepatch: 'p': unpatching complete",
    ]);
    expect(t.timeline.filter((e) => e.event === 'action').map((e) => e.text)).toEqual([
      'enable p',
      'enable p: -22 (EINVAL)',
    ]);
    expect(t.completed).toBe(false);
    expect(t.transitions).toEqual([]);
  });

  it('a function another IPMODIFY user holds (a kprobe with a post_handler): register_ftrace_function says -EBUSY', () => {
    const t = run({
      machine: { ipmodify: ['do_nanosleep'] },
      tasks: quiet,
      patches: [patchOn('p', 'do_nanosleep')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    expect(messages(t)).toContain(
      "livepatch: failed to register ftrace handler for function 'do_nanosleep' (-16)",
    );
    expect(t.timeline.some((e) => e.text === 'enable p: -16 (EBUSY)')).toBe(true);
  });

  it('a function that is not there (inlined, or a typo): klp_find_object_symbol, before anything starts', () => {
    const t = run({
      tasks: quiet,
      patches: [patchOn('p', 'inlined_away')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    expect(messages(t)).toEqual(["livepatch: symbol 'inlined_away' not found in symbol table"]);
  });

  it('compatibility is checked before -EBUSY: a patch that drops a state fails with -EINVAL even during another transition', () => {
    const t = run({
      tasks: [...quiet, stuck],
      patches: [
        { ...patchOn('a', 'busymod_work_func'), states: [{ id: 1, version: 2 }] },
        { ...patchOn('b', 'do_nanosleep'), replace: true, states: [{ id: 1, version: 1 }] },
        patchOn('c', 'pipe_read'),
      ],
      actions: [
        { at: 1, do: 'enable', patch: 'a' },
        { at: 2, do: 'enable', patch: 'b' },
        { at: 3, do: 'enable', patch: 'c' },
      ],
      timeLimit: 5,
    });
    const acts = t.timeline.filter((e) => e.event === 'action').map((e) => e.text);
    expect(acts).toContain('enable b: -22 (EINVAL)');
    expect(acts).toContain('enable c: -16 (EBUSY)');
    expect(messages(t)).toContain(
      'livepatch: Livepatch patch (b) is not compatible with the already installed livepatches.',
    );
  });
});

describe('callbacks (tools/testing/selftests/livepatch/test-callbacks.sh)', () => {
  it('a pre-patch callback failure cancels the enable; the post-unpatch callback does not run', () => {
    const t = run({
      debug: true,
      tasks: quiet,
      patches: [
        {
          ...patchOn('demo', 'do_nanosleep'),
          callbacks: {
            vmlinux: { prePatch: -19, postPatch: true, preUnpatch: true, postUnpatch: true },
          },
        },
      ],
      actions: [{ at: 1, do: 'enable', patch: 'demo' }],
    });
    expect(lines(t, "livepatch: enabling patch 'demo'")).toEqual([
      "livepatch: enabling patch 'demo'",
      "livepatch: 'demo': initializing patching transition",
      'demo: pre_patch_callback: vmlinux',
      "livepatch: pre-patch callback failed for object 'vmlinux'",
      "livepatch: failed to enable patch 'demo'",
      "livepatch: 'demo': canceling patching transition, going to unpatch",
      "livepatch: 'demo': completing unpatching transition",
      "livepatch: 'demo': unpatching complete",
    ]);
    expect(t.timeline.some((e) => e.text === 'enable demo: -19 (ENODEV)')).toBe(true);
  });

  it('every callback in order over enable and disable; a module-coming pre-patch failure refuses the module', () => {
    const t = run({
      tasks: quiet,
      patches: [
        {
          name: 'demo',
          funcs: [{ oldName: 'do_nanosleep' }, { oldName: 'mod_worker', object: 'klp_mod' }],
          callbacks: {
            vmlinux: { prePatch: 0, postPatch: true, preUnpatch: true, postUnpatch: true },
            klp_mod: { prePatch: -19 },
          },
        },
      ],
      actions: [
        { at: 1, do: 'enable', patch: 'demo' },
        { at: 5, do: 'load-module', module: 'klp_mod' },
        { at: 6, do: 'disable', patch: 'demo' },
      ],
    });
    const cb = t.timeline
      .filter((e) => e.event === 'callback' || e.text.includes('klp_mod'))
      .map((e) => e.text);
    expect(cb).toEqual([
      'demo: pre_patch_callback: vmlinux',
      'demo: post_patch_callback: vmlinux',
      'load-module klp_mod',
      "livepatch: applying patch 'demo' to loading module 'klp_mod'",
      'demo: pre_patch_callback: klp_mod',
      "livepatch: pre-patch callback failed for object 'klp_mod'",
      "livepatch: patch 'demo' failed for module 'klp_mod', refusing to load module 'klp_mod'",
      'load-module klp_mod: -19 (ENODEV)',
      'demo: pre_unpatch_callback: vmlinux',
      'demo: post_unpatch_callback: vmlinux',
    ]);
  });
});

describe('sysfs writes as enabled_store takes them', () => {
  it('any enabled patch can be disabled, not only the newest (no stack-top rule since atomic replace)', () => {
    const t = run({
      tasks: quiet,
      patches: [patchOn('a', 'do_nanosleep'), patchOn('b', 'busymod_work_func')],
      actions: [
        { at: 1, do: 'enable', patch: 'a' },
        { at: 3, do: 'enable', patch: 'b' },
        { at: 6, do: 'disable', patch: 'a' },
      ],
    });
    expect(messages(t)).toContain("livepatch: 'a': unpatching complete");
    expect(sysfsAt(t, 100).patches.map((p) => [p.name, p.stack_order])).toEqual([['b', 1]]);
  });

  it('echo 1 > enabled during an unpatching reverses it; the sysfs view and patch_state follow', () => {
    const spinner = onCpuForGood('spinner');
    const t = run({
      debug: true,
      tasks: [...quiet, spinner],
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [
        { at: 1, do: 'enable', patch: 'p' },
        { at: 1.5, do: 'force', patch: 'p' },
        { at: 3, do: 'disable', patch: 'p' },
        { at: 4.5, do: 're-enable', patch: 'p' },
      ],
      timeLimit: 10,
    });
    expect(debugLines(t)).toContain(
      "livepatch: 'p': reversing transition from unpatching to patching",
    );
    expect(t.transitions[1]).toMatchObject({ patch: 'p', target: 0, reversedAt: 4.5 });
    expect(sysfsAt(t, 4).patches[0]).toMatchObject({ enabled: 0, transition: 1 });
    expect(sysfsAt(t, 4.6).patches[0]).toMatchObject({ enabled: 1, transition: 1 });
    const pid = t.tasks.find((x) => x.comm === 'spinner')!.pid;
    // Forced to PATCHED (1); klp_init_transition(UNPATCHED) starts everyone in PATCHED and the spinner never
    // switches back; klp_reverse_transition keeps patch_state, which now equals the target. The tasks that had
    // switched back are pending again: the idle tasks switch as their CPUs go idle, the sleepers by stack
    // check at the 5 s attempt, which completes; klp_complete_transition sets every task to -1.
    expect(patchStateAt(t, pid, 1.7)).toBe(1);
    expect(patchStateAt(t, pid, 2.5)).toBe(-1);
    expect(patchStateAt(t, pid, 3.5)).toBe(1);
    expect(patchStateAt(t, pid, 4.6)).toBe(1);
    expect(t.transitions[1]!.completedAt).toBe(5);
    expect(patchStateAt(t, pid, 5)).toBe(-1);
  });
});

describe('tasks behave as kernel tasks do', () => {
  const sleeperIn = (comm: string, state: 'S' | 'D' | 'I' | 'K') => ({
    comm,
    count: 1,
    behaviour: {
      chains: [chain(CHAINS.nanosleep)],
      sleep: 'forever' as const,
      state,
      user: true,
      syscall: 'until-signal' as const,
    },
  });

  // klp_send_signals -> set_notify_signal -> wake_up_state(task, TASK_INTERRUPTIBLE): only an
  // interruptible sleep is woken (try_to_wake_up matches p->__state & state); D, killable
  // (TASK_WAKEKILL | TASK_UNINTERRUPTIBLE) and TASK_IDLE (TASK_UNINTERRUPTIBLE | TASK_NOLOAD) are not.
  it('the fake signal ends only an interruptible sleep', () => {
    const t = run({
      tasks: [
        ...quiet,
        sleeperIn('s', 'S'),
        sleeperIn('d', 'D'),
        sleeperIn('k', 'K'),
        sleeperIn('i', 'I'),
      ],
      patches: [patchOn('p', 'do_nanosleep')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
      timeLimit: 40,
    });
    expect(task(t, 's').via).toBe('kernel-exit');
    expect(task(t, 's').switchedAt).toBeGreaterThan(16);
    for (const c of ['d', 'k', 'i']) expect(task(t, c).switchedAt).toBeNull();
    expect(t.completed).toBe(false);
    expect(t.pendingAtEnd.map((p) => p.comm).sort()).toEqual(['d', 'i', 'k']);
  });

  // A kthread woken by wake_up_state(TASK_INTERRUPTIBLE) finds nothing to do and sleeps again in the
  // same place: an interruptible kthread asleep in the patched function never switches.
  it('a signalled kthread goes back to the same wait', () => {
    const t = run({
      tasks: [...quiet, { ...stuck, behaviour: { ...stuck.behaviour, state: 'S' as const } }],
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
      timeLimit: 40,
    });
    expect(t.transitions[0]!.signalRounds).toEqual([16, 31]);
    expect(task(t, 'stuck').switchedAt).toBeNull();
    expect(task(t, 'stuck').blockedBy).toEqual([
      { reason: 'sleeping on function', function: 'busymod_work_func', count: t.attempts },
    ]);
  });

  // klp_try_switch_task: a task on a CPU is -EBUSY; a user task switches at its next kernel exit
  // (exit_to_user_mode -> klp_update_patch_state), at the latest at the next tick's return to user.
  it('a user task running in user space switches at the next tick', () => {
    const spinner = {
      comm: 'userspin',
      count: 1,
      behaviour: {
        chains: [chain(CHAINS.pipe)],
        sleep: { const: 1 },
        user: true,
        userTime: 'forever' as const,
      },
    };
    const t = run({
      hz: 250,
      tasks: [...quiet, spinner],
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    expect(task(t, 'userspin').via).toBe('kernel-exit');
    // HZ=250: the next tick comes within 4 ms.
    const at = task(t, 'userspin').switchedAt!;
    expect(at).toBeGreaterThan(1);
    expect(at).toBeLessThanOrEqual(1.004);
  });

  // klp_try_complete_transition walks every idle task; only one on a CPU that is idle right now is
  // "running". An idle task on a busy CPU is stack-checked like any sleeping task.
  it('an idle task on a busy CPU is stack-checked, not running', () => {
    const hog = onCpuForGood('hog');
    const t = run({
      machine: { cpus: 1 },
      tasks: [hog],
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
      timeLimit: 3,
    });
    expect(task(t, 'swapper/0').via).toBe('stack-check');
    expect(task(t, 'swapper/0').switchedAt).toBe(1);
  });

  // klp_copy_process: the child takes the parent's patch state; it starts in ret_from_fork, running,
  // and a user child leaves through ret_to_user, where it switches if it is still pending.
  it('a forked child starts at ret_from_fork with its parent state, not asleep in its parent chain', () => {
    const parent = {
      comm: 'parent',
      count: 1,
      behaviour: {
        chains: [chain(CHAINS.nanosleep)],
        sleep: 'forever' as const,
        state: 'D' as const,
        user: true,
        forkEvery: { const: 2500 },
      },
    };
    const t = run({
      tasks: [...quiet, parent],
      patches: [patchOn('p', 'do_nanosleep')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
      timeLimit: 6,
    });
    const children = t.tasks.filter((x) => x.comm === 'parent-child');
    expect(children.length).toBe(2);
    // Never blocked "sleeping on do_nanosleep": they were never asleep in the parent's chain.
    for (const c of children) {
      expect(c.blockedBy.some((b) => b.function === 'do_nanosleep')).toBe(false);
      expect(c.via).toBe('kernel-exit');
    }
  });

  it("a group whose chains disagree on the task's base is refused, naming the group and both bases", () => {
    const { sc, env } = environment({
      tasks: [
        {
          comm: 'confused',
          count: 1,
          kthread: true,
          behaviour: {
            chains: [chain(CHAINS.idleKthread), chain(CHAINS.nanosleep)],
            sleep: 'forever',
          },
        },
      ],
      patches: [patchOn('p', 'do_nanosleep')],
      actions: [{ at: 1, do: 'enable', patch: 'p' }],
    });
    const r = simulate(sc, env);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.field).toBe('tasks[0].behaviour.chains[1]');
    expect(r.error.message).toContain('task group "confused"');
    expect(r.error.message).toContain('worker_thread <- kthread <- ret_from_fork');
    expect(r.error.message).toContain('system call');
  });

  it('a scenario in which nothing can happen is refused by validation', () => {
    const parse = (input: object) =>
      scenarioSchema.safeParse({ machine: { kernel: KERNEL }, tasks: quiet, ...input });
    expect(parse({}).success).toBe(false);
    const late = parse({ timeLimit: 10, actions: [{ at: 20, do: 'enable', patch: 'p' }] });
    expect(late.success).toBe(false);
    if (!late.success) expect(late.error.issues[0]!.path).toEqual(['actions', 0, 'at']);
  });
});

describe('the kernel around the engine', () => {
  // klp_complete_transition: "completing" (pr_debug) before klp_synchronize_transition, "complete"
  // (pr_notice) after; unpatching also waits for ftrace to unregister the handler first.
  it("'completing' and 'complete' are a grace period apart, longer when unpatching", () => {
    const t = run({
      debug: true,
      machine: { syncMs: 12, unpatchSyncMs: 380 },
      tasks: quiet,
      patches: [patchOn('p', 'busymod_work_func')],
      actions: [
        { at: 1, do: 'enable', patch: 'p' },
        { at: 5, do: 'disable', patch: 'p' },
      ],
    });
    const at = (text: string) => t.timeline.find((e) => e.text === `livepatch: ${text}`)!.t;
    expect(at("'p': patching complete") - at("'p': completing patching transition")).toBeCloseTo(
      0.012,
      9,
    );
    expect(
      at("'p': unpatching complete") - at("'p': completing unpatching transition"),
    ).toBeCloseTo(0.38, 9);
  });

  it("a simulation never changes the caller's machine: two runs on one environment give the same answer", () => {
    const input: RunInput = {
      tasks: [...quiet, busyUntil(3000)],
      patches: [
        patchOn('p', 'busymod_work_func'),
        { ...patchOn('m', 'mod_worker'), funcs: [{ oldName: 'mod_worker', object: 'klp_mod' }] },
      ],
      actions: [
        { at: 1, do: 'unload-module', module: 'klp_mod' },
        { at: 2, do: 'enable', patch: 'p' },
      ],
    };
    const { sc, env } = environment(input);
    const before = env.machine.text.loadedModules().map((m) => m.name);
    const a = simulate(sc, env);
    const b = simulate(sc, env);
    expect(env.machine.text.loadedModules().map((m) => m.name)).toEqual(before);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });
});
