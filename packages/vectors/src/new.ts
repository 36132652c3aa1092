import { formatAddr } from '@klpsim/arm64';
import { LazyFrameTable } from '@klpsim/frames';
import {
  type BuiltMachine,
  type BuiltStart,
  type KernelDesc,
  type Machine,
  type Result,
  rawFromMachine,
  type Task,
} from '@klpsim/kernel';
import { ok } from '@klpsim/kernel/internal';
import {
  CHECK_NAMES,
  type CheckName,
  POLICIES,
  POLICY_NAMES,
  type PolicyName,
  Walker,
  type WalkFrom,
} from '@klpsim/unwind';
import { expectationPcs, frameStatesFromBuilder } from './frame-states.js';
import { vectorMachines } from './machines.js';
import {
  type Expectation,
  VECTOR_FORMAT,
  type Vector,
  type VectorFrom,
  vectorSchema,
} from './schema.js';

/** What a person says about a new vector; the expectations are filled in. */
export interface NewVectorMeta {
  readonly id: string;
  readonly title: string;
  readonly behaviour: string;
  readonly source: string;
  readonly tags: readonly string[];
}

/**
 * The walks each policy gets: mainline both, symcode-v8 reliable, linux-6.1
 * debug (it has no reliable walk); the reliable ones again with both extra checks.
 */
const WALKS: readonly {
  readonly walk: 'reliable' | 'debug';
  readonly checks: readonly CheckName[];
}[] = [
  { walk: 'reliable', checks: [] },
  { walk: 'debug', checks: [] },
  { walk: 'reliable', checks: CHECK_NAMES },
];

/**
 * What the current implementation's reference walk gives for `task`, as an
 * expectation labelled `generated` and `reviewed: false`.
 */
export function generatedExpectation(
  machine: Machine,
  task: Task,
  policy: PolicyName,
  walk: 'reliable' | 'debug',
  checks: readonly CheckName[] = [],
  from: WalkFrom = { kind: 'task' },
): Expectation & { trace: NonNullable<Expectation['trace']> } {
  const w = new Walker(machine, POLICIES[policy]);
  w.walk(task, { reliable: walk === 'reliable', from, checks, fastPath: false });
  const r = w.result();
  return {
    policy,
    ...(checks.length > 0 ? { checks: [...checks] } : {}),
    walk,
    origin: 'generated',
    reviewed: false,
    reliable: r.reliable,
    reason: r.reason?.code ?? null,
    trace: r.trace.map((t) => ({ address: t.address, symbol: t.symbol, source: t.source })),
  };
}

/** What a raw vector made in code says about itself. */
export interface RawVectorMeta {
  readonly id: string;
  readonly title: string;
  readonly behaviour: string;
  readonly source: string;
  readonly tags: readonly string[];
}

/** One lazy frame table per built machine (a mutation run asks the same machine again and again). */
const TABLES = new WeakMap<Machine, LazyFrameTable>();

/** The policies that consult the frame state of the text (and so need a vector's `frameStates`). */
export const FRAME_STATE_POLICIES: readonly PolicyName[] = ['sframe-regs', 'fp-validate'];

/**
 * The builder's frame state of every function the walks meet: the pcs of
 * every expectation's trace (and each pc - 4) and of every task's true
 * chain. Undefined when no expectation is of a policy that consults it.
 * Code the kernel has no kallsyms bounds for (generated code: BPF JIT,
 * trampolines, kprobe slots; an unloaded module's text) is left out: it has
 * no frame state, for the policies as for a real kernel's SFrame or ORC.
 */
export function builtFrameStates(
  built: BuiltMachine,
  walks: Vector['walks'],
): Vector['frameStates'] {
  if (!walks.some((w) => w.expect.some((e) => FRAME_STATE_POLICIES.includes(e.policy))))
    return undefined;
  const pcs = expectationPcs(walks);
  for (const t of built.tasks) pcs.push(...t.chain);
  let table = TABLES.get(built.machine);
  if (table === undefined) {
    table = new LazyFrameTable(built.machine);
    TABLES.set(built.machine, table);
  }
  const known = built.frames.filter((f) => table.functionAt(f.start)?.start === f.start);
  return frameStatesFromBuilder(known, pcs);
}

/**
 * A raw-state vector of the machine's one task, walked from its saved
 * context; with `built` (what made the machine), the builder's frame state
 * of the functions the walks meet.
 */
export function rawVector(
  meta: RawVectorMeta,
  machine: Machine,
  expect: Expectation[],
  built?: BuiltMachine,
): Vector {
  const walks: Vector['walks'] = [{ task: 0, from: { kind: 'task' }, expect }];
  const frameStates = built === undefined ? undefined : builtFrameStates(built, walks);
  return {
    format: VECTOR_FORMAT,
    id: meta.id,
    title: meta.title,
    pins: { behaviour: meta.behaviour, source: meta.source },
    tags: [...meta.tags],
    raw: rawFromMachine(machine),
    ...(frameStates !== undefined ? { frameStates } : {}),
    walks,
  };
}

/** The recipe's start as a vector `from`. */
export function vectorFrom(s: BuiltStart): VectorFrom {
  return s.kind === 'task'
    ? { kind: 'task' }
    : {
        kind: 'caller',
        fp: formatAddr(s.fp),
        pc: formatAddr(s.pc),
        nonPreemptible: s.nonPreemptible,
        inNmi: s.inNmi,
        ...(s.inEfi ? { inEfi: true } : {}),
      };
}

/**
 * Writes a vector from a builder recipe: the raw state of the built machine
 * beside the recipe, one walk per task, and every policy's expectation
 * filled from the current implementation, labelled `generated` and
 * `reviewed: false` for a person to check against the kernel source.
 */
export function newVector(
  meta: NewVectorMeta,
  recipe: KernelDesc,
  file = '(new vector)',
): Result<Vector> {
  const draft = vectorSchema.safeParse({
    format: VECTOR_FORMAT,
    id: meta.id,
    title: meta.title,
    pins: { behaviour: meta.behaviour, source: meta.source },
    tags: [...meta.tags],
    recipe,
    walks: [
      {
        task: 0,
        expect: [{ policy: 'mainline', walk: 'debug', origin: 'generated', reliable: null }],
      },
    ],
  });
  if (!draft.success) {
    const i = draft.error.issues[0]!;
    return {
      ok: false,
      error: { code: 'KLPSIM_INPUT_INVALID', message: i.message, file, field: i.path.join('.') },
    };
  }
  const machines = vectorMachines(draft.data, file);
  if (!machines.ok) return machines;
  const m = machines.value[0]!;
  const walks: Vector['walks'] = [];
  for (const [ti, task] of m.machine.tasks.entries()) {
    const from = m.starts![ti]!;
    const expect: Expectation[] = [];
    for (const name of POLICY_NAMES) {
      const policy = POLICIES[name];
      if (policy.checkLayout(m.machine) !== null) continue;
      for (const { walk, checks } of WALKS) {
        if (walk === 'reliable' && !policy.hasReliableWalk) continue;
        if (walk === 'debug' && name === 'symcode-v8') continue;
        expect.push(generatedExpectation(m.machine, task, name, walk, checks, from));
      }
    }
    walks.push({ task: ti, from: vectorFrom(from), expect });
  }
  const frameStates = m.built === null ? undefined : builtFrameStates(m.built, walks);
  return ok({
    ...draft.data,
    raw: rawFromMachine(m.machine),
    ...(frameStates !== undefined ? { frameStates } : {}),
    walks,
  });
}
