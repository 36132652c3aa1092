import { hex64 } from '@klpsim/arm64';
import { mulberry32, rawFromMachine, type Task } from '@klpsim/kernel';
import { CHECK_NAMES, type CheckName, POLICIES, type PolicyName, Walker } from '@klpsim/unwind';
import type { LoadedVector } from '../load.js';
import {
  builtFrameStates,
  FRAME_STATE_POLICIES,
  generatedExpectation,
  rawVector,
  vectorFrom,
} from '../new.js';
import { type Expectation, VECTOR_FORMAT, type Vector } from '../schema.js';
import { type MutationBase, mutationBases } from './base.js';
import { MUTATION_KINDS, type MutationKind, mutate, UndoLog } from './mutations.js';
import { ChainOracle } from './oracle.js';

/** A policy and check set whose reliable verdicts the oracle judges. */
export interface WalkSet {
  readonly policy: PolicyName;
  readonly checks: readonly CheckName[];
}

/** Every reliable policy with every subset of the extra checks. */
export const RELIABLE_SETS: readonly WalkSet[] = (['mainline', 'symcode-v8'] as const).flatMap(
  (policy) =>
    [[], ['call-site'], ['start-in-schedule'], [...CHECK_NAMES]].map((checks) => ({
      policy,
      checks: checks as CheckName[],
    })),
);

/** Debug walks, checked only fast path against reference. */
const DEBUG_POLICIES: readonly PolicyName[] = ['mainline', 'linux-6.1'];

export interface SetCounts {
  readonly policy: PolicyName;
  readonly checks: readonly CheckName[];
  /** Walks made (stacks the policy fits). */
  walks: number;
  reliable: number;
  /** Reliable, and not the chain the stack describes (or it describes none). */
  unsound: number;
  /** The stack describes a valid chain, and the walk refused it. */
  rejectedValid: number;
}

export interface MutationFailure {
  readonly iteration: number;
  readonly vector: string;
  readonly pid: number;
  readonly kind: MutationKind;
  readonly problem: string;
  /** The mutated machine as a vector, for the corpus. */
  readonly asVector: Vector;
}

/** The outcome of a range of iterations (a worker's share, or all of them). */
export interface MutationTally {
  stacks: number;
  /** Stacks whose mutated records still describe a valid chain. */
  validChains: number;
  /** Fast path and reference walk disagreed. */
  differ: number;
  readonly kinds: Record<string, number>;
  /** Unsound verdicts (any policy and check set) per mutation kind. */
  readonly unsoundKinds: Record<string, number>;
  readonly sets: SetCounts[];
  readonly failures: MutationFailure[];
}

/** Failures kept per run (the counts are always complete). */
export const MAX_FAILURES_KEPT = 50;

export function emptyTally(): MutationTally {
  return {
    stacks: 0,
    validChains: 0,
    differ: 0,
    kinds: Object.fromEntries(MUTATION_KINDS.map((k) => [k, 0])),
    unsoundKinds: Object.fromEntries(MUTATION_KINDS.map((k) => [k, 0])),
    sets: RELIABLE_SETS.map((s) => ({ ...s, walks: 0, reliable: 0, unsound: 0, rejectedValid: 0 })),
    failures: [],
  };
}

/** Adds `b` into `a` (failures stay in iteration order). */
export function mergeTally(a: MutationTally, b: MutationTally): void {
  a.stacks += b.stacks;
  a.validChains += b.validChains;
  a.differ += b.differ;
  for (const k of Object.keys(b.kinds)) a.kinds[k] = (a.kinds[k] ?? 0) + b.kinds[k]!;
  for (const k of Object.keys(b.unsoundKinds))
    a.unsoundKinds[k] = (a.unsoundKinds[k] ?? 0) + b.unsoundKinds[k]!;
  b.sets.forEach((s, i) => {
    const t = a.sets[i]!;
    t.walks += s.walks;
    t.reliable += s.reliable;
    t.unsound += s.unsound;
    t.rejectedValid += s.rejectedValid;
  });
  a.failures.push(...b.failures);
  a.failures.sort((x, y) => x.iteration - y.iteration);
  a.failures.length = Math.min(a.failures.length, MAX_FAILURES_KEPT);
}

/** The iteration's own seed: the same stack for the same (seed, i) whatever the worker. */
function iterationSeed(seed: number, i: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return (h ^ (h >>> 15)) >>> 0;
}

/** Walks iterations [from, to) of a run over these vectors. */
export class MutationRunner {
  private readonly bases: MutationBase[];
  private readonly oracles: ChainOracle[];
  private readonly walkers: Map<PolicyName, [Walker, Walker]>[];
  private readonly undo: UndoLog[];

