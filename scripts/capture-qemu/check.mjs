// What the QEMU stage asserts about a capture, with klpsim's CLI (the built
// dist, as a user runs it) on one side and the kernel's own traces, recorded
// by the module in the same moment, on the other. The expected values all
// come from the kernel: never from klpsim's own earlier output.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

function klpsim(args) {
  const r = spawnSync('./klpsim', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  return r;
}

function json(args) {
  const r = klpsim([...args, '--json']);
  if (r.status !== 0 && r.status !== 1) {
    throw new Error(`klpsim ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  }
  return JSON.parse(r.stdout);
}

/** The function names in a kernel trace (`name+0x../0x..` entries). */
const names = (trace) => trace.map((e) => e.symbol.split('+')[0]);

/**
 * Checks one capture; returns {failures: string[], figures: object}.
 * `tracers`: the guest turned the function-graph tracer and kretprobes on,
 * so the capture must hold tasks whose stacks they rewrote.
 */
export function checkCapture(file, { tracers }) {
  const failures = [];
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  const tasks = doc.tasks;

  // 1. Every task's walk equals the kernel's own arch_stack_walk, frame for frame; on a kernel
  //    with a reliable walk (meta frame records, 6.13+), also its stack_trace_save_tsk_reliable:
  //    verdict and entries.
  const meta = doc.kernel.ptRegs.meta !== undefined;
  const policy = meta ? 'mainline' : 'linux-6.1';
  const walks = [{ what: 'arch_stack_walk', args: ['--best-effort'] }];
  if (meta) walks.push({ what: 'stack_trace_save_tsk_reliable', args: [] });
  let frames = 0;
  let agreeing = 0;
  let reliable = null;
  for (const w of walks) {
    const walk = json(['walk', file, '--policy', policy, ...w.args, '--compare']);
    if (walk.tasks.length !== tasks.length) {
      failures.push(
        `${w.what}: klpsim walked ${walk.tasks.length} tasks of ${tasks.length} captured`,
      );
    }
    for (const t of walk.tasks) {
      const agrees = t.kernel?.traceMatches === true && t.kernel?.verdictMatches !== false;
      if (w.args.length > 0) {
        frames += t.trace.length;
        if (agrees) agreeing++;
      }
      if (!agrees) {
        const own = t.trace.map((e) => e.symbol).join(' < ');
        const k = (t.kernel?.kernelTrace ?? []).map((e) => e.symbol).join(' < ');
        failures.push(
          `${t.comm}:${t.pid}: klpsim's ${w.what} differs from the kernel's (verdict ${t.reliable})\n  klpsim: ${own}\n  kernel: ${k}`,
        );
      }
    }
    if (w.args.length === 0) {
      reliable = {
        tasks: walk.tasks.length,
        agreeing: walk.tasks.filter((t) => t.kernel?.traceMatches && t.kernel?.verdictMatches)
          .length,
        unreliable: walk.tasks.filter((t) => t.reliable === false).map((t) => `${t.comm}:${t.pid}`),
      };
    }
  }
  if (meta && tasks.some((t) => t.kernelReliable === undefined)) {
    failures.push('a kernel with meta frame records, yet a task has no kernelReliable');
  }

  // The module took both kernel traces between the same two reads of the switch count: so
  // stack_trace_save_tsk must be arch_stack_walk without the sched and lock text entries
  // (kernel/stacktrace.c's consume_entry_nosched drops in_sched_functions()).
  const within = (name) => {
    const r = doc.kernel.sections[name];
    return r ? [BigInt(r.start), BigInt(r.end)] : null;
  };
  const sched = [within('sched_text'), within('lock_text')].filter((r) => r !== null);
  for (const t of tasks) {
    const kept = t.kernelTraceFull
      .filter((e) => !sched.some(([lo, hi]) => BigInt(e.address) >= lo && BigInt(e.address) < hi))
      .map((e) => e.address);
    if (kept.join() !== t.kernelTrace.map((e) => e.address).join()) {
      failures.push(
        `${t.comm}:${t.pid}: kernelTrace is not kernelTraceFull without sched/lock text`,
      );
    }
  }

  // 2. The shapes the workload set up are really in the capture (else the agreement proves less).
  // Names differ between versions (6.15 renamed the anonymous pipe's pipe_read to anon_pipe_read).
  const has = (...fns) =>
    tasks.filter((t) => names(t.kernelTraceFull).some((n) => fns.includes(n)));
  const shapes = {
    do_nanosleep: has('do_nanosleep').length,
    pipe_read: has('pipe_read', 'anon_pipe_read').length,
    do_sys_poll: has('do_sys_poll').length,
    do_epoll_wait: has('do_epoll_wait').length,
    futex_wait: has('futex_wait').length,
    kernel_wait4: has('kernel_wait4').length,
    handle_userfault: has('handle_userfault').length,
    fgraphTasks: tasks.filter((t) => (t.fgraph?.entries.length ?? 0) > 0).length,
    kretprobeTasks: tasks.filter((t) => (t.kretprobes?.length ?? 0) > 0).length,
  };
  for (const [fn, n] of Object.entries(shapes)) {
    const needed = fn === 'fgraphTasks' || fn === 'kretprobeTasks' ? tracers : true;
    if (needed && n === 0)
      failures.push(`no captured task has ${fn}: the workload's shape is missing`);
  }

  // 3. predict names exactly the tasks the kernel's own traces show inside the patched function.
  const patched = 'do_nanosleep';
  const predict = json(['predict', file, '--patch', patched]);
  const sleeping = new Set(
    predict.tasks
      .filter((t) => t.result === 'sleeping' && t.function === patched)
      .map((t) => t.pid),
  );
  const inKernel = new Set(has(patched).map((t) => t.pid));
  const missed = [...inKernel].filter((p) => !sleeping.has(p));
  const extra = [...sleeping].filter((p) => !inKernel.has(p));
  if (inKernel.size === 0 || missed.length > 0 || extra.length > 0) {
    failures.push(
      `predict --patch ${patched}: sleeping ${[...sleeping].join(',') || 'none'}; the kernel's traces show ${[...inKernel].join(',') || 'none'} in it`,
    );
  }
  return {
    failures,
    figures: {
      release: doc.kernel.release,
      tasks: tasks.length,
      skipped: (doc.skippedTasks ?? []).map((s) => `${s.comm}:${s.pid} (${s.reason})`),
      policy,
      frames,
      agreeing,
      reliable,
      shapes,
      predictSleeping: [...sleeping].sort((a, b) => a - b),
      cpuStacks:
        doc.kernel.perCpuStacks !== undefined
          ? `${doc.kernel.perCpuStacks.length} CPUs' IRQ, overflow and SDEI stacks (per-CPU symbols)`
          : `${doc.kernel.irqStacks?.length ?? 0} CPUs' IRQ stacks (sampled in an IPI)`,
    },
  };
}
