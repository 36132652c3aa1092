import type { Addr } from '@klpsim/arm64';
import {
  cloneMachine,
  type InputError,
  loadModule,
  type Machine,
  type Result,
  unloadModule,
} from '@klpsim/kernel';
import {
  type FtraceWorld,
  klpEnabledStore,
  klpEnablePatch,
  klpForceStore,
  klpModuleComing,
  klpModuleGoing,
} from '../core.js';
import { klpFtraceHandler } from '../ftrace.js';
import {
  buildPatch,
  KLP_TRANSITION_IDLE,
  KLP_TRANSITION_PATCHED,
  type KlpFunc,
  type KlpPatch,
} from '../model.js';
import {
  parseKernelVersion,
  type SchedHook,
  SLEEP_STATES,
  schedHook,
  TASK_FREEZABLE,
  wokenByKlpSignal,
} from '../sched.js';
import {
  type CallbackKind,
  KlpCore,
  type KlpObserver,
  klpCopyProcess,
  klpSchedTrySwitch,
  klpTryCompleteTransition,
  klpUpdatePatchState,
  type MessageLevel,
  type SwitchBlock,
  type SwitchVia,
} from '../transition.js';
import { mixedVersionOn } from './checker.js';
import { type ChainTemplate, freezableOf, type SimEnvironment } from './environment.js';
import { StackImages } from './images.js';
import type {
  PendingTask,
  SysfsPatch,
  SysfsSnapshot,
  TaskReport,
  TimelineEntry,
  TransitionLog,
  TransitionRecord,
  Violation,
} from './log.js';
import { EventKind, EventQueue } from './queue.js';
import { TaskReports } from './reports.js';
import type { Behaviour, Duration, Scenario } from './schema.js';
import { BlockKind, LpFlag, Phase, TASK_STREAMS, TaskFlag, TaskTable } from './tasks.js';

/**
 * The discrete-event simulation of a transition: tasks sleep in call chains,
 * wake, run, return to user space and fork as their behaviours say, keeping
 * the base of their stack (a kthread its thread function, a user task its
 * system-call entry) for life, while the engine retries
 * `klp_try_complete_transition` with the kernel's timing (the first attempt
 * synchronous at enable, then `round_jiffies_relative(HZ)`, signals every 15
 * retries) and the scheduler hook of the scenario's kernel version. The
 * caller's Machine is never changed: the simulation runs on a copy. Same
 * scenario and seed, same log, byte for byte.
 */

/** `round_jiffies_relative(HZ)` from `now`: a second later, rounded to a whole second (down if within 250 ms). */
export function retryTime(now: number): number {
  const t = now + 1000;
  const r = t % 1000;
  return r < 250 ? t - r : t - r + 1000;
}

/** kpatch's waits (kpatch load: POST_ENABLE_WAIT, POST_SIGNAL_WAIT), in ms. */
export const KPATCH_ENABLE_WAIT = 15_000;
export const KPATCH_SIGNAL_WAIT = 60_000;

/**
 * Runs a scenario on a copy of the environment's machine. Fails, before
 * anything runs, when the scenario refers to a chain, patch or module that
 * does not exist, or a task group's chains disagree on the task's base:
 * a run never fails half-way. (A patched function the kernel cannot find
 * is not an input error: the enable fails as the kernel's would.)
 */
export function simulate(
  scenario: Scenario,
  env: SimEnvironment,
  options: SimulateOptions = {},
): Result<TransitionLog, InputError> {
  const error = checkReferences(scenario, env);
  return error === null
    ? { ok: true, value: new Simulation(scenario, env, options).run(options.progress) }
    : { ok: false, error };
}

export interface SimulateOptions {
  /** Told now and then how far through its time limit the run is (0 to 1): for a progress bar. */
  readonly progress?: (fraction: number) => void;
  /**
   * Stop following tasks that can no longer change the log (default true).
   * Off, every task is simulated to the end: the log is the same byte for
   * byte (tested), only slower.
   */
  readonly skipInert?: boolean;
  /** Filled in as the run goes: how many events it handled, and how many of those it dropped as inert. */
  readonly stats?: SimStats;
}

export interface SimStats {
  events: number;
  dropped: number;
}

/** How many events between two progress reports: often enough for a bar, rare enough to cost nothing. */
const PROGRESS_EVERY = 1 << 14;

/** The first reference in `sc` to something the environment does not have, or null. */
function checkReferences(sc: Scenario, env: SimEnvironment): InputError | null {
  const bad = (field: string, message: string, expected?: string): InputError => ({
    code: 'KLPSIM_INPUT_INVALID',
    message,
    field,
    ...(expected !== undefined ? { expected } : {}),
  });
  const chainKinds = 'a capturePid of the capture or a builderTask index of machine.kernel';
  for (const [g, group] of sc.tasks.entries()) {
    const b = group.behaviour;
    let first: { ci: number; t: ChainTemplate } | null = null;
    for (const [ci, c] of b.chains.entries()) {
      const t = env.chainOf(c.from);
      if (t === null)
        return bad(
          `tasks[${g}].behaviour.chains[${ci}].from`,
          `no such chain ${JSON.stringify(c.from)}`,
          chainKinds,
        );
      // A task's base is its identity: a kthread never leaves its thread function.
      if (first !== null && t.base !== first.t.base)
        return bad(
          `tasks[${g}].behaviour.chains[${ci}]`,
          `task group "${group.comm}": chains[${first.ci}] runs on ${first.t.base}, chains[${ci}] on ${t.base}; a task keeps its base for life`,
          'chains that share the base (the same thread function, or all system calls)',
        );
      first ??= { ci, t };
    }
    for (const [field, ref] of [
      ['initial.chain', b.initial?.chain],
      ['runChain', b.runChain],
    ] as const) {
      if (ref !== undefined && env.chainOf(ref) === null)
        return bad(
          `tasks[${g}].behaviour.${field}`,
          `no such chain ${JSON.stringify(ref)}`,
          chainKinds,
        );
    }
  }
  const loaded = new Set(env.machine.text.loadedModules().map((m) => m.name));
  const patches = new Set(sc.patches.map((p) => p.name));
  for (const [i, a] of sc.actions.entries()) {
    if (a.do === 'load-module' || a.do === 'unload-module') {
      if (a.module === undefined || !loaded.has(a.module))
        return bad(
          `actions[${i}].module`,
          `no module "${a.module ?? ''}" in the machine`,
          'a module of the machine (one loaded later starts out unloaded)',
        );
    } else if (a.patch === undefined || !patches.has(a.patch)) {
      return bad(
        `actions[${i}].patch`,
        `no patch "${a.patch ?? ''}"`,
        patches.size === 0 ? 'a patch in "patches"' : `one of ${[...patches].join(', ')}`,
      );
    }
  }
  return null;
}

