import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildMachine, type Machine, syntheticKernelDesc } from '@klpsim/kernel';
import {
  type BatchOptions,
  batchSize,
  buildStackArena,
  type CheckName,
  cReferenceSource,
  HANDED_BACK,
  outcomeHash,
  POLICY_NAMES,
  type Policy,
  type StackArena,
  stackArenaFileParts,
  Walker,
  WalkPool,
  walkBatch,
  walkFlatRange,
} from '@klpsim/unwind';
import { DEFAULT_BENCH_CAPTURE } from '../bundled.js';
import type { CommandContext } from '../context.js';
import { CliError, EXIT_OK } from '../errors.js';
import {
  CHECK_FLAG,
  type CommandDef,
  decimal,
  JSON_FLAG,
  listOf,
  oneOf,
  parseCommand,
  uint,
} from '../flags.js';
import { createProgress } from '../progress.js';
import { choosePolicy, openCapture } from '../select.js';
import { count, seconds as seconds_ } from '../text.js';

// Each synthetic task has a 16 KiB stack (THREAD_SIZE); 100,000 of them is 1.6 GB.
const BENCH_TASKS_MAX = 100_000;
// Chains spread to 1.5 times the mean, frames up to 80 bytes: 100 still fits THREAD_SIZE.
const BENCH_DEPTH_MAX = 100;
// Worker threads for the pool figures: more than 8 measures the scheduler, not the walk.
const BENCH_WORKERS_MAX = 8;
// The flat walk and the C reference alternate this many times per input.
const ROUNDS = 3;

