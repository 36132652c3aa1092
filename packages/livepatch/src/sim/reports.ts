import type { Addr } from '@klpsim/arm64';
import type { BlockedBy, TaskReport } from './log.js';
import { BlockKind, LpFlag, type TaskTable } from './tasks.js';

/**
 * The log's per-task reports, kept in the simulation's columns and made as
 * objects only when read: a run of a million tasks ends without building a
 * million reports (and their comm strings) that nobody may read. Order:
 * the tasks in creation order, then the idle tasks (CPU order). Reading the
 * same task twice gives equal reports, not the same object.
 */
export class TaskReports {
  /** Lists shared between tasks held up alike (see `blockedBy`). */
  private readonly sharedBlockedBy = new Map<string, readonly BlockedBy[]>();

  constructor(
    private readonly t: TaskTable,
    private readonly cpus: number,
    /** The %pS names of each chain a check refused (tasks share chains: one list per chain). */
    private readonly blockedIn: ReadonlyMap<readonly Addr[], readonly string[]>,
  ) {}

  get length(): number {
    return this.t.size;
  }

  /** The task id of the log's i-th task. */
  idAt(i: number): number {
    const tasks = this.t.size - this.cpus;
    return i < tasks ? i + this.cpus : i - tasks;
  }

  /** The log's i-th task report (0 <= i < length). */
  at(i: number): TaskReport {
    const t = this.t;
    const id = this.idAt(i);
    const switches = t.switches(id);
    const last = switches[switches.length - 1];
    const chain = t.lastBlockedChain(id);
    return {
      pid: t.pid(id),
      comm: t.commOf(id),
      kthread: (t.lpFlags(id) & LpFlag.KTHREAD) !== 0,
      switchedAt: last?.t ?? null,
      via: last?.via ?? null,
      switches,
      blockedIn: chain === null ? null : this.blockedIn.get(chain)!,
      blockedBy: this.blockedBy(id),
    };
  }

  /** Every report, in the log's order. */
  toArray(): TaskReport[] {
    const out = new Array<TaskReport>(this.length);
    for (let i = 0; i < out.length; i++) out[i] = this.at(i);
    return out;
  }

  /**
   * What held a task up, most often first. Lists are shared between tasks
   * held up alike (the log's lists are read-only): a million tasks found
   * running once at the first attempt cost one list, not a million.
   */
  private blockedBy(id: number): readonly BlockedBy[] {
    const t = this.t;
    const running = t.blockedRunning(id);
    // Most tasks were never refused: no lists to gather.
    if (running === 0 && !t.hasAnyBlocks(id)) return NOT_BLOCKED;
    const unreliable = t.blocks(id, BlockKind.UNRELIABLE);
    const sleeping = t.blocks(id, BlockKind.SLEEPING);
    if (running === 0 && unreliable.length === 0 && sleeping.length === 0) return NOT_BLOCKED;
    let key = `${running}`;
    for (const [code, count] of unreliable) key += `|u${count}:${code}`;
    for (const [fn, count] of sleeping) key += `|s${count}:${fn}`;
    const shared = this.sharedBlockedBy.get(key);
    if (shared !== undefined) return shared;
    const out: BlockedBy[] = [];
    if (running > 0) out.push({ reason: 'running', function: null, count: running });
    for (const [code, count] of unreliable)
      out.push({ reason: 'unreliable stack', function: code === '' ? null : code, count });
    for (const [fn, count] of sleeping)
      out.push({ reason: 'sleeping on function', function: fn, count });
    out.sort((x, y) => y.count - x.count || x.reason.localeCompare(y.reason));
    const list = Object.freeze(out.map((e) => Object.freeze(e)));
    this.sharedBlockedBy.set(key, list);
    return list;
  }
}

/** The blockedBy of every task never refused: one shared (read-only) empty list. */
const NOT_BLOCKED: readonly BlockedBy[] = Object.freeze([]);