/**
 * Random streams: every task draws from its own, one for its behaviour and
 * one for its forks, so what one task does never shifts another's future
 * (a task the simulation stops following draws nothing, and nobody else
 * notices: see `inert`).
 */
const Stream = { BEHAVIOUR: 0, FORK: 1 } as const;
type Stream = (typeof Stream)[keyof typeof Stream];

/** A 32-bit integer hash (the "lowbias32" finaliser): spreads (seed, task, stream) over the PRNG's state space. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

class Simulation {
  private readonly queue = new EventQueue();
  private readonly machine: Machine;
  private readonly core: KlpCore;
  private readonly world: FtraceWorld;
  private readonly images: StackImages;
  private readonly hook: SchedHook;
  /**
   * Every task by id, what events carry and what the livepatch engine
   * refers to tasks by: CPU n's idle task is id n, then the tasks in
   * creation order (pid FIRST_PID + i is id cpus + i).
   */
  private readonly t: TaskTable;
  private readonly cpus: number;
  /** The patch each name's module holds now (a new one at each insmod). */
  private readonly patches = new Map<string, KlpPatch>();
  private readonly timeline: TimelineEntry[] = [];
  private readonly violations: Violation[] = [];
  private readonly transitions: TransitionRecord[] = [];
  private readonly pending: [number, number][] = [];
  private readonly sysfs: SysfsSnapshot[] = [];
  private readonly templates: ChainTemplate[][];
  private readonly weights: number[][];
  /** Tasks on each CPU right now: an idle task runs only on a CPU with none. */
  private readonly busy: Int32Array;
  /** Modules a scenario loads later start out unloaded. */
  private readonly lateModules = new Map<string, NonNullable<ReturnType<typeof unloadModule>>>();
  private now = 0;
  /** Time the kernel spends waiting inside the current call (grace periods), added to what it prints. */
  private delay = 0;
  private attempts = 0;
  private signalsSent = 0;
  private forced = false;
  private retryPending = false;
  /** Actions still to come that could concern a task already switched (any but force). */
  private concerningActionsLeft: number;
  /** Stop following tasks that can no longer change the log (see `inert`); off only to prove it changes nothing. */
  private readonly skipInert: boolean;
  private readonly stats: SimStats;
  private kpatch: {
    action: number;
    patch: string;
    gaveUp: boolean;
    done: boolean;
  } | null = null;
  private patchCount = 0;

  constructor(
    private readonly scenario: Scenario,
    private readonly env: SimEnvironment,
    options: SimulateOptions,
  ) {
    this.skipInert = options.skipInert ?? true;
    this.stats = options.stats ?? { events: 0, dropped: 0 };
    this.concerningActionsLeft = scenario.actions.filter((a) => a.do !== 'force').length;
    this.machine = cloneMachine(env.machine);
    this.hook = schedHook(parseKernelVersion(env.kernel)!);
    const observer: KlpObserver = {
      debug: scenario.debug,
      message: (text, level) => this.log(level === 'debug' ? 'debug' : 'message', text, level),
      switched: (task, via) => this.onSwitched(task, via),
      blocked: (task, why, detail) => this.onBlocked(task, why, detail),
      callback: (patch, obj, kind) => this.onCallback(patch, obj.name, kind),
      synchronize: (why) => {
        this.delay += why === 'unpatch' ? scenario.machine.unpatchSyncMs : scenario.machine.syncMs;
      },
    };
    this.t = new TaskTable(scenario.machine.cpus);
    this.core = new KlpCore(this.machine, env.policy, this.t, observer, this.hook);
    this.world = {
      notrace: new Set(scenario.machine.notrace),
      ipmodify: new Set(scenario.machine.ipmodify),
    };
    this.images = new StackImages(this.machine);
    this.busy = new Int32Array(scenario.machine.cpus);
    this.cpus = scenario.machine.cpus;
    const offline = new Set(scenario.machine.offlineCpus);
    for (let cpu = 0; cpu < scenario.machine.cpus; cpu++)
      this.core.cpuOnline.push(!offline.has(cpu));
    // checkReferences has made sure every chain exists.
    this.templates = scenario.tasks.map((g) => g.behaviour.chains.map((c) => env.chainOf(c.from)!));
    this.weights = scenario.tasks.map((g) => g.behaviour.chains.map((c) => c.weight));
    this.t.commOf = commNames(scenario, this.cpus, this.t);
  }

  private log(event: string, text: string, level?: MessageLevel): void {
    this.timeline.push({
      t: (this.now + this.delay) / 1000,
      event,
      ...(level !== undefined ? { level } : {}),
      text,
    });
  }

  /** The next number in [0, 1) of a task's stream (mulberry32, its state in the task's row). */
  private rand(id: number, stream: Stream): number {
    const a = (this.t.streamState(id, stream) + 0x6d2b79f5) >>> 0;
    this.t.setStreamState(id, stream, a);
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }

  private draw(d: Duration, id: number, stream: Stream = Stream.BEHAVIOUR): number {
    if (d === 'forever') return Number.POSITIVE_INFINITY;
    if ('const' in d) return d.const;
    if ('exp' in d) return -Math.log(1 - this.rand(id, stream)) * d.exp;
    return d.uniform[0] + this.rand(id, stream) * (d.uniform[1] - d.uniform[0]);
  }

  private behaviour(id: number): Behaviour {
    return this.scenario.tasks[Math.max(0, this.t.group(id))]!.behaviour;
  }

  private pickChain(id: number): ChainTemplate {
    const group = this.t.group(id);
    const w = this.weights[group]!;
    let total = 0;
    for (const x of w) total += x;
    let r = this.rand(id, Stream.BEHAVIOUR) * total;
    for (let i = 0; i < w.length; i++) {
      r -= w[i]!;
      if (r < 0) return this.templates[group]![i]!;
    }
    return this.templates[group]![w.length - 1]!;
  }

  /** `task->__state` of a sleep in `c`: the behaviour's state if it names one, else the captured task's; likewise freezable. */
  private sleepStateIn(b: Behaviour, c: ChainTemplate): number {
    let state = b.state !== undefined ? SLEEP_STATES[b.state] : c.state & ~TASK_FREEZABLE;
    if (state === 0) state = SLEEP_STATES.S;
    return (b.freezable ?? freezableOf(c)) ? state | TASK_FREEZABLE : state;
  }

  /** A new task in the kernel's task list (the next pid), as the simulation's columns and a handle. */
  private newTask(kthread: boolean, cpu: number, group: number, parent: number): number {
    const id = this.register(group, SLEEP_STATES.S, cpu);
    const t = this.t;
    if (parent >= 0) t.setParent(id, parent);
    if (kthread) t.setLp(id, LpFlag.KTHREAD, true);
    return id;
  }

  /** A task's row and random streams. */
  private register(group: number, sleepState: number, cpu: number): number {
    const id = this.t.add(group, sleepState, cpu);
    this.t.setPatchState(id, KLP_TRANSITION_IDLE);
    for (let s = 0; s < TASK_STREAMS; s++)
      this.t.setStreamState(id, s, mix32(this.scenario.seed ^ mix32(id * TASK_STREAMS + s + 1)));
    return id;
  }

  private at(time: number, kind: EventKind, id: number): void {
    this.queue.push(Math.round(time), kind, id, this.t.generation(id));
  }

  /**
   * The chain as this task runs it now: frames above its base that lie in a
   * patched function run the version the ftrace handler gives the task
   * (they are called afresh by this sleep); the base keeps what it had.
   */
  private versioned(id: number, c: ChainTemplate): ChainTemplate {
    const frames = this.patchedFrames(c);
    if (frames.length === 0) return c;
    let pcs: (Addr | undefined)[] | null = null;
    let key = '';
    for (const [i, stack] of frames) {
      const runs = klpFtraceHandler(stack, this.t.patchState(id));
      if (runs === null) continue;
      const pc = c.chain[i]!;
      const old = stack[0]!.oldFunc;
      pcs ??= new Array(c.chain.length).fill(undefined);
      pcs[i] = runs.newFunc + Math.min(pc - old, Math.max(0, runs.newSize - 4));
      key += `${i}:${pcs[i]};`;
    }
    return pcs === null
      ? c
      : this.images.variant(c, pcs, `${c.task.pid}@${c.task.stack.low}|${key}`);
  }

  /** Which frames above a chain's base lie in a patched function (recomputed when a func_stack changes). */
  private patchedFrames(c: ChainTemplate): readonly (readonly [number, KlpFunc[]])[] {
    const hit = this.framesCache.get(c);
    if (hit !== undefined && hit.gen === this.core.funcStacksGen) return hit.frames;
    const frames: [number, KlpFunc[]][] = [];
    for (let i = 0; i < c.above; i++) {
      const pc = c.chain[i]!;
      for (const [old, stack] of this.core.funcStacks) {
        if (pc >= old && pc < old + stack[0]!.oldSize) {
          frames.push([i, stack]);
          break;
        }
      }
    }
    this.framesCache.set(c, { gen: this.core.funcStacksGen, frames });
    return frames;
  }

  private readonly framesCache = new Map<
    ChainTemplate,
    { gen: number; frames: readonly (readonly [number, KlpFunc[]])[] }
  >();

  /** The task goes to sleep in `c` (as it runs it now) for `duration` ms. */
  private sleepIn(id: number, c: ChainTemplate, duration: number, fresh: boolean): void {
    const t = this.t;
    if (t.hasLp(id, LpFlag.RUNNING)) this.offCpu(id);
    const image = fresh ? this.versioned(id, c) : c;
    t.setCurrent(id, image);
    t.setStack(id, image.task);
    t.setChain(id, image.chain);
    if (t.group(id) >= 0) t.setSleepState(id, this.sleepStateIn(this.behaviour(id), c));
    const state = t.sleepState(id);
    t.setPhase(id, Phase.SLEEP);
    t.bumpGeneration(id);
    t.setWakeAt(id, this.now + duration);
    // 6.16+: __schedule() lets a task going to sleep freezable switch itself, its stack checked in place.
    if (this.hook === 'freezable-schedule' && (state & TASK_FREEZABLE) !== 0 && this.hookOn(id))
      klpSchedTrySwitch(this.core, id);
    if (Number.isFinite(duration)) this.at(t.wakeAt(id), EventKind.WAKE, id);
  }

  /**
   * The switch points test TIF_PATCH_PENDING before they call into livepatch,
   * as the kernel's callers do (`exit_to_user_mode_loop` and arm64's
   * `do_notify_resume` on `_TIF_PATCH_PENDING` in the work flags,
   * `do_idle` through `klp_patch_pending()`, the inline `klp_sched_try_switch()`
   * on its static key and the flag): here the test reads the task's row, and
   * the engine is called only when there is work.
   */
  private hookOn(id: number): boolean {
    return this.core.schedHookEnabled && this.t.hasLp(id, LpFlag.PENDING);
  }

  private onCpu(id: number): void {
    const t = this.t;
    t.setLp(id, LpFlag.RUNNING, true);
    this.busy[t.cpu(id) % this.busy.length]!++;
  }

  private offCpu(id: number): void {
    const t = this.t;
    t.setLp(id, LpFlag.RUNNING, false);
    const cpu = t.cpu(id) % this.busy.length;
    // The CPU goes idle: its idle task goes round do_idle, the idle-loop switch point.
    if (--this.busy[cpu]! === 0 && t.hasLp(cpu, LpFlag.PENDING))
      klpUpdatePatchState(this.core, cpu, 'idle-loop');
  }

  /** The task wakes and runs for a while; a CPU-bound one calls cond_resched() as it goes. */
  private runFor(id: number, ms: number): void {
    const t = this.t;
    t.setPhase(id, Phase.RUN);
    t.bumpGeneration(id);
    this.onCpu(id);
    const run = this.behaviour(id).runChain;
    if (run !== undefined) {
      const c = this.versioned(id, this.env.chainOf(run)!);
      t.setStack(id, c.task);
      t.setChain(id, c.chain);
    }
    this.at(this.now + ms, EventKind.FINISH_RUN, id);
    this.scheduleCondResched(id);
  }

  private scheduleCondResched(id: number): void {
    const every = this.behaviour(id).condResched;
    if (every === undefined || this.hook !== 'cond-resched' || !this.core.schedHookEnabled) return;
    if (this.t.phase(id) !== Phase.RUN || !this.t.hasLp(id, LpFlag.PENDING)) return;
    const dt = this.draw(every, id);
    if (Number.isFinite(dt)) this.at(this.now + dt, EventKind.COND_RESCHED, id);
  }

  /** A new system call: the task enters the kernel from user space and sleeps in a chain of its group. */
  private syscall(id: number): void {
    const b = this.behaviour(id);
    this.t.setSleepsLeft(id, b.syscall === 'until-signal' ? Number.POSITIVE_INFINITY : b.syscall);
    this.t.set(id, TaskFlag.INTERRUPTED, false);
    this.sleepIn(id, this.pickChain(id), this.draw(b.sleep, id), true);
  }

  /** Back to user space: the kernel-exit switch point; it runs user code on its CPU until its next system call. */
  private exitToUser(id: number): void {
    const t = this.t;
    if (!t.hasLp(id, LpFlag.RUNNING)) this.onCpu(id);
    t.setPhase(id, Phase.USER);
    t.bumpGeneration(id);
    t.setCurrent(id, null);
    t.setStack(id, null);
    t.setChain(id, null);
    t.set(id, TaskFlag.NOTIFY_SIGNAL | TaskFlag.INTERRUPTED, false);
    if (t.hasLp(id, LpFlag.PENDING)) klpUpdatePatchState(this.core, id, 'kernel-exit');
    this.at(this.now + this.draw(this.behaviour(id).userTime, id), EventKind.SYSCALL, id);
  }

  run(progress?: (fraction: number) => void): TransitionLog {
    const sc = this.scenario;
    const n = sc.machine.cpus + sc.tasks.reduce((k, g) => k + g.count, 0);
    this.t.reserve(n);
    // The idle tasks first: CPU n's is id n.
    for (let cpu = 0; cpu < sc.machine.cpus; cpu++) {
      const id = this.register(-1, 0, cpu);
      this.t.setLp(id, LpFlag.KTHREAD, true);
      this.t.setStack(id, this.env.idleChain?.task ?? null);
      this.t.setChain(id, this.env.idleChain?.chain ?? null);
    }
    for (const [g, group] of sc.tasks.entries()) {
      for (let i = 0; i < group.count; i++) {
        const id = this.newTask(group.kthread, i % sc.machine.cpus, g, -1);
        const b = group.behaviour;
        this.t.setSleepsLeft(
          id,
          b.syscall === 'until-signal' ? Number.POSITIVE_INFINITY : b.syscall,
        );
        if (b.initial !== undefined) {
          this.sleepIn(id, this.env.chainOf(b.initial.chain)!, b.initial.until, false);
        } else {
          // Each task starts part-way through one of its sleeps.
          const full = this.draw(b.sleep, id);
          this.sleepIn(
            id,
            this.pickChain(id),
            Number.isFinite(full) ? full * this.rand(id, Stream.BEHAVIOUR) : full,
            false,
          );
        }
        if (b.forkEvery !== undefined)
          this.at(this.draw(b.forkEvery, id, Stream.FORK), EventKind.FORK, id);
      }
    }
    for (const [i, a] of sc.actions.entries())
      this.queue.push(Math.round(a.at * 1000), EventKind.ACTION, i, 0);
    this.detachLateModules();
    this.snapshot();

    const limit = sc.timeLimit * 1000;
    const q = this.queue;
    let actionsLeft = sc.actions.length;
    const stats = this.stats;
    while (q.peekTime() <= limit && q.pop()) {
      if (++stats.events % PROGRESS_EVERY === 0 && progress !== undefined)
        progress(q.outTime / limit);
      this.now = q.outTime;
      this.delay = 0;
      const kind = q.outKind;
      if (kind === EventKind.ACTION) {
        if (sc.actions[q.outArg]!.do !== 'force') this.concerningActionsLeft--;
        this.doAction(q.outArg);
        actionsLeft--;
      } else if (kind === EventKind.RETRY) this.retry();
      else if (kind === EventKind.KPATCH) this.kpatchWaitOver(q.outArg, q.outGeneration);
      else this.onTaskEvent(kind, q.outArg, q.outGeneration);
      // Once the last transition has completed and no action is left, nothing can change the log.
      if (
        actionsLeft === 0 &&
        this.core.transitionPatch === null &&
        (this.kpatch === null || this.kpatch.done)
      )
        break;
    }
    this.queue.release();
    return this.report();
  }

  private onTaskEvent(kind: EventKind, id: number, generation: number): void {
    const t = this.t;
    if (kind === EventKind.IDLE_LOOP) {
      klpUpdatePatchState(this.core, id, 'idle-loop');
      return;
    }
    if (kind === EventKind.FORK) {
      this.fork(id);
      return;
    }
    if (generation !== t.generation(id)) return;
    if (this.inert(id)) {
      this.stats.dropped++;
      return;
    }
    const b = this.behaviour(id);
    switch (kind) {
      case EventKind.WAKE:
        if (t.phase(id) !== Phase.SLEEP) return;
        t.setSleepsLeft(id, t.sleepsLeft(id) - 1);
        this.runFor(id, this.draw(b.run, id));
        return;
      case EventKind.FINISH_RUN:
        if (!b.user) {
          // A kthread goes round its loop: a new sleep, on its own base.
          this.sleepIn(id, this.pickChain(id), this.draw(b.sleep, id), true);
        } else if (t.has(id, TaskFlag.INTERRUPTED) || t.sleepsLeft(id) <= 0) {
          this.exitToUser(id);
        } else {
          // The system call loops on its sleep (the same frames: nothing is called afresh);
          // with TIF_NOTIFY_SIGNAL set, an interruptible sleep returns at once (signal_pending).
          const c = t.current(id) ?? this.pickChain(id);
          if (t.has(id, TaskFlag.NOTIFY_SIGNAL) && wokenByKlpSignal(this.sleepStateIn(b, c)))
            this.exitToUser(id);
          else this.sleepIn(id, c, this.draw(b.sleep, id), false);
        }
        return;
      case EventKind.SYSCALL:
        this.syscall(id);
        return;
      case EventKind.COND_RESCHED:
        if (t.phase(id) === Phase.RUN && !(this.hookOn(id) && klpSchedTrySwitch(this.core, id)))
          this.scheduleCondResched(id);
        return;
      case EventKind.TICK:
        if (t.phase(id) === Phase.USER && t.hasLp(id, LpFlag.PENDING))
          klpUpdatePatchState(this.core, id, 'kernel-exit');
        return;
    }
  }

  /**
   * Whether nothing this task does from now on can change the log, so its
   * events can be dropped (94 % of a large run's events belong to tasks that
   * have switched). True once, during a transition, the task has switched,
   * the idle task of its CPU has too (a task's time on a CPU matters only to
   * a pending idle task), and nothing to come can make a switched task
   * matter again: no action but force (force only switches pending tasks),
   * no kpatch wait that may disable the patch. Each condition, once true,
   * stays true while the transition lasts; after it, with only force
   * actions left, no task event reaches the log. The task's forks are still
   * followed (its children are in the log). Its random stream is its own, so
   * no other task's draws move. `test/skip.test.ts` runs scenarios with and
   * without skipping and requires the same log, byte for byte.
   */
  private inert(id: number): boolean {
    // From the task's row and its CPU's idle task's: a million dropped events read nothing else.
    const epoch = this.epoch;
    const t = this.t;
    return (
      this.skipInert &&
      t.switchEpoch(id) === epoch &&
      epoch > 0 &&
      id >= this.cpus &&
      this.core.transitionPatch !== null &&
      this.concerningActionsLeft === 0 &&
      (this.kpatch === null || this.kpatch.done) &&
      t.switchEpoch(t.cpu(id) % this.cpus) === epoch
    );
  }

  /**
   * Bumped whenever a transition starts or reverses: a task whose switch is
   * of this epoch is in the target state and not pending, and stays so until
   * the next bump (only a start or a reversal makes tasks pending again).
   */
  private epoch = 0;

  /** A fork: the child starts at ret_from_fork with its parent's patch state, running, not in the parent's sleep. */
  private fork(parent: number): void {
    const t = this.t;
    const child = this.newTask(
      t.hasLp(parent, LpFlag.KTHREAD),
      t.cpu(parent),
      t.group(parent),
      parent,
    );
    klpCopyProcess(this.core, parent, child);
    if (
      t.patchState(child) === this.core.targetState &&
      this.core.targetState !== KLP_TRANSITION_IDLE
    )
      this.onSwitched(child, 'fork');
    t.setSleepsLeft(child, 0);
    t.set(child, TaskFlag.INTERRUPTED, true);
    const b = this.behaviour(parent);
    this.runFor(child, this.draw(b.run, child));
    if (b.forkEvery !== undefined)
      this.at(this.now + this.draw(b.forkEvery, parent, Stream.FORK), EventKind.FORK, parent);
  }

  /**
   * `klp_send_signals` for one task. A user task (`set_notify_signal`):
   * TIF_NOTIFY_SIGNAL is set (once: while it is set, another round does
   * nothing), an interruptible sleep is woken and its system call ends
   * (-EINTR or a restart), a task on a CPU is kicked: in user space it passes
   * the kernel exit at once, in a system call it goes on until its next
   * interruptible sleep or its end. A D, killable or TASK_IDLE sleep is not
   * woken. A kthread (`wake_up_state(TASK_INTERRUPTIBLE)`): an interruptible
   * sleep wakes, and the kthread goes back round its loop to the same wait.
   */
  private signal = (id: number): void => {
    const t = this.t;
    this.signalsSent++;
    t.set(id, TaskFlag.SIGNALLED, true);
    const phase = t.phase(id);
    if (!t.hasLp(id, LpFlag.KTHREAD)) {
      if (t.has(id, TaskFlag.NOTIFY_SIGNAL)) return;
      t.set(id, TaskFlag.NOTIFY_SIGNAL, true);
      if (phase === Phase.SLEEP && wokenByKlpSignal(t.sleepState(id))) {
        t.set(id, TaskFlag.INTERRUPTED, true);
        this.runFor(id, Math.min(this.draw(this.behaviour(id).run, id), 1));
      } else if (phase === Phase.USER) {
        this.exitToUser(id);
      } else if (phase === Phase.RUN && this.behaviour(id).pollsSignals) {
        // The kick's IPI lands in a loop that checks signal_pending(): the call returns now.
        this.exitToUser(id);
      }
      return;
    }
    if (phase !== Phase.SLEEP || !wokenByKlpSignal(t.sleepState(id))) return;
    // Woken, it finds nothing to do and sleeps again where it was, until its own wake-up.
    const c = t.current(id)!;
    const until = t.wakeAt(id);
    this.sleepIn(id, c, Number.isFinite(until) ? Math.max(0, until - this.now) : until, false);
  };

  /**
   * `wake_up_if_idle`: only a CPU running its idle task is kicked; its idle
   * task goes round do_idle right after this pass. On a busy CPU nothing
   * happens: the idle task switches when the CPU next idles (`offCpu`).
   */
  private wakeIdle = (cpu: number): void => {
    if (this.busy[cpu]! === 0) this.at(this.now, EventKind.IDLE_LOOP, cpu);
  };

  private retry(): void {
    this.retryPending = false;
    if (this.core.transitionPatch === null) return;
    this.attempt();
  }

  /** One `klp_try_complete_transition`, and the delayed work if it did not complete. */
  private attempt(): void {
    this.attempts++;
    const tr = this.transitions[this.transitions.length - 1]!;
    tr.attempts++;
    for (let cpu = 0; cpu < this.cpus; cpu++)
      this.t.setLp(cpu, LpFlag.RUNNING, this.busy[cpu]! === 0);
    const before = this.signalsSent;
    const done = klpTryCompleteTransition(this.core, {
      signal: this.signal,
      wakeIdle: this.wakeIdle,
    });
    if (this.signalsSent > before) {
      tr.signalRounds.push(tr.attempts);
      this.log(
        'signals',
        `${this.signalsSent - before} ${plural(this.signalsSent - before, 'task')} signalled after attempt ${tr.attempts}`,
      );
    }
    let left = this.core.pendingTasks().length;
    for (let cpu = 0; cpu < this.cpus; cpu++) if (this.t.pending(cpu)) left++;
    this.pending.push([this.now / 1000, left]);
    if (done) {
      tr.completingAttempt = tr.attempts;
      tr.completedAt = (this.now + this.delay) / 1000;
      this.log(
        'complete',
        `transition complete after ${tr.attempts} ${plural(tr.attempts, 'attempt')}`,
      );
      this.snapshot();
      this.kpatchCompleted();
    } else if (!this.retryPending) {
      this.retryPending = true;
      this.queue.push(retryTime(this.now), EventKind.RETRY, -1, 0);
    }
  }

  /** After a transition starts (or reverses): tasks in user space leave it at the next tick, CPU-bound ones may cond_resched(). */
  private transitionStarted(patch: KlpPatch, target: number, reversed: boolean): void {
    this.epoch++;
    if (reversed) this.transitions[this.transitions.length - 1]!.reversedAt = this.now / 1000;
    else
      this.transitions.push({
        patch: patch.name,
        target,
        startedAt: this.now / 1000,
        reversedAt: null,
        completedAt: null,
        attempts: 0,
        completingAttempt: null,
        forcedAt: null,
        signalRounds: [],
      });
    const tick = 1000 / this.scenario.hz;
    for (let id = this.cpus; id < this.t.size; id++) {
      const phase = this.t.phase(id);
      if (phase === Phase.USER) this.at(this.now + tick, EventKind.TICK, id);
      else if (phase === Phase.RUN) this.scheduleCondResched(id);
    }
  }

  private doAction(i: number): void {
    const a = this.scenario.actions[i]!;
    const label = `${a.do}${a.patch !== undefined ? ` ${a.patch}` : ''}${a.module !== undefined ? ` ${a.module}` : ''}`;
    this.log('action', label);
    let ret = 0;
    switch (a.do) {
      case 'enable':
      case 'kpatch-load':
        ret = this.insmod(a.patch!);
        if (a.do === 'kpatch-load') this.kpatchStart(i, a.patch!, ret);
        break;
      case 'disable':
      case 're-enable': {
        const patch = this.patches.get(a.patch!);
        if (patch === undefined) {
          ret = -2; // no such file: the patch's sysfs directory is gone
          break;
        }
        const reversing = patch === this.core.transitionPatch;
        ret = klpEnabledStore(this.core, patch, a.do === 're-enable');
        if (ret === 0) {
          this.transitionStarted(patch, this.core.targetState, reversing);
          if (!reversing) this.attempt();
        }
        break;
      }
      case 'force': {
        const patch = this.patches.get(a.patch!);
        ret = patch === undefined ? -2 : klpForceStore(this.core, patch);
        if (ret === 0) {
          this.forced = true;
          this.transitions[this.transitions.length - 1]!.forcedAt = this.now / 1000;
        }
        break;
      }
      case 'load-module': {
        const m = this.lateModules.get(a.module!);
        if (m === undefined) break;
        this.lateModules.delete(a.module!);
        loadModule(this.machine, m);
        ret = klpModuleComing(this.core, m.name, this.world);
        if (ret !== 0) unloadModule(this.machine, m.name);
        break;
      }
      case 'unload-module': {
        klpModuleGoing(this.core, a.module!);
        const m = unloadModule(this.machine, a.module!);
        if (m !== null) this.lateModules.set(m.name, m);
        break;
      }
    }
    if (ret !== 0) this.log('action', `${label}: ${ret} (${errnoName(ret)})`);
    this.snapshot();
  }

  /** insmod of a patch module: its text loads, its init enables the patch; a failure unloads it. */
  private insmod(name: string): number {
    const spec = this.scenario.patches.find((p) => p.name === name)!;
    if (this.machine.text.loadedModules().some((m) => m.name === name)) return -17; // EEXIST
    const patch = buildPatch(this.machine, spec, this.patchCount++);
    const loaded = loadModule(this.machine, patch.module);
    if (!loaded.ok) return -12;
    const ret = klpEnablePatch(this.core, patch, this.world);
    if (ret !== 0) {
      unloadModule(this.machine, name);
      return ret;
    }
    this.patches.set(name, patch);
    this.transitionStarted(patch, KLP_TRANSITION_PATCHED, false);
    this.attempt();
    return 0;
  }

  private kpatchStart(action: number, patch: string, ret: number): void {
    this.kpatch = { action, patch, gaveUp: ret !== 0, done: ret !== 0 };
    if (ret !== 0 || this.core.transitionPatch === null) {
      if (this.kpatch !== null) this.kpatch.done = true;
      return;
    }
    this.log(
      'kpatch',
      `waiting (up to ${KPATCH_ENABLE_WAIT / 1000} seconds) for patch transition to complete...`,
    );
    this.queue.push(this.now + KPATCH_ENABLE_WAIT, EventKind.KPATCH, action, 0);
  }

  /**
   * kpatch's 15 s (then 60 s) wait ran out with the transition still going.
   * kpatch signals stalled processes only through the patch's `signal` sysfs
   * file, which kernels no longer have: it says so and leaves the signals to
   * the kernel (`klp_send_signals`). When the second wait runs out it lists
   * the stalled tasks, then disables the patch (a reversal) and gives up.
   */
  private kpatchWaitOver(action: number, stage: number): void {
    const k = this.kpatch;
    if (k === null || k.done || k.action !== action) return;
    const patch = this.patches.get(k.patch);
    if (patch === undefined || patch !== this.core.transitionPatch) return;
    if (stage === 0) {
      this.log('kpatch', 'patch transition has stalled!');
      this.log(
        'kpatch',
        'kpatch: Livepatch process signaling is performed automatically on your system.',
      );
      this.log('kpatch', 'kpatch: Skipping manual process signaling.');
      this.log(
        'kpatch',
        `waiting (up to ${KPATCH_SIGNAL_WAIT / 1000} seconds) for patch transition to complete...`,
      );
      this.queue.push(this.now + KPATCH_SIGNAL_WAIT, EventKind.KPATCH, action, 1);
      return;
    }
    this.log('kpatch', 'Stalled processes:');
    for (const id of this.core.pendingTasks())
      this.log('kpatch', `${this.t.pid(id)} ${this.t.comm(id)}`);
    this.log('kpatch', `module ${k.patch} did not complete its transition, unloading...`);
    this.log('kpatch', `disabling patch module: ${k.patch}`);
    k.gaveUp = true;
    k.done = true;
    if (klpEnabledStore(this.core, patch, false) === 0)
      this.transitionStarted(patch, this.core.targetState, true);
  }

  private kpatchCompleted(): void {
    const k = this.kpatch;
    if (k === null || k.done) return;
    const tr = this.transitions[this.transitions.length - 1]!;
    this.log(
      'kpatch',
      `transition complete (${Math.floor((tr.completedAt ?? 0) - tr.startedAt)} seconds)`,
    );
    k.done = true;
  }

  /** Modules a scenario loads later start out unloaded. */
  private detachLateModules(): void {
    for (const a of this.scenario.actions) {
      if (a.do !== 'load-module' || a.module === undefined || this.lateModules.has(a.module))
        continue;
      const m = unloadModule(this.machine, a.module);
      if (m !== null) this.lateModules.set(a.module, m);
    }
  }

  private onCallback(patch: KlpPatch, obj: string | null, kind: CallbackKind): void {
    // What the selftests' callback demo module prints: "<module>: <callback>: <object>".
    this.log('callback', `${patch.name}: ${kind}_callback: ${obj ?? 'vmlinux'}`);
  }

  private onSwitched(id: number, via: SwitchVia): void {
    const tr = this.transitions.length - 1;
    this.t.recordSwitch(id, this.now, via, tr);
    this.t.setSwitchEpoch(id, this.epoch);
    // Force gives the guarantee up; the idle loop switches inside do_idle by design.
    const chain = this.t.chain(id);
    if (via === 'force' || via === 'idle-loop' || chain === null) return;
    // The guarantee, checked on the task's true chain: it must not run a mix of versions.
    const fn = mixedVersionOn(this.core.funcStacks, chain, this.core.targetState);
    if (fn === null) return;
    const pid = this.t.pid(id);
    const comm = this.t.comm(id);
    this.violations.push({ t: this.now / 1000, pid, comm, function: fn, via });
    this.log(
      'VIOLATION',
      `${comm}:${pid} switched (${via}) while running another version of ${fn}`,
    );
  }

  /** Counts by the interned reason or function string: nothing is allocated after a task's first block. */
  private onBlocked(id: number, why: SwitchBlock, detail: string | null): void {
    if (why === 'running') {
      this.t.countRunning(id);
      return;
    }
    this.t.setLastBlockedChain(id, this.t.chain(id));
    this.t.countBlock(
      id,
      why === 'unreliable' ? BlockKind.UNRELIABLE : BlockKind.SLEEPING,
      detail ?? '',
    );
  }

  /** Records the sysfs view when it differs from the last one. */
  private snapshot(): void {
    const patches: SysfsPatch[] = this.core.patches.map((p, i) => ({
      name: p.name,
      enabled: p.enabled ? 1 : 0,
      transition: p === this.core.transitionPatch ? 1 : 0,
      replace: p.replace ? 1 : 0,
      stack_order: i + 1,
      objects: Object.fromEntries(p.objects.map((o) => [o.name ?? 'vmlinux', o.patched ? 1 : 0])),
    }));
    const last = this.sysfs[this.sysfs.length - 1];
    if (last !== undefined && JSON.stringify(last.patches) === JSON.stringify(patches)) return;
    this.sysfs.push({ t: (this.now + this.delay) / 1000, patches });
  }

  /** Why a task still pending waits, what would end the wait, and whether only force can. */
  private pendingReport(id: number): PendingTask {
    const t = this.t;
    const kthread = t.hasLp(id, LpFlag.KTHREAD);
    const b = this.behaviour(id);
    const sleptOn = t.blocks(id, BlockKind.SLEEPING);
    const fn = sleptOn.length === 0 ? null : sleptOn[sleptOn.length - 1]![0];
    const current = t.current(id);
    const inBase = fn !== null && (current?.names.slice(current.above).includes(fn) ?? false);
    const sleepState = t.sleepState(id);
    const done = (reason: string, remedy: string, needsForce: boolean): PendingTask => ({
      pid: t.pid(id),
      comm: t.comm(id),
      reason,
      function: fn,
      remedy,
      needsForce,
    });
    if (t.running(id) || t.phase(id) === Phase.RUN) {
      if (!kthread) return done('running', 'its next kernel exit', false);
      if (this.hook === 'cond-resched' && b.condResched !== undefined)
        return done('running', 'its next cond_resched() with a clean stack', false);
      const sleeps = Number.isFinite(this.draw0(b.run));
      return sleeps
        ? done('running', 'a stack check while it sleeps', false)
        : done('running', 'force: a kthread that never sleeps is never checked', true);
    }
    if (fn !== null) {
      const reason = `sleeping on function ${fn}`;
      if (inBase)
        return done(
          reason,
          `force (${fn} is its thread function: on every stack it will ever have)`,
          true,
        );
      if (!Number.isFinite(t.wakeAt(id)) && (kthread || !wokenByKlpSignal(sleepState)))
        return done(reason, `force: nothing wakes this ${stateLetter(sleepState)} sleep`, true);
      if (kthread)
        return done(
          reason,
          `its own wake-up taking it out of ${fn}, or force (a signal round only wakes it to sleep there again)`,
          false,
        );
      return wokenByKlpSignal(sleepState)
        ? done(reason, 'the next signal round (every 15 attempts) ends its system call', false)
        : done(
            reason,
            `its system call finishing, or force (a ${stateLetter(sleepState)} sleep: the fake signal does not wake it)`,
            false,
          );
    }
    if (t.hasBlocks(id, BlockKind.UNRELIABLE))
      return done(
        `unreliable stack (${t
          .blocks(id, BlockKind.UNRELIABLE)
          .map(([code]) => code)
          .join(', ')})`,
        'a stack the reliable walk accepts (another moment, or another policy), or force',
        false,
      );
    return this.env.policy.hasReliableWalk
      ? done('not yet checked', 'the next attempt', false)
      : done(
          'no reliable stack trace on this kernel',
          kthread ? 'force' : 'its next kernel exit',
          kthread,
        );
  }

  /** The mean of a duration, without drawing from the run's random stream ('forever' is Infinity). */
  private draw0(d: Duration): number {
    if (d === 'forever') return Number.POSITIVE_INFINITY;
    if ('const' in d) return d.const;
    if ('exp' in d) return d.exp;
    return (d.uniform[0] + d.uniform[1]) / 2;
  }

  private report(): TransitionLog {
    const t = this.t;
    // Tasks share chains (one stack image per chain): symbolize each chain a check refused once.
    const blockedIn = new Map<readonly Addr[], readonly string[]>();
    for (let id = 0; id < t.size; id++) {
      const chain = t.lastBlockedChain(id);
      if (chain !== null && !blockedIn.has(chain))
        blockedIn.set(
          chain,
          chain.map((a) => this.machine.kallsyms.formatS(a)),
        );
    }
    const reports = new TaskReports(t, this.cpus, blockedIn);
    let tasks: readonly TaskReport[] | null = null;
    const started = this.transitions.length > 0;
    const completed =
      started &&
      this.core.transitionPatch === null &&
      this.transitions.every((x) => x.completedAt !== null);
    const lastDone = this.transitions[this.transitions.length - 1]?.completedAt ?? null;
    const pendingAtEnd: PendingTask[] = [];
    let tasksSignalled = 0;
    for (let i = 0; i < reports.length; i++) {
      const id = reports.idAt(i);
      if (t.has(id, TaskFlag.SIGNALLED)) tasksSignalled++;
      if (this.core.transitionPatch !== null && t.hasLp(id, LpFlag.PENDING))
        pendingAtEnd.push(this.pendingReport(id));
    }
    const k = this.kpatch;
    return {
      scenario: this.scenario.name,
      policy: this.env.policy.name,
      kernel: this.env.kernel,
      schedHook: this.hook,
      seed: this.scenario.seed,
      timeLimit: this.scenario.timeLimit,
      completed,
      completedAt: completed ? lastDone : null,
      attempts: this.attempts,
      signalsSent: this.signalsSent,
      tasksSignalled,
      forced: this.forced,
      violations: this.violations,
      transitions: this.transitions,
      pending: this.pending,
      pendingAtEnd,
      kpatch:
        k === null
          ? null
          : {
              patch: k.patch,
              completedInWindow:
                !k.gaveUp &&
                k.done &&
                this.transitions.some(
                  (x) => x.patch === k.patch && x.completedAt !== null && x.reversedAt === null,
                ),
              gaveUp: k.gaveUp,
            },
      sysfs: this.sysfs,
      // Made when first read (from the columns, which is all the log keeps per task).
      get tasks(): readonly TaskReport[] {
        tasks ??= reports.toArray();
        return tasks;
      },
      timeline: this.timeline,
    };
  }
}