  constructor(vectors: readonly LoadedVector[]) {
    this.bases = mutationBases(vectors);
    this.oracles = this.bases.map((b) => new ChainOracle(b));
    this.undo = this.bases.map((b) => new UndoLog(b));
    this.walkers = this.bases.map((b) => {
      const map = new Map<PolicyName, [Walker, Walker]>();
      for (const name of ['mainline', 'symcode-v8', 'linux-6.1'] as const)
        if (POLICIES[name].checkLayout(b.machine) === null)
          map.set(name, [
            new Walker(b.machine, POLICIES[name]),
            new Walker(b.machine, POLICIES[name]),
          ]);
      return map;
    });
  }

  /** How many stacks the vectors gave to mutate. */
  get baseCount(): number {
    return this.bases.length;
  }

  run(
    seed: number,
    from: number,
    to: number,
    tally: MutationTally,
    progress?: (done: number) => void,
  ): void {
    const n = this.bases.length;
    if (n === 0) return;
    for (let i = from; i < to; i++) {
      const { k, base, kind, task } = this.apply(seed, i);
      tally.stacks++;
      tally.kinds[kind] = (tally.kinds[kind] ?? 0) + 1;
      this.check(i, base, k, task, kind, tally);
      this.undo[k]!.undo();
      if (progress !== undefined && (i - from + 1) % 10_000 === 0) progress(i - from + 1);
    }
  }

  /** Applies iteration i's mutation (undo it with `this.undo[k]`). */
  private apply(seed: number, i: number) {
    const rng = mulberry32(iterationSeed(seed, i));
    const k = i % this.bases.length;
    const base = this.bases[k]!;
    const u = this.undo[k]!;
    let kind = MUTATION_KINDS[Math.floor(rng() * MUTATION_KINDS.length)]!;
    let task = mutate(base, kind, rng, u);
    // A kind that does not apply here (no tracer, no meta record): flip an LR bit instead.
    if (task === null) {
      kind = 'flip-lr-bit';
      task = mutate(base, kind, rng, u)!;
    }
    return { k, base, kind, task };
  }

  /**
   * Iteration i's mutated stack as a raw vector, with what the current
   * implementation gives under mainline (reliable and debug) and linux-6.1
   * (debug), labelled generated: for another implementation to check.
   */
  vectorOf(seed: number, i: number): Vector {
    const { k, base, kind, task } = this.apply(seed, i);
    const m = { ...base.machine, tasks: [task] };
    const from = base.from;
    const expect = [
      ...(POLICIES.mainline.checkLayout(m) === null
        ? [
            generatedExpectation(m, task, 'mainline', 'reliable', [], from),
            generatedExpectation(m, task, 'mainline', 'debug', [], from),
            ...FRAME_STATE_POLICIES.flatMap((p) => [
              generatedExpectation(m, task, p, 'reliable', [], from),
              generatedExpectation(m, task, p, 'debug', [], from),
            ]),
          ]
        : []),
      generatedExpectation(m, task, 'linux-6.1', 'debug', [], from),
    ];
    const v: Vector = {
      ...rawVector(
        {
          id: `mutations/${base.vectorId.replace(/\//g, '-')}-${seed}-${i}`,
          title: `${kind} on ${base.vectorId} (seed ${seed}, iteration ${i})`,
          behaviour: 'a mutated stack, for cross-checking implementations',
          source: 'klpsim vectors mutate',
          tags: ['mutations', kind],
        },
        m,
        expect,
      ),
    };
    this.undo[k]!.undo();
    const walks: Vector['walks'] = [{ task: 0, from: vectorFrom(from), expect }];
    const frameStates = builtFrameStates(base.built, walks);
    return { ...v, ...(frameStates !== undefined ? { frameStates } : {}), walks };
  }

  /** The iteration being checked (what a failure records). */
  private at!: {
    i: number;
    base: MutationBase;
    task: Task;
    kind: MutationKind;
    tally: MutationTally;
  };

