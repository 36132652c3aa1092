import type { Addr } from '@klpsim/arm64';
import type { BuiltTask, Machine } from '@klpsim/kernel';
import type { CheckName } from '../checks.js';
import { POLICIES, type PolicyName } from '../policies/index.js';
import type { ReasonCode } from '../reason.js';
import { Walker, type WalkFrom } from '../walk.js';

/**
 * Verdicts judged against the truth. For a task whose true call chain is
 * known (a built task), a reliable walk is:
 * - `right`: reliable, and its trace is the true chain;
 * - `unsound`: reliable, and its trace is not the true chain;
 * - `needless`: refused, although this policy's own debug walk
 *   (`arch_stack_walk` of the same unwinder) gives the true chain: the
 *   refusal cost a walk that was right;
 * - `refused-rightly`: refused, and the debug walk is not the true chain.
 * A debug walk is `complete`, or has frames `missing` (true frames it did
 * not report) and `invented` (reported frames that are no true frame).
 */

export type ReliableLabel = 'right' | 'unsound' | 'needless' | 'refused-rightly';

/** The entries of the walker's last trace, as folded pcs. */
function tracePcs(w: Walker): Addr[] {
  return Array.from(w.trace.pcs.subarray(0, w.trace.len));
}

function same(a: readonly Addr[], b: readonly Addr[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Frames of `want` that `got` lacks, and frames of `got` that `want` lacks (as multisets). */
export function chainDiff(
  got: readonly Addr[],
  want: readonly Addr[],
): { missing: number; invented: number } {
  const left = new Map<Addr, number>();
  for (const pc of want) left.set(pc, (left.get(pc) ?? 0) + 1);
  let invented = 0;
  for (const pc of got) {
    const n = left.get(pc) ?? 0;
    if (n > 0) left.set(pc, n - 1);
    else invented++;
  }
  let missing = 0;
  for (const n of left.values()) missing += n;
  return { missing, invented };
}

/** One policy and check set over a population. */
export interface JudgedRow {
  readonly policy: PolicyName;
  readonly checks: readonly CheckName[];
  /** null for a policy without a reliable walk (its debug walk is judged alone). */
  readonly reliable: Readonly<Record<ReliableLabel, number>> | null;
  /** Refusals by reason code: how many, and how many of them were needless. */
  readonly refusals: Readonly<Partial<Record<ReasonCode, { count: number; needless: number }>>>;
  /** The debug walk (checks do not change it). */
  readonly debug: { complete: number; missing: number; invented: number };
  /** The reliable labels per drawn state (the key is the population's own grouping). */
  readonly byGroup: Readonly<Record<string, Readonly<Record<ReliableLabel, number>>>>;
}

const zero = (): Record<ReliableLabel, number> => ({
  right: 0,
  unsound: 0,
  needless: 0,
  'refused-rightly': 0,
});

/**
 * The policies that are the kernel's own kind for `machine`: those whose
 * layout check passes and, on a kernel with meta records (6.13+), not the
 * debug-only walks of older kernels, which read a PT_REGS meta record as
 * an ordinary record and stop there.
 */
export function policiesFor(machine: Machine, policies: readonly PolicyName[]): PolicyName[] {
  const meta = machine.config.ptRegs.meta !== null;
  return policies.filter((name) => {
    const p = POLICIES[name];
    return p.checkLayout(machine) === null && (!meta || p.hasReliableWalk || p.rules.metaRecords);
  });
}

/**
 * Judges every policy in `policies` (those that fit the machine: `policiesFor`),
 * under each check set, over `tasks`, grouping the reliable labels by
 * `groupOf(task index)`.
 */
export function judge(
  machine: Machine,
  tasks: readonly BuiltTask[],
  policies: readonly PolicyName[],
  checkSets: readonly (readonly CheckName[])[],
  groupOf: (i: number) => string,
): JudgedRow[] {
  const rows: JudgedRow[] = [];
  for (const name of policiesFor(machine, policies)) {
    const policy = POLICIES[name];
    const w = new Walker(machine, policy);
    // The debug walk once per task: it does not depend on the check set.
    const debugRight: boolean[] = [];
    const debug = { complete: 0, missing: 0, invented: 0 };
    for (const t of tasks) {
      w.walk(t.task, { reliable: false, from: t.from as WalkFrom });
      const got = tracePcs(w);
      const d = chainDiff(got, t.chain);
      const right = same(got, t.chain);
      debugRight.push(right);
      if (right) debug.complete++;
      debug.missing += d.missing;
      debug.invented += d.invented;
    }
    for (const checks of policy.hasReliableWalk ? checkSets : [[]]) {
      const labels = zero();
      const refusals: Partial<Record<ReasonCode, { count: number; needless: number }>> = {};
      const byGroup: Record<string, Record<ReliableLabel, number>> = {};
      if (policy.hasReliableWalk) {
        tasks.forEach((t, i) => {
          const ret = w.walk(t.task, { reliable: true, from: t.from as WalkFrom, checks });
          let label: ReliableLabel;
          if (ret === 0) label = same(tracePcs(w), t.chain) ? 'right' : 'unsound';
          else {
            label = debugRight[i] ? 'needless' : 'refused-rightly';
            const code = w.st.reason ?? 'BUFFER_FULL';
            const r = refusals[code] ?? { count: 0, needless: 0 };
            r.count++;
            if (label === 'needless') r.needless++;
            refusals[code] = r;
          }
          labels[label]++;
          const g = groupOf(i);
          byGroup[g] ??= zero();
          byGroup[g][label]++;
        });
      }
      rows.push({
        policy: name,
        checks,
        reliable: policy.hasReliableWalk ? labels : null,
        refusals,
        debug,
        byGroup,
      });
    }
  }
  return rows;
}
