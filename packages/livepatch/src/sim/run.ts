import type { Addr } from '@klpsim/arm64';
import { type InputError, type Machine, mulberry32, type Result, type Task } from '@klpsim/kernel';
import type { Policy } from '@klpsim/unwind';
import {
  klpEnabledStore,
  klpEnablePatch,
  klpForceStore,
  klpModuleComing,
  klpModuleGoing,
} from '../core.js';
import {
  findOldFunc,
  KLP_TRANSITION_IDLE,
  type KlpPatch,
  type LpTask,
  resolvePatch,
} from '../model.js';
import {
  checkedRanges,
  KlpCore,
  type KlpObserver,
  klpCopyProcess,
  klpTryCompleteTransition,
  klpUpdatePatchState,
  rangeHit,
  type SwitchBlock,
  type SwitchVia,
} from '../transition.js';
import { EventKind, EventQueue } from './queue.js';
import type { Behaviour, Duration, Scenario } from './schema.js';

/**
 * The discrete-event simulation of a transition: tasks sleep in call chains,
 * wake, run, return to user space and fork as their behaviours say, while
 * the engine retries `klp_try_complete_transition` with the kernel's timing
 * (the first attempt synchronous at enable, then about once a second rounded
 * to whole seconds, signals every 15 retries). Same scenario and seed, same
 * log, byte for byte.
 */

/** A call chain a task can sleep in: the stack image the walker reads and the true pcs. */
export interface ChainTemplate {
  readonly task: Task;
  readonly chain: readonly Addr[];
}

export interface SimEnvironment {
  readonly machine: Machine;
  readonly policy: Policy;
  /** Resolves a behaviour's chain reference. */
  chainOf(ref: Behaviour['chains'][number]['from']): ChainTemplate | null;
  /** The idle tasks' chain, or null (an idle task then always switches at the idle loop). */
  readonly idleChain: ChainTemplate | null;
}

export interface BlockedBy {
  readonly reason: 'running' | 'unreliable stack' | 'sleeping on function';
  readonly function: string | null;
  readonly count: number;
}

export interface TaskReport {
  readonly pid: number;
  readonly comm: string;
  /** Simulated seconds, or null if it never switched. */
  readonly switchedAt: number | null;
  readonly via: SwitchVia | null;
  readonly blockedBy: readonly BlockedBy[];
}

export interface TimelineEntry {
  readonly t: number;
  readonly event: string;
  readonly text: string;
}

export interface Violation {
  readonly t: number;
  readonly pid: number;
  readonly comm: string;
  readonly function: string;
  readonly via: SwitchVia;
}

export interface TransitionLog {
  readonly scenario: string;
  readonly policy: Policy['name'];
  readonly seed: number;
  readonly completed: boolean;
  readonly completedAt: number | null;
  readonly attempts: number;
  readonly signalsSent: number;
  readonly forced: boolean;
  readonly violations: readonly Violation[];
  readonly tasks: readonly TaskReport[];
  readonly timeline: readonly TimelineEntry[];
}

interface SimTask {
  /** Index in `byIndex`: what events carry. */
  readonly id: number;
  /** The task group (the behaviour's index in the scenario). */
  readonly group: number;
  readonly lp: LpTask;
  readonly behaviour: Behaviour;
  generation: number;
  sleeping: boolean;
  switchedAt: number | null;
  via: SwitchVia | null;
  /** Attempts that found it running, and counts by walk reason code and by function. */
  blockedRunning: number;
  unreliable: Map<string, number> | null;
  sleepingOn: Map<string, number> | null;
}

/** `round_jiffies_relative(HZ)` from `now`: a second later, rounded to a whole second (down if within 250 ms). */
export function retryTime(now: number): number {
  const t = now + 1000;
  const r = t % 1000;
  return r < 250 ? t - r : t - r + 1000;
}

/**
 * Runs a scenario; the machine's text and kallsyms gain the patches'
 * modules. Fails, before anything runs, when the scenario refers to a chain,
 * function, patch or module that does not exist: a run never fails half-way.
 */
