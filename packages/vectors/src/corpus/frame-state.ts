import { formatAddr } from '@klpsim/arm64';
import {
  buildMachine,
  type FrameDesc,
  type FrameShape,
  type InputError,
  irqPreempted,
  type KernelDesc,
  type Result,
} from '@klpsim/kernel';
import { POLICIES, Walker } from '@klpsim/unwind';
import { generatedExpectation, newVector, rawVector } from '../new.js';
import type { Expectation, Vector } from '../schema.js';

/**
 * Vectors for the policies that consult the frame state of the text
 * (sframe-regs, fp-validate) that a recipe cannot describe: each starts
 * from a built chain and makes one explicit change.
 */

const SFRAME =
  '"unwind: arm64: Use sframe to unwind interrupt frames" (SFrame series v5, 2026) unwind_next_frame_sframe, kunwind_next';

const ST = 'arch/arm64/kernel/stacktrace.c';
const ORC =
  '"arm64: livepatch: Use ORC for dynamic frame pointer validation" (RFC v2 2022, v3 2023); docs/policies.md fp-validate';
const ENTRY =
  "arch/arm64/kernel/entry.S kernel_entry (the builder's exception.lr 'text', docs/builder.md)";

/** Where the interrupted function sits in irqPreempted's chain, and its caller after it. */
const G = 7;

/**
 * One exception boundary per frame state: an IRQ taken before the
 * instruction at `fn + at` of a function with the given shape (what the
 * builder's `exception: { lr: 'text' }` writes from the frame state of its
 * own text), or (`legacy`) inside a SYM_CODE function, which has none.
 */
interface BoundaryCase {
  readonly name: string;
  readonly title: string;
  /** What is true at the boundary, in words. */
  readonly truth: string;
  /** The state at the interrupted pc: L, S, F, or null (no frame state). */
  readonly state: 'L' | 'S' | 'F' | null;
  readonly at: number;
  readonly shape?: FrameShape;
}

const CASES: readonly BoundaryCase[] = [
  {
    name: 'l-entry-unsigned',
    title: 'IRQ at the first instruction of a function (+0, before paciasp): L, LR unsigned',
    truth:
      "nothing is pushed yet: the return into crc32_update is only in x30 (regs[30], unsigned) and x29 is still crc32_update's record",
    state: 'L',
    at: 0,
  },
  {
    name: 'l-after-paciasp-signed',
    title: 'IRQ after paciasp (+4): L, LR PAC-signed',
    truth:
      "paciasp has signed x30, nothing is pushed: the return into crc32_update is only in regs[30], PAC-signed, and x29 is still crc32_update's record",
    state: 'L',
    at: 4,
  },
  {
    name: 's-after-push',
    title: 'IRQ after the stp that pushes the frame record (+8): S',
    truth:
      "the record {crc32_update's fp, the signed return into crc32_update} is at regs->sp (CFA - 32), but x29 is still crc32_update's record",
    state: 'S',
    at: 8,
  },
  {
    name: 'f-body',
    title: 'IRQ in the body (+0x20): F',
    truth: "x29 points at crc32_body's record: a frame-pointer walk sees every frame",
    state: 'F',
    at: 0x20,
  },
  {
    name: 'l-after-epilogue-ldp',
    title: "IRQ after the epilogue's ldp (before autiasp): L, LR signed",
    truth:
      "the record is popped: x29 is crc32_update's record again and the signed return into crc32_update is only in regs[30]",
    state: 'L',
    at: 0x78,
  },
  {
    name: 'l-leaf',
    title: 'IRQ in a frameless leaf: L',
    truth:
      "a leaf never pushes a record: the return into crc32_update is only in regs[30] (unsigned), x29 is crc32_update's record",
    state: 'L',
    at: 0x20,
    shape: 'leaf',
  },
  {
    name: 'l-shrink-wrapped',
    title: "IRQ in a shrink-wrapped function's body before its prologue: L",
    truth:
      "body code runs before the prologue, on the caller's frame: the return into crc32_update is only in regs[30], x29 is crc32_update's record",
    state: 'L',
    at: 4,
    shape: 'shrink-wrapped',
  },
  {
    name: 'l-sub-sp-allocated',
    title: 'IRQ after `sub sp` of the sub-sp shape (stp next): L with the frame allocated',
    truth:
      'sp has moved down by the frame size but nothing is saved: the CFA is regs->sp + 32, the return into crc32_update only in regs[30]',
    state: 'L',
    at: 8,
    shape: 'sub-sp',
  },
  {
    name: 's-sub-sp',
    title:
      'IRQ after the stp of the sub-sp shape (before add x29, sp, #16): S, the record at the top of the frame',
    truth:
      "the record is at CFA - 16 = regs->sp + 16, not at regs->sp; x29 is still crc32_update's record",
    state: 'S',
    at: 12,
    shape: 'sub-sp',
  },
];