  private check(
    i: number,
    base: MutationBase,
    k: number,
    task: Task,
    kind: MutationKind,
    tally: MutationTally,
  ): void {
    this.at = { i, base, task, kind, tally };
    const oracle = this.oracles[k]!;
    oracle.describe(task);
    if (oracle.ok) tally.validChains++;
    const walkers = this.walkers[k]!;
    for (const [si, set] of RELIABLE_SETS.entries()) {
      const pair = walkers.get(set.policy);
      if (pair === undefined) continue;
      const counts = tally.sets[si]!;
      counts.walks++;
      const ret = this.walkBoth(pair, { reliable: true, checks: set.checks }, setName(set));
      if (ret === null) continue;
      if (ret !== 0) {
        if (oracle.ok) counts.rejectedValid++;
        continue;
      }
      counts.reliable++;
      if (matches(oracle, pair[1])) continue;
      counts.unsound++;
      tally.unsoundKinds[kind] = (tally.unsoundKinds[kind] ?? 0) + 1;
      // What soundness asks for: refused, or exactly the described chain.
      this.fail(
        `${setName(set)}: reliable, but ${oracle.ok ? 'not the chain the stack describes' : 'the stack describes no valid chain'}`,
        oracle.ok
          ? {
              ...generated(set.policy, set.checks, 'reliable'),
              reliable: true,
              trace: oracleTrace(oracle),
            }
          : { ...generated(set.policy, set.checks, 'reliable'), reliable: false },
      );
    }
    for (const name of DEBUG_POLICIES) {
      const pair = walkers.get(name);
      if (pair !== undefined)
        this.walkBoth(pair, { reliable: false, checks: [] }, `${name} debug walk`);
    }
  }

  /**
   * Walks the iteration's task through the fast path and the reference walk;
   * the reference's return value, or null (counted and saved) when they differ.
   */
  private walkBoth(
    [fast, ref]: [Walker, Walker],
    options: { reliable: boolean; checks: readonly CheckName[] },
    label: string,
  ): number | null {
    const { task, base, tally } = this.at;
    const a = fast.walk(task, { ...options, from: base.from, fastPath: true });
    const b = ref.walk(task, { ...options, from: base.from, fastPath: false });
    if (sameWalk(fast, ref, a, b)) return b;
    tally.differ++;
    const policy = ref.policy.name;
    this.fail(`${label}: the fast path and the reference walk differ`, {
      ...generated(policy, options.checks, options.reliable ? 'reliable' : 'debug'),
      reliable: options.reliable ? b === 0 : null,
      trace: traceOf(ref),
    });
    return null;
  }

  private fail(problem: string, expect: Expectation): void {
    const { i, base, task, kind, tally } = this.at;
    if (tally.failures.length >= MAX_FAILURES_KEPT) return;
    const machine = { ...base.machine, tasks: [task] };
    tally.failures.push({
      iteration: i,
      vector: base.vectorId,
      pid: task.pid,
      kind,
      problem,
      asVector: {
        format: VECTOR_FORMAT,
        id: `mutations/${base.vectorId.replace(/\//g, '-')}-${i}`,
        title: `${kind} on ${base.vectorId} (iteration ${i})`,
        pins: {
          behaviour: `found by klpsim vectors mutate: ${problem}`,
          source: 'the soundness oracle (docs/vectors.md)',
        },
        tags: ['mutations', kind],
        raw: rawFromMachine(machine, { tasks: [task] }),
        walks: [{ task: 0, from: vectorFrom(base.from), expect: [expect] }],
      },
    });
  }
}

const setName = (s: WalkSet) => `${s.policy}${s.checks.map((c) => `+${c}`).join('')}`;

function generated(policy: PolicyName, checks: readonly CheckName[], walk: 'reliable' | 'debug') {
  return {
    policy,
    ...(checks.length > 0 ? { checks: [...checks] } : {}),
    walk,
    origin: 'generated' as const,
    reviewed: false,
  };
}

function oracleTrace(o: ChainOracle): { address: string }[] {
  return Array.from({ length: o.length }, (_, i) => ({ address: hex64(o.his[i]!, o.los[i]!) }));
}

function traceOf(w: Walker): { address: string }[] {
  const t = w.trace;
  return Array.from({ length: t.len }, (_, i) => ({ address: hex64(t.his[i]!, t.los[i]!) }));
}

/** Two walks made the same decisions: return value, entries (exact), markers and reason. */
function sameWalk(a: Walker, b: Walker, ra: number, rb: number): boolean {
  if (ra !== rb) return false;
  const ta = a.trace;
  const tb = b.trace;
  if (ta.len !== tb.len) return false;
  for (let i = 0; i < ta.len; i++)
    if (ta.his[i] !== tb.his[i] || ta.los[i] !== tb.los[i] || ta.kinds[i] !== tb.kinds[i])
      return false;
  return a.st.reason === b.st.reason && a.st.reasonFrame === b.st.reasonFrame;
}

/** The reliable trace is exactly the chain the oracle describes. */
function matches(o: ChainOracle, w: Walker): boolean {
  if (!o.ok || o.length !== w.trace.len) return false;
  const t = w.trace;
  for (let i = 0; i < o.length; i++)
    if (o.his[i] !== t.his[i] || o.los[i] !== t.los[i]) return false;
  return true;
}