export function simulate(
  scenario: Scenario,
  env: SimEnvironment,
): Result<TransitionLog, InputError> {
  const error = checkReferences(scenario, env);
  return error === null
    ? { ok: true, value: new Simulation(scenario, env).run() }
    : { ok: false, error };
}

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
    for (const [ci, c] of group.behaviour.chains.entries()) {
      if (env.chainOf(c.from) === null)
        return bad(
          `tasks[${g}].behaviour.chains[${ci}].from`,
          `no such chain ${JSON.stringify(c.from)}`,
          chainKinds,
        );
    }
    const initial = group.behaviour.initial;
    if (initial !== undefined && env.chainOf(initial.chain) === null) {
      return bad(
        `tasks[${g}].behaviour.initial.chain`,
        `no such chain ${JSON.stringify(initial.chain)}`,
        chainKinds,
      );
    }
  }
  const loaded = new Set(env.machine.text.loadedModules().map((m) => m.name));
  for (const [i, p] of sc.patches.entries()) {
    for (const [j, f] of p.funcs.entries()) {
      const inKernel = f.object === undefined || loaded.has(f.object);
      if (inKernel && findOldFunc(env.machine, f.oldName, f.oldSympos ?? 0) === null) {
        return bad(
          `patches[${i}].funcs[${j}].oldName`,
          `no function ${f.oldName} in ${f.object ?? 'vmlinux'}`,
          'a text symbol of the kernel',
        );
      }
    }
  }
  const patches = new Set(sc.patches.map((p) => p.name));
  for (const [i, a] of sc.actions.entries()) {
    if (a.do === 'enable' || a.do === 'disable' || a.do === 'force') {
      if (a.patch === undefined || !patches.has(a.patch))
        return bad(
          `actions[${i}].patch`,
          `no patch "${a.patch ?? ''}"`,
          `one of ${[...patches].join(', ')}`,
        );
    } else if (a.module === undefined || !loaded.has(a.module)) {
      return bad(
        `actions[${i}].module`,
        `no module "${a.module ?? ''}" in the machine`,
        'a module of the machine (one loaded later starts out unloaded)',
      );
    }
  }
  return null;
}

class Simulation {
  private readonly rand: () => number;
  private readonly queue = new EventQueue();
  private readonly core: KlpCore;
  private readonly tasks: SimTask[] = [];
  private readonly idle: SimTask[] = [];
  private readonly patches = new Map<string, KlpPatch>();
  private readonly timeline: TimelineEntry[] = [];
  private readonly violations: Violation[] = [];
  private readonly templates: ChainTemplate[][];
  private readonly weights: number[][];
  private now = 0;
  private attempts = 0;
  private signalsSent = 0;
  private forced = false;
  private retryPending = false;
  private completedAt: number | null = null;
  private nextPid = 1000;

  constructor(
    private readonly scenario: Scenario,
    private readonly env: SimEnvironment,
  ) {
    this.rand = mulberry32(scenario.seed);
    const observer: KlpObserver = {
      debug: scenario.debug,
      message: (text, level) => {
        if (level === 'debug') {
          if (scenario.debug) this.timeline.push({ t: this.now / 1000, event: 'debug', text });
        } else
          this.timeline.push({
            t: this.now / 1000,
            event: level === 'warn' ? 'warning' : 'message',
            text,
          });
      },
      switched: (task, via) => this.onSwitched(task, via),
      blocked: (task, why, detail) => this.onBlocked(task, why, detail),
    };
    this.core = new KlpCore(env.machine, env.policy, observer);
    const offline = new Set(scenario.machine.offlineCpus);
    for (let cpu = 0; cpu < scenario.machine.cpus; cpu++)
      this.core.cpuOnline.push(!offline.has(cpu));
    // checkReferences has made sure every chain exists.
    this.templates = scenario.tasks.map((g) => g.behaviour.chains.map((c) => env.chainOf(c.from)!));
    this.weights = scenario.tasks.map((g) => g.behaviour.chains.map((c) => c.weight));
    for (const [i, spec] of scenario.patches.entries()) {
      const r = resolvePatch(env.machine, spec, i);
      if (!r.ok)
        throw new Error(
          `unreachable: checkReferences let patches[${i}] through: ${r.error.message}`,
        );
      this.patches.set(spec.name, r.value);
    }
  }

  private draw(d: Duration): number {
    if (d === 'forever') return Number.POSITIVE_INFINITY;
    if ('const' in d) return d.const;
    if ('exp' in d) return -Math.log(1 - this.rand()) * d.exp;
    return d.uniform[0] + this.rand() * (d.uniform[1] - d.uniform[0]);
  }

  private pickChain(group: number): ChainTemplate {
    const w = this.weights[group]!;
    let total = 0;
    for (const x of w) total += x;
    let r = this.rand() * total;
    for (let i = 0; i < w.length; i++) {
      r -= w[i]!;
      if (r < 0) return this.templates[group]![i]!;
    }
    return this.templates[group]![w.length - 1]!;
  }

