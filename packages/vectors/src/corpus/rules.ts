import { formatAddr, hex64 } from '@klpsim/arm64';
import {
  type BuiltTask,
  buildMachine,
  type InputError,
  KWORKER,
  kretprobeInstance,
  type Machine,
  type Result,
  type Task,
} from '@klpsim/kernel';
import { generatedExpectation, rawVector } from '../new.js';
import type { Expectation, Vector } from '../schema.js';

/**
 * Vectors for the kernel rules klpsim once got wrong. Each starts from a
 * built chain and makes one explicit change a recipe cannot describe; its
 * `kernel-source` expectations are worked out here from the rule it cites
 * and the recipe's own call chain, never from a walk (BigInt for the one
 * computed address). Generated expectations for the other walks sit beside
 * them, labelled as such.
 */

const ST = 'arch/arm64/kernel/stacktrace.c';
const hooked = (k: number) => KWORKER.map((f, i) => (i === k ? { ...f, kretprobe: true } : f));

function built(frames: typeof KWORKER): Result<{ machine: Machine; bt: BuiltTask }, InputError> {
  const b = buildMachine({ layout: 'mainline', tasks: [{ frames: [...frames] }] });
  if (!b.ok) return b;
  return { ok: true, value: { machine: b.value.machine, bt: b.value.tasks[0]! } };
}

/** The record addresses of a clean built chain, innermost first. */
function records(m: Machine, t: Task, n: number): number[] {
  const out = [t.cpuContext.fp];
  const w = { hi: 0, lo: 0 };
  while (out.length < n) {
    m.memory.read64(out[out.length - 1]!, w);
    out.push((w.hi - 0xfff00000) * 4294967296 + w.lo);
  }
  return out;
}

const entries = (pcs: readonly string[], marks: readonly string[] = []) =>
  pcs.map((address, i) => (marks[i] !== undefined ? { address, source: marks[i] } : { address }));

function fromSource(
  policy: Expectation['policy'],
  walk: Expectation['walk'],
  reliable: boolean | null,
  trace?: ReturnType<typeof entries>,
): Expectation {
  return { policy, walk, origin: 'kernel-source', reliable, ...(trace ? { trace } : {}) };
}

function vector(
  id: string,
  title: string,
  behaviour: string,
  source: string,
  machine: Machine,
  task: Task,
  expect: Expectation[],
): Vector {
  const m = { ...machine, tasks: [task] };
  const generated = (['reliable', 'debug'] as const).map((walk) =>
    generatedExpectation(m, task, 'mainline', walk),
  );
  generated.push(
    generatedExpectation(m, task, 'linux-6.1', 'debug'),
    generatedExpectation(m, task, 'symcode-v8', 'reliable'),
  );
  return rawVector({ id, title, behaviour, source, tags: ['kernel-rules'] }, m, [
    ...expect,
    ...generated,
  ]);
}