export const BENCH_WALK_COMMAND = {
  name: 'bench walk',
  args: '[capture.json]',
  positionals: [0, 1],
  summary: 'frames per second of the reliable walk, against a C reference',
  description:
    'Frames per second, walks per second and nanoseconds per walk of the reliable walk (the\n' +
    'debug walk for a policy that has no other), repeating every task of a capture (default:\n' +
    'the bundled 6.1 one), then of a synthetic kernel: the flat walk over one stack arena (batch\n' +
    "API), the object walk (Walker.walk), and klpsim's C reference walker on the same inputs,\n" +
    'built with the system C compiler ($CC, else cc; reported missing when there is none), with\n' +
    'the ratio; then the synthetic kernel over worker threads. Figures, never assertions: see\n' +
    'docs/performance.md.',
  flags: {
    policy: {
      type: 'string',
      arg: 'P',
      value: oneOf(POLICY_NAMES),
      help: "default: the capture's own (mainline with meta records, else symcode-v8, the reliable policy that fits 6.1)",
    },
    check: CHECK_FLAG,
    seconds: {
      type: 'string',
      arg: 'S',
      value: decimal(0, 600),
      help: 'how long to repeat each measurement (default 3)',
    },
    tasks: {
      type: 'string',
      arg: 'N',
      value: uint(1, BENCH_TASKS_MAX),
      help: 'tasks of the synthetic kernel (default 10000)',
    },
    depth: {
      type: 'string',
      arg: 'D',
      value: uint(1, BENCH_DEPTH_MAX),
      help: 'mean depth of its chains (default 16)',
    },
    workers: {
      type: 'string',
      arg: 'N,N',
      value: listOf(uint(1, BENCH_WORKERS_MAX), 4),
      help: 'worker-thread counts for the synthetic kernel (default 1,2)',
    },
    text: { type: 'string', arg: 'FILE', help: 'the kernel text dump of the capture' },
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

/** A throughput: entries stored and walks made per second, and the mean cost of a walk. */
export interface Rate {
  /** Passes over every task measured (after warming up). */
  readonly passes: number;
  readonly framesPerSecond: number;
  readonly walksPerSecond: number;
  readonly nsPerWalk: number;
  readonly meanDepth: number;
}

function rate(frames: number, walks: number, elapsed: number, passes: number): Rate {
  return {
    passes,
    framesPerSecond: frames / elapsed,
    walksPerSecond: walks / elapsed,
    nsPerWalk: (elapsed * 1e9) / walks,
    meanDepth: frames / walks,
  };
}

/** CPU seconds this process has used (all its threads; none but this one run while measuring). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Repeats `pass` (which returns the entries of one pass over `walks` tasks)
 * for about `seconds` of CPU time, after warming up. CPU time, as the C
 * reference measures too: on a shared machine, time the scheduler gives
 * other processes is not the walk's.
 */
function measure(
  walks: number,
  seconds: number,
  pass: () => number,
  onProgress: (f: number) => void,
): Rate {
  // Warm up (a tenth of the time, at least 20 passes) so the figure is the optimised code's.
  const warm = cpuSeconds();
  for (let i = 0; i < 20 || i % 64 !== 0 || cpuSeconds() - warm < seconds / 10; i++) pass();
  // Reading the clock is a system call: read it every ~100,000 walks, not every pass.
  const reps = Math.ceil(100_000 / walks);
  let frames = 0;
  let n = 0;
  const t0 = cpuSeconds();
  let elapsed = 0;
  do {
    for (let r = 0; r < reps; r++) frames += pass();
    n += reps * walks;
    elapsed = cpuSeconds() - t0;
    onProgress(elapsed / seconds);
  } while (elapsed < seconds);
  return rate(frames, n, elapsed, n / walks);
}

/** Repeats object-model walks (`Walker.walk`) of every task for about `seconds`. */
export function measureWalks(
  machine: Machine,
  policy: Policy,
  checks: readonly CheckName[],
  seconds: number,
  onProgress: (fraction: number) => void = () => {},
): Rate {
  const walker = new Walker(machine, policy);
  const options = { reliable: policy.hasReliableWalk, checks };
  const tasks = machine.tasks;
  return measure(
    tasks.length,
    seconds,
    () => {
      let frames = 0;
      for (const t of tasks) {
        walker.walk(t, options);
        frames += walker.trace.len;
      }
      return frames;
    },
    onProgress,
  );
}

/** Repeats `walkBatch` over every task of `arena` for about `seconds`. */
function measureBatch(
  arena: StackArena,
  policy: Policy,
  seconds: number,
  onProgress: (fraction: number) => void,
): Rate & { plain: number; hash: number } {
  const walker = new Walker(arena.machine, policy);
  const options: BatchOptions = { reliable: policy.hasReliableWalk };
  const n = arena.ntasks;
  const r = measure(n, seconds, () => walkBatch(walker, arena, options, 0, n), onProgress);
  // The flat outcomes alone, as the C reference reports them.
  const mode = walker.flatModeOf(options.reliable);
  walkFlatRange(arena, mode, walker.trace.size, 0, n, 0, walker.trace);
  let plain = 0;
  for (let i = 0; i < n; i++) if (arena.verdicts[i] !== HANDED_BACK) plain++;
  return { ...r, plain, hash: outcomeHash(arena.verdicts, n) };
}

/** The C reference's figures, or why there are none. */
type CResult = (Rate & { plain: number; hash: number }) | { missing: string };

/** Builds the C reference walker once per run, in a temporary directory; null with the reason if it cannot. */
function buildCReference(dir: string): { exe: string } | { missing: string } {
  const source = cReferenceSource();
  if (!existsSync(source))
    return {
      missing: `its source ${source} is not in this installation (a checkout has it)`,
    };
  const cc = process.env.CC ?? 'cc';
  const exe = join(dir, 'walk-reference');
  const r = spawnSync(cc, ['-O2', '-o', exe, source], { encoding: 'utf8' });
  if (r.error !== undefined) return { missing: `no C compiler (${cc}: ${r.error.message})` };
  if (r.status !== 0)
    return { missing: `${cc} failed on ${source}: ${r.stderr.trim().slice(0, 300)}` };
  return { exe };
}

/** Writes `arena` for the C reference, once per input. */
function writeArenaFile(dir: string, arena: StackArena, mode: number, size: number): string {
  const file = join(dir, 'arena.bin');
  const fd = openSync(file, 'w');
  try {
    for (const part of stackArenaFileParts(arena, mode, size)) writeSync(fd, part);
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Runs the C reference on the arena in `file` for `seconds` of CPU time. */
function runCReference(exe: string, file: string, ntasks: number, seconds: number): CResult {
  const r = spawnSync(exe, [file, String(seconds)], { encoding: 'utf8' });
  const m = /frames=(\d+) walks=(\d+) ns=(\d+) plain=(\d+) hash=([0-9a-f]{8})/.exec(r.stdout ?? '');
  if (r.status !== 0 || m === null)
    return { missing: `the C reference failed: ${(r.stderr ?? '').trim().slice(0, 300)}` };
  return {
    ...rate(Number(m[1]), Number(m[2]), Number(m[3]) / 1e9, Number(m[2]) / ntasks),
    plain: Number(m[4]),
    hash: Number.parseInt(m[5]!, 16),
  };
}

/**
 * The C reference's frames per second on `machine`'s tasks, for `seconds`
 * of CPU time: a yardstick of the machine's speed that other benchmarks
 * print beside their own figures, so that figures from different machines
 * can be compared. The reason when there is no C reference here.
 */
export function cReferenceYardstick(
  machine: Machine,
  policy: Policy,
  seconds: number,
): { framesPerSecond: number } | { missing: string } {
  const dir = mkdtempSync(join(tmpdir(), 'klpsim-yardstick-'));
  try {
    const cc = buildCReference(dir);
    if ('missing' in cc) return cc;
    const arena = buildStackArena(machine);
    const mode = new Walker(machine, policy).flatModeOf(policy.hasReliableWalk);
    const file = writeArenaFile(dir, arena, mode, batchSize({ reliable: policy.hasReliableWalk }));
    const r = runCReference(cc.exe, file, machine.tasks.length, seconds);
    return 'missing' in r ? r : { framesPerSecond: r.framesPerSecond };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Two measurements of the same walks as one. */
function combine<R extends Rate>(a: R | null, b: R, ntasks: number): R {
  if (a === null) return b;
  const walks = (a.passes + b.passes) * ntasks;
  const elapsed = (a.passes * ntasks) / a.walksPerSecond + (b.passes * ntasks) / b.walksPerSecond;
  const frames = a.meanDepth * a.passes * ntasks + b.meanDepth * b.passes * ntasks;
  return { ...b, ...rate(frames, walks, elapsed, a.passes + b.passes) };
}

/** The pool figures: every task of `arena`, split over `n` workers, repeated for about `seconds` of wall-clock time (what more threads buy). */
async function measurePool(
  arena: StackArena,
  policy: Policy,
  n: number,
  seconds: number,
): Promise<Rate & { workers: number }> {
  const pool = await WalkPool.start(arena, n);
  try {
    const walker = new Walker(arena.machine, policy);
    const options: BatchOptions = { reliable: policy.hasReliableWalk };
    // Warm the workers up, then size the passes per message so that messaging costs
    // little: about 50 ms of walking each.
    for (let i = 0; i < 5; i++) await pool.walk(walker, options, 20);
    const t0 = performance.now();
    await pool.walk(walker, options, 20);
    const once = Math.max((performance.now() - t0) / 20, 0.001);
    const passes = Math.max(1, Math.round(50 / once));
    let frames = 0;
    let walks = 0;
    const t1 = performance.now();
    let elapsed = 0;
    do {
      frames += passes * (await pool.walk(walker, options, passes));
      walks += passes * arena.ntasks;
      elapsed = (performance.now() - t1) / 1000;
    } while (elapsed < seconds);
    return { ...rate(frames, walks, elapsed, walks / arena.ntasks), workers: n };
  } finally {
    await pool.close();
  }
}

const mega = (x: number) => `${(x / 1e6).toFixed(1)} M`;

const rssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

interface InputFigures {
  readonly policy: string;
  readonly walk: 'reliable' | 'debug';
  readonly tasks: number;
  readonly flat: (Rate & { plain: number }) | null;
  readonly object: Rate;
  readonly c: CResult | null;
  /** klpsim's flat walks per second over the C reference's (the same walks, so the inverse ratio of their times). */
  readonly ratio: number | null;
  /** Whether the C reference and the flat walk reached the same outcome for every task. */
  readonly sameOutcomes: boolean | null;
}

/** `klpsim bench walk`: returns the exit code. */
export async function runBenchWalk(argv: string[], ctx: CommandContext): Promise<number> {
  // Every flag is checked before the first capture is read or kernel built.
  const { flags, positionals } = parseCommand(BENCH_WALK_COMMAND, argv);
  const seconds = flags.seconds ?? 3;
  const ntasks = flags.tasks ?? 10_000;
  const depth = flags.depth ?? 16;
  const checks = flags.check ?? [];
  const workerCounts = flags.workers ?? [1, 2];
  const file = positionals[0] ?? DEFAULT_BENCH_CAPTURE;

  const { machine } = openCapture(file, flags.text);
  const capPolicy = choosePolicy(
    machine,
    flags.policy ?? (machine.config.ptRegs.meta !== null ? 'mainline' : 'symcode-v8'),
  );

  const dir = mkdtempSync(join(tmpdir(), 'klpsim-bench-'));
  const progress = createProgress('bench walk');
  let cap: InputFigures;
  let syn: InputFigures;
  let pools: (Rate & { workers: number })[] = [];
  let buildSeconds = 0;
  let synMachine: Machine;
  let synPolicy: Policy;
  try {
    // The optional checks run only in the reference step functions: no flat walk, no C.
    const cc = checks.length === 0 ? buildCReference(dir) : null;
    const bench = (m: Machine, policy: Policy, at: number): InputFigures => {
      const step = (f: number) => progress.update((at + Math.min(f, 1)) / 6);
      const object = measureWalks(m, policy, checks, seconds, step);
      if (cc === null)
        return {
          policy: policy.name,
          walk: policy.hasReliableWalk ? 'reliable' : 'debug',
          tasks: m.tasks.length,
          flat: null,
          object,
          c: null,
          ratio: null,
          sameOutcomes: null,
        };
      const arena = buildStackArena(m);
      const mode = new Walker(m, policy).flatModeOf(policy.hasReliableWalk);
      const file =
        'exe' in cc
          ? writeArenaFile(dir, arena, mode, batchSize({ reliable: policy.hasReliableWalk }))
          : null;
      // klpsim and C in alternating slices, so that the machine's other load falls on both alike.
      let flat: ReturnType<typeof measureBatch> | null = null;
      let c: CResult | null = file === null && 'missing' in cc ? cc : null;
      for (let r = 0; r < ROUNDS; r++) {
        const slice = measureBatch(arena, policy, seconds / ROUNDS, (f) =>
          step(1 + (r + f) / ROUNDS),
        );
        flat = combine(flat, slice, m.tasks.length);
        if (file === null || !('exe' in cc) || (c !== null && 'missing' in c)) continue;
        const cr = runCReference(cc.exe, file, m.tasks.length, seconds / ROUNDS);
        c =
          'missing' in cr
            ? cr
            : combine(c as Exclude<CResult, { missing: string }> | null, cr, m.tasks.length);
      }
      if (file !== null) rmSync(file, { force: true });
      step(3);
      if (flat === null || c === null) throw new Error('bench walk: no rounds measured');
      const measured = 'missing' in c ? null : c;
      return {
        policy: policy.name,
        walk: policy.hasReliableWalk ? 'reliable' : 'debug',
        tasks: m.tasks.length,
        flat: { ...flat },
        object,
        c,
        ratio: measured === null ? null : flat.walksPerSecond / measured.walksPerSecond,
        sameOutcomes:
          measured === null ? null : measured.hash === flat.hash && measured.plain === flat.plain,
      };
    };
    cap = bench(machine, capPolicy, 0);
    // Built after the capture is measured: the garbage collector's threads, still sweeping a
    // kernel this size, would be charged to the capture's CPU time.
    const t0 = performance.now();
    const built = buildMachine(syntheticKernelDesc({ tasks: ntasks, meanDepth: depth, seed: 1 }));
    if (!built.ok) throw CliError.fromInput(built.error);
    buildSeconds = (performance.now() - t0) / 1000;
    synMachine = built.value.machine;
    synPolicy = choosePolicy(synMachine, flags.policy);
    syn = bench(synMachine, synPolicy, 3);
    if (checks.length === 0) {
      const arena = buildStackArena(synMachine);
      for (const n of workerCounts) pools.push(await measurePool(arena, synPolicy, n, seconds));
    } else pools = [];
  } finally {
    progress.done();
    rmSync(dir, { recursive: true, force: true });
  }
  ctx.log.debug({ cap, syn, pools }, 'bench done');

  if (flags.json === true) {
    ctx.print(
      JSON.stringify(
        {
          capture: {
            file,
            kernel: machine.config.release,
            checks,
            seconds,
            // Passes of the headline figure: the flat walk's (the object walk's under --check).
            passes: (cap.flat ?? cap.object).passes,
            ...cap,
          },
          synthetic: {
            depth,
            buildSeconds,
            seconds,
            passes: (syn.flat ?? syn.object).passes,
            ...syn,
            workers: pools,
          },
          maxRssMiB: rssMiB(),
        },
        null,
        2,
      ),
    );
    return EXIT_OK;
  }
  ctx.print('single-thread figures per CPU second (this process, and the C reference, alone)');
  ctx.print(`capture ${file}`);
  ctx.print(
    `  kernel ${machine.config.release}, ${count(machine.tasks.length, 'task')}, mean depth ${cap.object.meanDepth.toFixed(1)}, policy ${capPolicy.name}, ${capPolicy.hasReliableWalk ? 'reliable walk' : 'debug walk (the policy has no reliable one)'}, checks: ${checks.join(', ') || 'none'}`,
  );
  printFigures(ctx, cap);
  ctx.print(
    `synthetic kernel: ${count(ntasks, 'task')}, mean depth ${syn.object.meanDepth.toFixed(1)} (built in ${seconds_(buildSeconds)}), policy ${synPolicy.name}`,
  );
  printFigures(ctx, syn);
  for (const p of pools)
    ctx.print(`  flat walk on ${count(p.workers, 'worker thread')} (shared arena): ${line(p)}`);
  ctx.print(`peak memory (max RSS): ${rssMiB()} MiB`);
  return EXIT_OK;
}

const line = (r: Rate) =>
  `${mega(r.framesPerSecond)}frames/s, ${mega(r.walksPerSecond)}walks/s, ${Math.round(r.nsPerWalk)} ns per walk`;

function printFigures(ctx: CommandContext, f: InputFigures): void {
  if (f.flat !== null)
    ctx.print(
      `  klpsim, flat walk (batch):   ${line(f.flat)} (${f.flat.plain} of ${f.tasks} walks plain; the rest by the reference code)`,
    );
  ctx.print(`  klpsim, object walk:         ${line(f.object)}`);
  if (f.c === null) {
    ctx.print(
      '  (--check runs in the reference step functions only: no flat walk, no C reference)',
    );
    return;
  }
  if ('missing' in f.c) {
    ctx.print(`  C reference: missing (${f.c.missing})`);
    return;
  }
  ctx.print(
    `  C reference (cc -O2):        ${line(f.c)}; ${f.sameOutcomes === true ? 'same outcome for every task' : 'OUTCOMES DIFFER from the flat walk'}`,
  );
  ctx.print(`  klpsim flat / C: ${f.ratio!.toFixed(2)} (walks per second over the same walks)`);
}