  private newTask(
    comm: string,
    kthread: boolean,
    cpu: number,
    behaviour: Behaviour,
    group: number,
  ): SimTask {
    const lp: LpTask = {
      pid: this.nextPid++,
      comm,
      kthread,
      idle: false,
      cpu,
      patchState: KLP_TRANSITION_IDLE,
      pending: false,
      running: false,
      inUser: false,
      stack: null,
      chain: null,
      interruptible: behaviour.interruptible,
    };
    const t = this.register(lp, group, behaviour);
    this.tasks.push(t);
    this.core.tasks.push(lp);
    return t;
  }

  /** A task's simulation record, indexed by id (what events carry) and by its livepatch task. */
  private register(lp: LpTask, group: number, behaviour: Behaviour): SimTask {
    const t: SimTask = {
      id: this.byIndex.length,
      group,
      lp,
      behaviour,
      generation: 0,
      sleeping: false,
      switchedAt: null,
      via: null,
      blockedRunning: 0,
      unreliable: null,
      sleepingOn: null,
    };
    this.byIndex.push(t);
    this.lpIndex.set(lp, t);
    return t;
  }

  /** The task blocks in a chain drawn from its behaviour, until its wake-up (if any). */
  private sleep(t: SimTask, group: number, duration = this.draw(t.behaviour.sleep)): void {
    this.sleepIn(t, this.pickChain(group), duration);
  }

  private sleepIn(t: SimTask, c: ChainTemplate, duration: number): void {
    t.lp.stack = c.task;
    t.lp.chain = c.chain;
    t.lp.running = false;
    t.lp.inUser = false;
    t.sleeping = true;
    t.generation++;
    if (Number.isFinite(duration)) this.at(this.now + duration, EventKind.WAKE, t);
  }

  private at(time: number, kind: EventKind, t: SimTask): void {
    this.queue.push(Math.round(time), kind, t.id, t.generation);
  }

  /** Every task (idle tasks included) by id: what events carry. */
  private readonly byIndex: SimTask[] = [];

  run(): TransitionLog {
    const sc = this.scenario;
    // Tasks, each starting asleep part-way through one of its sleeps.
    for (const [g, group] of sc.tasks.entries()) {
      for (let i = 0; i < group.count; i++) {
        const t = this.newTask(
          group.count > 1 ? `${group.comm}/${i}` : group.comm,
          group.kthread,
          i % sc.machine.cpus,
          group.behaviour,
          g,
        );
        const initial = group.behaviour.initial;
        if (initial !== undefined) {
          this.sleepIn(t, this.env.chainOf(initial.chain)!, initial.until);
        } else {
          const full = this.draw(group.behaviour.sleep);
          this.sleep(t, g, Number.isFinite(full) ? full * this.rand() : full);
        }
        if (group.behaviour.forkEvery !== undefined)
          this.at(this.draw(group.behaviour.forkEvery), EventKind.FORK, t);
      }
    }
    // One idle task per CPU: it runs whenever its CPU has nothing else to do.
    for (let cpu = 0; cpu < sc.machine.cpus; cpu++) {
      const lp: LpTask = {
        pid: 0,
        comm: `swapper/${cpu}`,
        kthread: true,
        idle: true,
        cpu,
        patchState: KLP_TRANSITION_IDLE,
        pending: false,
        running: this.core.cpuOnline[cpu]!,
        inUser: false,
        stack: this.env.idleChain?.task ?? null,
        chain: this.env.idleChain?.chain ?? null,
        interruptible: false,
      };
      this.core.idleTasks.push(lp);
      this.idle.push(this.register(lp, -1, sc.tasks[0]!.behaviour));
    }
    for (const [i, a] of sc.actions.entries())
      this.queue.push(Math.round(a.at * 1000), EventKind.ACTION, i, 0);
    this.detachLateModules();

    const limit = sc.timeLimit * 1000;
    const q = this.queue;
    let actionsLeft = sc.actions.length;
    while (q.peekTime() <= limit && q.pop()) {
      this.now = q.outTime;
      if (q.outKind === EventKind.ACTION) {
        this.doAction(q.outArg);
        actionsLeft--;
      } else if (q.outKind === EventKind.RETRY) this.retry();
      else this.onTaskEvent(q.outKind, this.byIndex[q.outArg]!, q.outGeneration);
      // Once the last transition has completed and nothing else is scheduled to
      // happen to the patches, no later event can change the log.
      if (actionsLeft === 0 && this.completedAt !== null && this.core.transitionPatch === null)
        break;
    }
    return this.report();
  }

