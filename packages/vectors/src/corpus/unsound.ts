import { formatAddr } from '@klpsim/arm64';
import {
  buildMachine,
  type InputError,
  irqPreempted,
  type Machine,
  type Result,
} from '@klpsim/kernel';
import { CHECK_NAMES, type CheckName, POLICIES, type PolicyName } from '@klpsim/unwind';
import { generatedExpectation, rawVector } from '../new.js';
import type { Expectation, Vector } from '../schema.js';

/**
 * The two kinds of damage `vectors mutate` found that the kernels' own rules
 * call reliable although the chain is wrong, pinned as raw vectors. Their
 * expectations are the walk the kernel rules give (generated, for review),
 * so the corpus shows the hole as it is; the true chain is in `pins`.
 */

const ST = 'arch/arm64/kernel/stacktrace.c';

/** The frame records of the built task, innermost first, following fps (and PT_REGS records). */
function records(m: Machine, fp: number, final: number): number[] {
  const out: number[] = [];
  const w = { hi: 0, lo: 0 };
  const lr = { hi: 0, lo: 0 };
  while (fp !== final && out.length < 64) {
    out.push(fp);
    m.memory.read64(fp, w);
    m.memory.read64(fp + 8, lr);
    if ((w.hi | w.lo | lr.hi | lr.lo) === 0) {
      const l = m.config.ptRegs;
      m.memory.read64(fp - l.stackframeOffset + l.regs29Offset, w);
    }
    fp = (w.hi - 0xfff00000) * 4294967296 + w.lo;
  }
  return out;
}

function expectations(m: Machine): Expectation[] {
  const task = m.tasks[0]!;
  const out: Expectation[] = [];
  const walks: [PolicyName, boolean, readonly CheckName[]][] = [
    ['mainline', true, []],
    ['mainline', false, []],
    ['mainline', true, CHECK_NAMES],
    ['symcode-v8', true, []],
    ['symcode-v8', true, CHECK_NAMES],
    ['linux-6.1', false, []],
  ];
  for (const [name, reliable, checks] of walks)
    if (POLICIES[name].checkLayout(m) === null)
      out.push(generatedExpectation(m, task, name, reliable ? 'reliable' : 'debug', checks));
  return out;
}

function vector(id: string, title: string, behaviour: string, source: string, m: Machine): Vector {
  return rawVector({ id, title, behaviour, source, tags: ['known-unsound'] }, m, expectations(m));
}

/** The known-unsound vectors, built from recipes and one explicit write each. */
export function knownUnsoundVectors(): Result<Vector[], InputError> {
  const out: Vector[] = [];
  // 1. mainline: an fp that lands on regs[29] of an exception taken before the prologue.
  const a = buildMachine({
    layout: 'mainline',
    tasks: [
      {
        frames: irqPreempted('unsaved').map((f) => (f.fn === 'crc32_body' ? { ...f, at: 0x8 } : f)),
      },
    ],
  });
  if (!a.ok) return a;
  {
    const m = a.value.machine;
    const t = m.tasks[0]!;
    const recs = records(m, t.cpuContext.fp, t.finalFrame);
    const l = m.config.ptRegs;
    const w = { hi: 0, lo: 0 };
    const meta = recs.find((r) => m.memory.read64(r, w) && (w.hi | w.lo) === 0)!;
    const before = recs[recs.indexOf(meta) - 1]!;
    const x29 = meta - l.stackframeOffset + l.regs29Offset;
    const fp = { hi: 0, lo: 0 };
    m.memory.read64(before, fp);
    m.memory.write64(before, fp.hi, (fp.lo - (meta - x29)) >>> 0);
    out.push(
      vector(
        'known-unsound/mainline-fp-onto-interrupted-x29',
        'mainline walks a chain without the interrupted function when one fp is damaged',
        `The record below the exception has its fp moved (one bit, found by vectors mutate) from the PT_REGS meta record at ${formatAddr(meta)} onto regs->regs[29] at ${formatAddr(x29)}: {x29, x30} of an exception taken before crc32_body's prologue read as a well-formed frame record. The walk never meets the meta record, so arch_stack_walk_reliable reports a chain without crc32_body, reliable. The true chain has crc32_body between el1h_64_irq and crc32_update; no rule of ${ST} can tell.`,
        `${ST} kunwind_next_frame_record, unwind_find_stack, unwind_consume_stack`,
        m,
      ),
    );
  }
  // 2. symcode-v8 on a 6.1-layout kernel: the return address into the vector overwritten.
  const b = buildMachine({ layout: 'linux-6.1', tasks: [{ frames: irqPreempted('unsaved') }] });
  if (!b.ok) return b;
  {
    const m = b.value.machine;
    const t = m.tasks[0]!;
    const vectorFn = m.kallsyms.addressOf('el1h_64_irq')!;
    const init = m.kallsyms.addressOf('start_kernel')!;
    const recs = records(m, t.cpuContext.fp, t.finalFrame);
    const w = { hi: 0, lo: 0 };
    const hit = recs.find((r) => {
      m.memory.read64(r + 8, w);
      const lo = w.lo;
      const at = (0xffff8000 - 0xfff00000) * 4294967296 + lo;
      return at >= vectorFn && at < vectorFn + 0x200;
    })!;
    const target = init + 0x10;
    m.memory.write64(hit + 8, 0xffff8000, (target - (0xffff8000 - 0xfff00000) * 4294967296) >>> 0);
    out.push(
      vector(
        'known-unsound/symcode-v8-vector-lr-overwritten',
        'the 2021 series walks through an exception when the return address into the vector is damaged',
        `On a kernel without meta records the exception's pt_regs->stackframe is {x29, elr}, an ordinary-looking record. The series sees an exception only because the return address into the vector (el1h_64_irq) is SYM_CODE; here that LR was overwritten with init text (${formatAddr(target)}, found by vectors mutate as lr-to-init-text), which __kernel_text_address accepts, so the walk crosses the exception and loses crc32_update, whose return address lived only in LR. The call-site check refuses it.`,
        "the 2021 series' unwind_is_reliable and sym_code_functions; 6.1 arch/arm64/kernel/entry.S kernel_entry",
        m,
      ),
    );
  }
  return { ok: true, value: out };
}