/**
 * How the simulation names its tasks, from columns: CPU n's idle task
 * "swapper/n", the i-th task of a group "comm/i" (just "comm" when the group
 * has one), a forked child its parent's comm and "-child". A million tasks
 * keep no string: the name is made when asked. Holds only the table and the
 * groups' names and sizes (a log can keep it after the simulation is gone).
 */
function commNames(sc: Scenario, cpus: number, t: TaskTable): (id: number) => string {
  const comms = sc.tasks.map((g) => g.comm);
  const counts = sc.tasks.map((g) => g.count);
  // Each group's tasks are created one after the other, after the idle tasks.
  const first: number[] = [];
  let next = cpus;
  for (const n of counts) {
    first.push(next);
    next += n;
  }
  const commOf = (id: number): string => {
    if (id < cpus) return `swapper/${id}`;
    const parent = t.parent(id);
    if (parent >= 0) return `${commOf(parent)}-child`;
    const g = t.group(id);
    return counts[g]! > 1 ? `${comms[g]!}/${id - first[g]!}` : comms[g]!;
  };
  return commOf;
}

export function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

function stateLetter(state: number): string {
  for (const [k, v] of Object.entries(SLEEP_STATES)) if ((state & 0xfff) === v) return k;
  return `0x${state.toString(16)}`;
}

const ERRNO: Record<number, string> = {
  [-2]: 'ENOENT',
  [-12]: 'ENOMEM',
  [-16]: 'EBUSY',
  [-17]: 'EEXIST',
  [-19]: 'ENODEV',
  [-22]: 'EINVAL',
};
function errnoName(ret: number): string {
  return ERRNO[ret] ?? `errno ${-ret}`;
}