function boundaryRecipe(c: BoundaryCase): KernelDesc {
  const frames: FrameDesc[] = irqPreempted('saved').map((f, k) =>
    k === G ? { fn: 'crc32_body', at: c.at, exception: { lr: 'text' } } : f,
  );
  return {
    layout: 'mainline',
    pac: true,
    functions: [
      { name: 'crc32_body', size: 0x80, ...(c.shape !== undefined ? { shape: c.shape } : {}) },
      { name: 'crc32_update', size: 0x80 },
    ],
    tasks: [{ frames }],
  };
}

/** The no-data case: an IRQ inside ftrace_caller (SYM_CODE), as the builder always wrote a saved LR. */
function noDataRecipe(): KernelDesc {
  const chain = irqPreempted('saved');
  const frames: FrameDesc[] = [
    ...chain.slice(0, G),
    { fn: 'ftrace_caller', at: 0x20, exception: { lr: 'saved' } },
    // ftrace_caller was called from crc32_body's patched entry.
    { fn: 'crc32_body' },
    ...chain.slice(G + 1),
  ];
  return { layout: 'mainline', pac: true, tasks: [{ frames }] };
}

const ks = (
  policy: Expectation['policy'],
  walk: Expectation['walk'],
  reliable: boolean | null,
  reason: Expectation['reason'] | undefined,
  trace?: Expectation['trace'],
): Expectation => ({
  policy,
  walk,
  origin: 'kernel-source',
  reliable,
  ...(reason !== undefined ? { reason } : {}),
  ...(trace !== undefined ? { trace } : {}),
});

/**
 * The kernel-source expectations of a boundary vector, from the cited
 * rules and the recipe's true chain (`chain`, innermost first; the
 * interrupted function at G), never from a walk.
 */
function boundaryExpectations(
  state: 'L' | 'S' | 'F' | null,
  chain: readonly number[],
): Expectation[] {
  const addr = chain.map((a) => formatAddr(a));
  // mainline: arch_reliable_kunwind_consume_entry refuses the pt_regs pc, whatever the state.
  const mainline = ks(
    'mainline',
    'reliable',
    false,
    'EXCEPTION_BOUNDARY',
    addr.slice(0, G).map((address) => ({ address })),
  );
  if (state === null)
    return [
      mainline,
      // No frame state at a SYM_CODE pc: the SFrame step has no FDE; ORC has no entry to validate against.
      ks('sframe-regs', 'reliable', false, 'NO_FRAME_STATE'),
      ks('fp-validate', 'reliable', false, 'NO_FRAME_STATE'),
    ];
  // sframe-regs: the state at the pt_regs pc gives the caller (regs[30] in L, the record in S and F), so the walk is the whole chain.
  const marks = addr.map((_, k) =>
    k === 0 ? 'T' : k === G ? 'P' : k === G + 1 && state === 'L' ? 'L' : '',
  );
  const whole = addr.map((address, k) => ({ address, source: marks[k]! }));
  const out = [
    mainline,
    ks('sframe-regs', 'reliable', true, null, whole),
    ks('sframe-regs', 'debug', null, undefined, whole),
  ];
  // fp-validate: at the pt_regs pc the state must be F; in L and S x29 is still the caller's record.
  out.push(
    state === 'F'
      ? ks(
          'fp-validate',
          'reliable',
          true,
          null,
          addr.map((address) => ({ address })),
        )
      : ks(
          'fp-validate',
          'reliable',
          false,
          'FP_MISMATCH',
          addr.slice(0, G + 1).map((address) => ({ address })),
        ),
  );
  return out;
}

