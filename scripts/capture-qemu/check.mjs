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

  // 1. Every task's walk equals the kernel's own arch_stack_walk, frame for frame.
  const walk = json(['walk', file, '--policy', 'linux-6.1', '--best-effort', '--compare']);
  let frames = 0;
  for (const t of walk.tasks) {
    frames += t.trace.length;
    if (t.kernel?.traceMatches !== true) {
      const own = t.trace.map((e) => e.symbol).join(' < ');
      const k = (t.kernel?.kernelTrace ?? []).map((e) => e.symbol).join(' < ');
      failures.push(
        `${t.comm}:${t.pid}: walk differs from the kernel's\n  klpsim: ${own}\n  kernel: ${k}`,
      );
    }
  }
  if (walk.tasks.length !== tasks.length) {
    failures.push(`klpsim walked ${walk.tasks.length} tasks of ${tasks.length} captured`);
  }

  // 2. The shapes the workload set up are really in the capture (else the agreement proves less).
  const has = (fn) => tasks.filter((t) => names(t.kernelTraceFull).includes(fn));
  const shapes = {
    do_nanosleep: has('do_nanosleep').length,
    pipe_read: has('pipe_read').length,
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
      frames,
      agreeing: walk.tasks.filter((t) => t.kernel?.traceMatches === true).length,
      shapes,
      predictSleeping: [...sleeping].sort((a, b) => a - b),
    },
  };
}