/** The three rule vectors (the fourth rule, a PT_REGS record first, is exceptions/pt-regs-first-running-*). */
export function kernelRuleVectors(): Result<Vector[], InputError> {
  const out: Vector[] = [];

  // 1. kretprobe_find_ret_addr: an instance with ret_addr 0 before the matching one.
  {
    const b = built(hooked(3));
    if (!b.ok) return b;
    const { machine, bt } = b.value;
    const stale = kretprobeInstance({ hi: 0, lo: 0 }, { hi: 0xffff8000, lo: 0x10000010 });
    const task: Task = { ...bt.task, kretprobes: [stale, ...bt.task.kretprobes] };
    const c = bt.chain.map(formatAddr);
    out.push(
      vector(
        'kernel-rules/kretprobe-zero-ret-addr',
        'a kretprobe instance with ret_addr 0 ends the search',
        '__kretprobe_find_ret_addr hands back ri->ret_addr, and kretprobe_find_ret_addr stops at the first 0 (`if (!ret) break;`) even though a later instance matches; mainline turns 0 into -EINVAL (`if (!orig_pc) return -EINVAL;`) after the three entries it stored, 6.1 assigns it to the pc and walks on.',
        `kernel/kprobes.c kretprobe_find_ret_addr; ${ST} kunwind_recover_return_address; 6.1 unwind_next`,
        machine,
        task,
        [
          fromSource('mainline', 'reliable', false, entries(c.slice(0, 3))),
          fromSource(
            'linux-6.1',
            'debug',
            null,
            entries([...c.slice(0, 3), hex64(0, 0), ...c.slice(4)]),
          ),
        ],
      ),
    );
  }

  // 2. The PAC strip: bit 55 clear keeps the value in the lower half.
  {
    const b = built(KWORKER);
    if (!b.ok) return b;
    const { machine, bt } = b.value;
    const r1 = records(machine, bt.task, 2)[1]!;
    const w = { hi: 0, lo: 0 };
    machine.memory.read64(r1 + 8, w);
    const lr = (BigInt(w.hi) << 32n) | BigInt(w.lo);
    const flipped = lr & ~(1n << 55n);
    machine.memory.write64(r1 + 8, Number(flipped >> 32n), Number(flipped & 0xffffffffn));
    // ptr & ~GENMASK_ULL(54, vabits) for a pointer with bit 55 clear (48-bit VA).
    const stripped = flipped & ~(((1n << 55n) - 1n) & ~((1n << 48n) - 1n));
    const c = bt.chain.map(formatAddr);
    c[2] = `0x${stripped.toString(16).padStart(16, '0')}`;
    out.push(
      vector(
        'kernel-rules/pac-bit55-clear',
        'an LR with bit 55 clear is stripped into the lower half and printed as it is',
        "XPACLRI (mainline's ptrauth_strip_kernel_insn_pac) and 6.1's ptrauth_strip_insn_pac: bit 55 picks the half; clear, the PAC bits below the top byte become zero and the top byte stays (TCR_EL1.TBI0 set, TBID0 clear). The value is not kernel text: mainline's reliable consumer does not look, the 2021 series refuses it.",
        'arch/arm64/include/asm/compiler.h xpaclri; 6.1 arch/arm64/include/asm/pointer_auth.h ptrauth_strip_insn_pac; arch/arm64/mm/proc.S (TCR_TBI0)',
        machine,
        bt.task,
        [
          fromSource('mainline', 'reliable', true, entries(c)),
          fromSource('linux-6.1', 'debug', null, entries(c)),
          fromSource('symcode-v8', 'reliable', false),
        ],
      ),
    );
  }

  // 3. Raw 64-bit keys: two equal non-canonical fps match.
  {
    const b = built(hooked(3));
    if (!b.ok) return b;
    const { machine, bt } = b.value;
    const r2 = records(machine, bt.task, 3)[2]!;
    const x = { hi: 0x12348000, lo: 0x10000010 };
    machine.memory.write64(r2, x.hi, x.lo);
    const ri = bt.task.kretprobes[0]!;
    const task: Task = {
      ...bt.task,
      kretprobes: [kretprobeInstance({ hi: ri.retAddrHi, lo: ri.retAddrLo }, x)],
    };
    const c = bt.chain.map(formatAddr).slice(0, 4);
    out.push(
      vector(
        'kernel-rules/non-canonical-fp-matches',
        'an equal non-canonical fp still finds its kretprobe instance',
        `kretprobe_find_ret_addr compares \`ri->fp != fp\` as raw values: the instance saved with fp ${hex64(x.hi, x.lo)} matches the same word read from the record, so the return address is recovered (K); the next step then finds no stack at that fp and fails.`,
        `kernel/kprobes.c kretprobe_find_ret_addr; ${ST} kunwind_next_frame_record`,
        machine,
        task,
        [
          fromSource('mainline', 'debug', null, entries(c, ['T', '', '', 'K'])),
          fromSource('mainline', 'reliable', false, entries(c)),
        ],
      ),
    );
  }
  return { ok: true, value: out };
}