/** The frame-state vectors: one exception boundary per state, and the ones that need an explicit write. */
export function frameStateVectors(): Result<Vector[], InputError> {
  const out: Vector[] = [];
  const cases: [BoundaryCase | null, KernelDesc][] = [
    ...CASES.map((c): [BoundaryCase, KernelDesc] => [c, boundaryRecipe(c)]),
    [null, noDataRecipe()],
  ];
  for (const [c, recipe] of cases) {
    const id = `frame-state/boundary-${c?.name ?? 'no-data-sym-code'}`;
    const state = c === null ? null : c.state;
    const behaviour =
      c === null
        ? "an IRQ inside ftrace_caller (SYM_CODE, `exception: {lr: 'saved'}`): no frame state at the interrupted pc. mainline refuses the pt_regs pc (EXCEPTION_BOUNDARY); sframe-regs has no SFrame data for the step (NO_FRAME_STATE, its debug walk falls back to the frame-pointer step); fp-validate has no ORC entry to validate the frame against (NO_FRAME_STATE)."
        : `${c.truth}. mainline refuses the pt_regs pc (EXCEPTION_BOUNDARY). sframe-regs takes the step from the frame state at the pt_regs pc (${
            c.state === 'L'
              ? 'L: regs[30], PAC-stripped, as a REGS_LR entry (L), fp stays regs[29]'
              : c.state === 'S'
                ? 'S: the record at CFA + record, the CFA from regs->sp'
                : 'F: the record at x29, the CFA x29 + 32'
          }) and walks the whole chain reliably. fp-validate ${
            c.state === 'F'
              ? 'finds state F at the pt_regs pc with regs[29] >= regs->sp: every frame validates, reliable'
              : `finds state ${c.state} at the pt_regs pc: x29 does not name crc32_body's record (FP_MISMATCH)`
          }.`;
    const v = newVector(
      {
        id,
        title:
          c === null ? 'IRQ inside a SYM_CODE function (ftrace_caller): no frame state' : c.title,
        behaviour,
        source: `${ST} arch_reliable_kunwind_consume_entry; ${SFRAME}; ${ORC}; ${ENTRY}`,
        tags: ['frame-state', 'exceptions', state === null ? 'no-data' : state, 'mainline'],
      },
      recipe,
      id,
    );
    if (!v.ok) return v;
    const b = buildMachine(recipe, id);
    if (!b.ok) return b;
    const chain = b.value.tasks[0]!.chain;
    const walk = v.value.walks[0]!;
    out.push({
      ...v.value,
      walks: [{ ...walk, expect: [...boundaryExpectations(state, chain), ...walk.expect] }],
    });
  }
  // 1. The SFrame step refuses a misaligned sp: `if (fp & 0x7 || sp & 0x7) return -EINVAL`.
  const b = buildMachine({ layout: 'mainline', tasks: [{ frames: irqPreempted('unsaved') }] });
  if (!b.ok) return b;
  const m = b.value.machine;
  const task = m.tasks[0]!;
  // pt_regs of the boundary: where mainline's reliable walk stopped (state->regs).
  const probe = new Walker(m, POLICIES.mainline);
  probe.walk(task, { reliable: true });
  const sp = probe.st.regs + m.config.ptRegs.pcOffset - 8;
  const w = { hi: 0, lo: 0 };
  m.memory.read64(sp, w);
  m.memory.write64(sp, w.hi, (w.lo + 4) >>> 0);
  const chain = b.value.tasks[0]!.chain;
  // Mainline stored every entry before the pt_regs pc: the interrupted pc is the next one of the chain.
  const interrupted = chain[probe.trace.len]!;
  out.push(
    rawVector(
      {
        id: 'frame-state/sframe-misaligned-regs-sp',
        title: 'the SFrame step refuses a pt_regs sp that is not 8-byte aligned',
        behaviour: `regs->sp at ${formatAddr(sp)} is moved by 4. The interrupted pc ${formatAddr(interrupted)} (crc32_body+0x4) is in state L, whose CFA is regs->sp + 0; v6 checks that the CFA is 16-byte aligned (its changelog; docs/policies.md) in every state: the step fails, so the reliable walk is unreliable after the pt_regs pc, and the debug walk falls back to the frame-pointer step (it loses crc32_update, as mainline's does).`,
        source: SFRAME,
        tags: ['frame-state', 'sframe-regs', 'mainline'],
      },
      m,
      [
        { policy: 'sframe-regs', walk: 'reliable', origin: 'kernel-source', reliable: false },
        generatedExpectation(m, task, 'sframe-regs', 'reliable'),
        generatedExpectation(m, task, 'sframe-regs', 'debug'),
        generatedExpectation(m, task, 'mainline', 'debug'),
        generatedExpectation(m, task, 'fp-validate', 'reliable'),
      ],
      b.value,
    ),
  );
  // 2. The alignment check comes before the lookup: a misaligned regs[29] at a pc with no frame state.
  const chain2 = irqPreempted('saved');
  const c = buildMachine({
    layout: 'mainline',
    tasks: [
      {
        frames: [
          ...chain2.slice(0, 7),
          { fn: 'ftrace_caller', at: 0x20, exception: { lr: 'saved' } },
          { fn: 'crc32_body' },
          ...chain2.slice(8),
        ],
      },
    ],
  });
  if (!c.ok) return c;
  const m2 = c.value.machine;
  const task2 = m2.tasks[0]!;
  const probe2 = new Walker(m2, POLICIES.mainline);
  probe2.walk(task2, { reliable: true });
  const x29 = probe2.st.regs + m2.config.ptRegs.regs29Offset;
  m2.memory.read64(x29, w);
  m2.memory.write64(x29, w.hi, (w.lo + 4) >>> 0);
  out.push(
    rawVector(
      {
        id: 'frame-state/sframe-misaligned-fp-no-data',
        title: 'the SFrame step checks fp alignment before it looks the pc up',
        behaviour: `regs[29] at ${formatAddr(x29)} is moved by 4, and the interrupted pc is in ftrace_caller (SYM_CODE: no frame state). kunwind_next_regs_sframe returns -EINVAL on \`state->common.fp & 0x7\` before it calls sframe_find_kernel, so the step failed (FRAME_STATE_STEP_FAILED) rather than found no data; either way the reliable walk is unreliable after the pt_regs pc.`,
        source: SFRAME,
        tags: ['frame-state', 'sframe-regs', 'mainline'],
      },
      m2,
      [
        {
          policy: 'sframe-regs',
          walk: 'reliable',
          origin: 'kernel-source',
          reliable: false,
          reason: 'FRAME_STATE_STEP_FAILED',
        },
        generatedExpectation(m2, task2, 'sframe-regs', 'reliable'),
        generatedExpectation(m2, task2, 'sframe-regs', 'debug'),
        generatedExpectation(m2, task2, 'fp-validate', 'reliable'),
      ],
      c.value,
    ),
  );
  return { ok: true, value: out };
}
