import { POLICIES, type PolicyName, Walker, type WalkFrom, type WalkResult } from '@klpsim/unwind';
import { fromOf, type VectorMachine, vectorMachines } from './machines.js';
import type { Expectation, Vector, VectorWalk } from './schema.js';

/** How one vector fared. */
export interface VectorOutcome {
  readonly id: string;
  readonly file: string;
  readonly passed: boolean;
  /** Expectations compared (walks x expectations x machines). */
  readonly checked: number;
  /** One readable line per difference. */
  readonly failures: readonly string[];
}

export interface RunOptions {
  /** Only the expectations of this policy. */
  readonly policy?: PolicyName;
}

const FROM_TASK: WalkFrom = { kind: 'task' };

/**
 * Walks every expectation of a vector on every machine it describes, twice:
 * through the fast path and through the reference step functions alone.
 * A difference between the two, or from the expectation, is a failure.
 */
export function runVector(v: Vector, file: string, options: RunOptions = {}): VectorOutcome {
  const machines = vectorMachines(v, file);
  if (!machines.ok) {
    return {
      id: v.id,
      file,
      passed: false,
      checked: 0,
      failures: [`${machines.error.field ?? ''}: ${machines.error.message}`],
    };
  }
  const failures: string[] = [];
  let checked = 0;
  for (const [wi, w] of v.walks.entries()) {
    for (const [ei, e] of w.expect.entries()) {
      if (options.policy !== undefined && e.policy !== options.policy) continue;
      for (const m of machines.value) {
        checked++;
        const where = `walks[${wi}].expect[${ei}] ${e.policy}${e.checks?.length ? `+${e.checks.join('+')}` : ''} ${e.walk} (${m.kind})`;
        const r = walkBothWays(m, w, e);
        if (typeof r === 'string') failures.push(`${where}: ${r}`);
        else for (const d of diff(e, r)) failures.push(`${where}: ${d}`);
      }
    }
  }
  return { id: v.id, file, passed: failures.length === 0, checked, failures };
}

/** The walk's result, or why it could not be made or the two implementations differ. */
export function walkBothWays(m: VectorMachine, w: VectorWalk, e: Expectation): WalkResult | string {
  const policy = POLICIES[e.policy];
  const mismatch = policy.checkLayout(m.machine);
  if (mismatch !== null) return mismatch.message;
  if (e.walk === 'reliable' && !policy.hasReliableWalk)
    return `${e.policy} has no reliable walk (expect walk "debug")`;
  const task = m.machine.tasks[w.task]!;
  const from = w.from !== undefined ? fromOf(w.from)! : (m.starts?.[w.task] ?? FROM_TASK);
  const options = {
    reliable: e.walk === 'reliable',
    from,
    checks: e.checks ?? [],
    ...(w.size !== undefined ? { size: w.size } : {}),
  };
  const fast = new Walker(m.machine, policy);
  const ref = new Walker(m.machine, policy);
  fast.walk(task, { ...options, fastPath: true });
  ref.walk(task, { ...options, fastPath: false });
  const a = fast.result();
  const b = ref.result();
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  if (ja !== jb)
    return `the fast path and the reference walk differ:\n    fast      ${ja}\n    reference ${jb}`;
  return b;
}

const line = (t: { address: string; symbol?: string | undefined; source?: string | undefined }) =>
  `${t.address}${t.symbol !== undefined ? ` ${t.symbol}` : ''}${t.source ? ` (${t.source})` : ''}`;

/** Each way a result differs from an expectation, as readable lines. */
export function diff(e: Expectation, r: WalkResult): string[] {
  const out: string[] = [];
  if (e.reliable !== r.reliable) out.push(`reliable: expected ${e.reliable}, got ${r.reliable}`);
  if (e.reason !== undefined && e.reason !== (r.reason?.code ?? null))
    out.push(
      `reason: expected ${e.reason}, got ${r.reason?.code ?? null}${r.reason ? ` (${r.reason.message})` : ''}`,
    );
  if (e.trace !== undefined) {
    const n = Math.max(e.trace.length, r.trace.length);
    for (let i = 0; i < n; i++) {
      const want = e.trace[i];
      const got = r.trace[i];
      const gotLine =
        got === undefined
          ? '(nothing)'
          : line({
              address: got.address,
              symbol: want?.symbol !== undefined ? got.symbol : undefined,
              source: want?.source !== undefined ? got.source : undefined,
            });
      const same =
        want !== undefined &&
        got !== undefined &&
        want.address === got.address &&
        (want.symbol === undefined || want.symbol === got.symbol) &&
        (want.source === undefined || want.source === got.source);
      if (!same) {
        out.push(
          `trace[${i}]: expected ${want === undefined ? '(nothing)' : line(want)}, got ${gotLine} (${e.trace.length} entries expected, ${r.trace.length} walked)`,
        );
        break;
      }
    }
  }
  return out;
}