  private onTaskEvent(kind: EventKind, t: SimTask, generation: number): void {
    const g = t.group;
    const b = t.behaviour;
    switch (kind) {
      case EventKind.WAKE:
        if (generation !== t.generation || !t.sleeping) return;
        t.sleeping = false;
        t.lp.running = true;
        this.at(this.now + this.draw(b.run), EventKind.FINISH_RUN, t);
        return;
      case EventKind.FINISH_RUN:
        t.lp.running = false;
        if (b.user) {
          // Back to user space: the kernel-exit switch point.
          t.lp.stack = null;
          t.lp.chain = null;
          t.lp.inUser = true;
          klpUpdatePatchState(this.core, t.lp, 'kernel-exit');
          this.at(this.now + this.draw(b.userTime), EventKind.SYSCALL, t);
        } else {
          this.sleep(t, g);
        }
        return;
      case EventKind.SYSCALL:
        this.sleep(t, g);
        return;
      case EventKind.FORK: {
        const child = this.newTask(`${t.lp.comm}-child`, t.lp.kthread, t.lp.cpu, b, g);
        klpCopyProcess(t.lp, child.lp);
        if (
          child.lp.patchState === this.core.targetState &&
          this.core.targetState !== KLP_TRANSITION_IDLE
        )
          this.onSwitched(child.lp, 'fork');
        this.sleep(child, g);
        if (b.forkEvery !== undefined)
          this.at(this.now + this.draw(b.forkEvery), EventKind.FORK, t);
        return;
      }
      case EventKind.IDLE_LOOP: {
        klpUpdatePatchState(this.core, t.lp, 'idle-loop');
        return;
      }
    }
  }

  /** A signal or kthread wake-up: an interruptible sleeper wakes now. */
  private wake = (lp: LpTask): void => {
    const t = this.lpIndex.get(lp);
    this.signalsSent++;
    if (t === undefined || !t.sleeping || !lp.interruptible) return;
    t.generation++;
    this.at(this.now, EventKind.WAKE, t);
  };

  private wakeIdle = (cpu: number): void => {
    this.at(this.now + 1, EventKind.IDLE_LOOP, this.idle[cpu]!);
  };

  private retry(): void {
    this.retryPending = false;
    if (this.core.transitionPatch === null) return;
    this.attempt();
  }

  /** One `klp_try_complete_transition`, and the delayed work if it did not complete. */
  private attempt(): void {
    this.attempts++;
    const signalsBefore = this.signalsSent;
    const done = klpTryCompleteTransition(this.core, { wake: this.wake, wakeIdle: this.wakeIdle });
    if (this.signalsSent > signalsBefore) {
      this.timeline.push({
        t: this.now / 1000,
        event: 'signals',
        text: `${this.signalsSent - signalsBefore} tasks signalled`,
      });
    }
    if (done) {
      this.completedAt = this.now;
      this.timeline.push({
        t: this.now / 1000,
        event: 'complete',
        text: `transition complete after ${this.attempts} attempts`,
      });
    } else if (!this.retryPending) {
      this.retryPending = true;
      this.queue.push(retryTime(this.now), EventKind.RETRY, -1, 0);
    }
  }

  private doAction(i: number): void {
    const a = this.scenario.actions[i]!;
    // checkReferences has made sure the patch or module exists.
    const patch = a.patch === undefined ? undefined : this.patches.get(a.patch);
    const label = `${a.do}${a.patch !== undefined ? ` ${a.patch}` : ''}${a.module !== undefined ? ` ${a.module}` : ''}`;
    let ret = 0;
    switch (a.do) {
      case 'enable':
        this.completedAt = null;
        ret = klpEnablePatch(this.core, patch!);
        if (ret === 0) this.attempt();
        break;
      case 'disable': {
        const reversing = patch! === this.core.transitionPatch;
        ret = klpEnabledStore(this.core, patch!, false);
        if (ret === 0 && !reversing) {
          this.completedAt = null;
          this.attempt();
        }
        break;
      }
      case 'force':
        ret = klpForceStore(this.core, patch!);
        if (ret === 0) this.forced = true;
        break;
      case 'load-module': {
        const m = this.lateModules.get(a.module!);
        // A module loaded twice, or loaded again after it was never unloaded, does nothing.
        if (m === undefined) break;
        this.lateModules.delete(a.module!);
        this.env.machine.text.addModule(m.range);
        this.env.machine.kallsyms.addModule(m.range.name, m.range.start, m.range.end, m.symbols);
        const r = klpModuleComing(this.core, m.range.name);
        if (!r.ok)
          throw new Error(
            `unreachable: the patch was resolved against ${m.range.name}: ${r.error.message}`,
          );
        break;
      }
      case 'unload-module':
        klpModuleGoing(this.core, a.module ?? '');
        this.env.machine.text.removeModule(a.module ?? '');
        this.env.machine.kallsyms.removeModule(a.module ?? '');
        break;
    }
    this.timeline.push({
      t: this.now / 1000,
      event: 'action',
      text: ret === 0 ? label : `${label}: ${ret}`,
    });
  }

