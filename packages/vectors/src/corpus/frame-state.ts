import { formatAddr } from '@klpsim/arm64';
import { buildMachine, type InputError, irqPreempted, type Result } from '@klpsim/kernel';
import { POLICIES, Walker } from '@klpsim/unwind';
import { generatedExpectation, rawVector } from '../new.js';
import type { Vector } from '../schema.js';

/**
 * Vectors for the policies that consult the frame state of the text
 * (sframe-regs, fp-validate) that a recipe cannot describe: each starts
 * from a built chain and makes one explicit change.
 */

const SFRAME =
  '"unwind: arm64: Use sframe to unwind interrupt frames" (SFrame series v5, 2026) unwind_next_frame_sframe, kunwind_next';

/** The frame-state vectors that need an explicit write. */
export function frameStateVectors(): Result<Vector[], InputError> {
  const out: Vector[] = [];
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
        behaviour: `regs->sp at ${formatAddr(sp)} is moved by 4. The interrupted pc ${formatAddr(interrupted)} (crc32_body+0x4) is in state L, but the series checks fp and sp alignment before any rule: the step fails, so the reliable walk is unreliable after the pt_regs pc, and the debug walk falls back to the frame-pointer step (it loses crc32_update, as mainline's does).`,
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