  /** Modules a scenario loads later start out unloaded. */
  private readonly lateModules = new Map<
    string,
    {
      range: { name: string; start: Addr; end: Addr };
      symbols: { name: string; address: Addr; type: string; module: string }[];
    }
  >();
  private detachLateModules(): void {
    for (const a of this.scenario.actions) {
      if (a.do !== 'load-module' || a.module === undefined) continue;
      const range = this.env.machine.text.loadedModules().find((m) => m.name === a.module);
      if (range === undefined) continue;
      const symbols = this.env.machine.kallsyms.moduleSymbols(a.module);
      this.lateModules.set(a.module, { range: { ...range }, symbols });
      this.env.machine.text.removeModule(a.module);
      this.env.machine.kallsyms.removeModule(a.module);
      for (const p of this.patches.values())
        for (const o of p.objects)
          if (o.name === a.module) for (const f of o.funcs) f.oldFunc = Number.NaN;
    }
  }

  /** Every task's simulation record, by its livepatch task. */
  private readonly lpIndex = new Map<LpTask, SimTask>();

  private onSwitched(lp: LpTask, via: SwitchVia): void {
    const t = this.lpIndex.get(lp);
    if (t !== undefined) {
      t.switchedAt = this.now;
      t.via = via;
    }
    if (via === 'force' || lp.chain === null) return;
    // The consistency guarantee: no task takes the new state while a changed function is really on its stack.
    if (this.core.transitionPatch === null) return;
    const ranges = this.core.passRanges ?? checkedRanges(this.core);
    const hit = rangeHit(ranges, lp.chain, lp.chain.length);
    if (hit < 0) return;
    const fn = ranges.names[hit]!;
    this.violations.push({ t: this.now / 1000, pid: lp.pid, comm: lp.comm, function: fn, via });
    this.timeline.push({
      t: this.now / 1000,
      event: 'VIOLATION',
      text: `${lp.comm}:${lp.pid} switched (${via}) while ${fn} was on its stack`,
    });
  }

  /** Counts by the interned reason or function string: nothing is allocated after a task's first block. */
  private onBlocked(lp: LpTask, why: SwitchBlock, detail: string | null): void {
    const t = this.lpIndex.get(lp);
    if (t === undefined) return;
    if (why === 'running') {
      t.blockedRunning++;
      return;
    }
    const key = detail ?? '';
    if (why === 'unreliable') {
      t.unreliable ??= new Map();
      t.unreliable.set(key, (t.unreliable.get(key) ?? 0) + 1);
    } else {
      t.sleepingOn ??= new Map();
      t.sleepingOn.set(key, (t.sleepingOn.get(key) ?? 0) + 1);
    }
  }

  private report(): TransitionLog {
    const all = [...this.tasks, ...this.idle];
    const tasks: TaskReport[] = all.map((t) => ({
      pid: t.lp.pid,
      comm: t.lp.comm,
      switchedAt: t.switchedAt === null ? null : t.switchedAt / 1000,
      via: t.via,
      blockedBy: blockedByOf(t).sort(
        (a, b) => b.count - a.count || a.reason.localeCompare(b.reason),
      ),
    }));
    const completed = this.completedAt !== null && this.core.transitionPatch === null;
    return {
      scenario: this.scenario.name,
      policy: this.env.policy.name,
      seed: this.scenario.seed,
      completed,
      completedAt: completed ? this.completedAt! / 1000 : null,
      attempts: this.attempts,
      signalsSent: this.signalsSent,
      forced: this.forced,
      violations: this.violations,
      tasks,
      timeline: this.timeline,
    };
  }
}

function blockedByOf(t: SimTask): BlockedBy[] {
  const out: BlockedBy[] = [];
  if (t.blockedRunning > 0)
    out.push({ reason: 'running', function: null, count: t.blockedRunning });
  for (const [code, count] of t.unreliable ?? [])
    out.push({ reason: 'unreliable stack', function: code === '' ? null : code, count });
  for (const [fn, count] of t.sleepingOn ?? [])
    out.push({ reason: 'sleeping on function', function: fn, count });
  return out;
}
